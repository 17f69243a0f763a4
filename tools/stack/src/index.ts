export * from './stack.ts';
export * from './web-build.ts';
export {
  DEMO_ACCOUNTS,
  DEMO_ORDER_PREFIX,
  Grid,
  runMarketMaker,
  type MarketMakerOptions,
} from './demo/market-maker.ts';
export { backupAgeRecipient } from './host.ts';
