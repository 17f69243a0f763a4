export { startPrivateBroker, type PrivateBroker } from '@exchange/messaging/private-broker';
export {
  ADMIN,
  crossTrade,
  eventually,
  newTrader,
  startTestStack,
  type TestStack,
  type TestStackOptions,
} from './harness.ts';
