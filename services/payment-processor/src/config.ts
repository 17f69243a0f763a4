import { loadConfigOrExit, tradingServiceEnv, Type, type Static } from '@exchange/config';

export const ConfigSchema = Type.Object({
  ...tradingServiceEnv(3004),
  MARKETS: Type.String({
    default: '',
    pattern: '^([A-Z0-9]{2,10}-[A-Z0-9]{2,10}(,[A-Z0-9]{2,10}-[A-Z0-9]{2,10})*)?$',
    description: 'Comma-separated markets this deployment runs engines for (default: every market of the catalog)',
  }),
  MARKETS_FILE: Type.Optional(Type.String({ description: 'Market catalog JSON (default: the built-in catalog)' })),
  SNAPSHOT_EVERY: Type.Integer({
    minimum: 1,
    default: 500,
    description:
      'Store an engine snapshot every N commands per market, or every as many commands as the last snapshot held resting orders, up to 10 × N (bounds the journal replayed on recovery)',
  }),
  BOOK_SNAPSHOT_INTERVAL_MS: Type.Integer({
    minimum: 0,
    default: 250,
    description: 'Publish market.book-snapshot at most this often per market (a trailing one follows the last change)',
  }),
  BOOK_SNAPSHOT_DEPTH: Type.Integer({ minimum: 1, maximum: 200, default: 50, description: 'Levels per side' }),
  ORDERS_PREFETCH: Type.Integer({ minimum: 1, default: 50, description: 'Unacked engine commands per market queue' }),
  ENGINE_HALT_AFTER_FAILURES: Type.Integer({
    minimum: 1,
    maximum: 50,
    default: 5,
    description:
      'Retries (200 ms, 1 s, 5 s, 15 s, 60 s …) of an engine command failing for a reason that is neither transient nor its content, before its market halts (never skipped)',
  }),
  PAYOUT_FAILURE_RATE: Type.Number({
    minimum: 0,
    maximum: 1,
    default: 0.02,
    description: 'Share of payouts the simulated rail rejects (deterministic per withdrawal id)',
  }),
  PAYOUT_DELAY_MS: Type.Integer({ minimum: 0, default: 200, description: 'Simulated rail latency per payout' }),
  PAYOUT_SEED: Type.String({ default: 'sandbox-rail', description: 'Seed of the simulated rail decisions' }),
  PAYOUT_CONCURRENCY: Type.Integer({ minimum: 1, default: 4, description: 'Payouts processed at once' }),
  RABBITMQ_MANAGEMENT_URL: Type.Optional(
    Type.String({
      pattern: '^https?://',
      description: 'RabbitMQ management API (with credentials), to report which replica is the active consumer',
    }),
  ),
  REPLICA_ID: Type.Optional(Type.String({ maxLength: 100, description: 'Name of this replica (default host:pid)' })),
});

export type Config = Static<typeof ConfigSchema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return loadConfigOrExit('payment-processor', ConfigSchema, env);
}
