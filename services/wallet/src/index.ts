// The wallet package's public surface. Other packages import from here (or `./config`, `./testing`), never `src/`.
export { actorOf, buildApp, DEFAULT_SETTINGS, FLAG_DEFAULTS, type WalletAppDeps, type WalletContext } from './app.ts';
export { ConfigSchema, loadConfig, type Config } from './config.ts';
export { runMigrations, MIGRATIONS_FOLDER } from './migrate.ts';
export { openapiDocument } from './openapi.ts';
