export { buildApp, FLAG_DEFAULTS, type AppDeps } from './app.ts';
export { ConfigSchema, loadConfig, type Config } from './config.ts';
export { createEventHandler, EVENT_BINDINGS, EVENTS_QUEUE } from './events.ts';
export { runMigrations } from './migrate.ts';
export { OrderService, startSweeper } from './orders/service.ts';
export { StreamFeed, StreamHub } from './stream.ts';
export { createWalletClient, type WalletClient } from './wallet-client.ts';
