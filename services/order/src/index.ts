export { buildApp, type AppDeps } from './app.ts';
export { FLAG_DEFAULTS, type OrderContext } from './context.ts';
export { ConfigSchema, loadConfig, type Config } from './config.ts';
export { orderEventsHandler } from './messaging/order-events.ts';
export { EVENT_BINDINGS, EVENTS_QUEUE } from './messaging/queues.ts';
export { runMigrations } from './migrate.ts';
export { OrderService, startSweeper } from './orders/service.ts';
export { StreamFeed, StreamHub } from './stream.ts';
export { createWalletClient, type WalletClient } from './clients/wallet-client.ts';
