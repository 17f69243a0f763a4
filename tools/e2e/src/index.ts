export { startPrivateBroker, type PrivateBroker } from '@exchange/messaging/private-broker';
export { eventually, newTrader, startTestStack, type TestStack, type TestStackOptions } from './harness.ts';
