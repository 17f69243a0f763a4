export { buildApp, keyStoreFor, type AuthDeps } from './app.ts';
export { ConfigSchema, loadConfig, type Config } from './config.ts';
export { runMigrations } from './migrate.ts';
export { openapiDocument } from './openapi.ts';
