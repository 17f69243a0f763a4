// The wallet package's public surface. Other packages import from here (or `./config`, `./testing`), never `src/`.
export { buildApp, type WalletAppDeps } from './app.ts';
export { DEFAULT_SETTINGS, FLAG_DEFAULTS, type WalletContext, type WalletSettings } from './context.ts';
export { ConfigSchema, loadConfig, type Config } from './config.ts';
export { runMigrations, MIGRATIONS_FOLDER } from './migrate.ts';
export { openapiDocument } from './openapi.ts';
