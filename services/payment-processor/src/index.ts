export { buildApp, type AppDeps } from './app.ts';
export { ConfigSchema, loadConfig, type Config } from './config.ts';
export { MarketCore, type ApplyResult, type CoreSnapshot, type JournalCommand } from './engine/core.ts';
export { EngineHost, type MarketStatus } from './engine/engine-host.ts';
export { MarketEngine } from './engine/market-engine.ts';
export { runMigrations, MIGRATIONS_FOLDER } from './migrate.ts';
export { openapiDocument } from './openapi.ts';
export { railDecision } from './payouts/rail.ts';
export { createRuntime } from './runtime.ts';
