// The order service's test helpers, exported as @exchange/order/testing.
export { eventually, startBroker, type Broker } from './broker.ts';
export { createHarness, type Harness } from './harness.ts';
export { createWalletStub, type WalletStub } from './wallet-stub.ts';
