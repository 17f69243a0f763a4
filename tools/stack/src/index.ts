export * from './stack.ts';
export {
  DEMO_ACCOUNTS,
  DEMO_ORDER_PREFIX,
  Grid,
  runMarketMaker,
  type MarketMakerOptions,
} from './demo/market-maker.ts';
