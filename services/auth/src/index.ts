export { buildApp, keyStoreFor, type AuthDeps } from './app.ts';
export { AuthEnv, loadAuthConfig, type AuthConfig } from './config.ts';
export { migrateAuth } from './migrate.ts';
export { openapiDocument } from './openapi.ts';
