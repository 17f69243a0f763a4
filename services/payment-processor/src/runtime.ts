/**
 * Wiring shared by main.ts and the OpenAPI generator: build every component from the config without connecting.
 */
import { hostname } from 'node:os';
import { parseInternalCallers } from '@exchange/auth-client';
import { loadCatalog, type Market } from '@exchange/contracts/markets';
import '@exchange/contracts/trading';
import { createPool, type Pool } from '@exchange/db';
import { createMessaging, stderrLogger, type Logger, type Messaging } from '@exchange/messaging';
import { promClient } from '@exchange/platform';
import type { Config } from './config.ts';
import { PAYMENT_SCHEMA } from './db/schema.ts';
import { EngineHost } from './engine/engine-host.ts';
import { createPaymentMetrics } from './metrics.ts';
import { PayoutService } from './payouts/payouts.ts';

export interface Runtime {
  pool: Pool;
  messaging: Messaging;
  engines: EngineHost;
  payouts: PayoutService;
  registry: promClient.Registry;
  replicaId: string;
  connectionName: string;
  /** Re-point the components' logger (at the app's pino logger once the app exists). */
  setLogger(logger: Logger): void;
}

export function selectMarkets(config: Pick<Config, 'MARKETS' | 'MARKETS_FILE'>): Market[] {
  const catalog = loadCatalog(config.MARKETS_FILE);
  const wanted = config.MARKETS ? config.MARKETS.split(',') : [...catalog.markets.keys()];
  return wanted.map((s) => {
    const m = catalog.market(s);
    if (!m) throw new Error(`MARKETS: unknown market ${s} (catalog has ${[...catalog.markets.keys()].join(', ')})`);
    return m;
  });
}

export function createRuntime(config: Config): Runtime {
  const replicaId = config.REPLICA_ID ?? `${hostname()}:${process.pid}`;
  const connectionName = `payment-processor@${replicaId}`;
  let current: Logger = stderrLogger;
  const logger: Logger = {
    debug: (o, m) => current.debug(o, m),
    info: (o, m) => current.info(o, m),
    warn: (o, m) => current.warn(o, m),
    error: (o, m) => current.error(o, m),
  };
  const pool = createPool({
    connectionString: config.DATABASE_URL,
    max: config.DATABASE_POOL_MAX,
    applicationName: `payment-processor:${replicaId}`,
  });
  // A connection that dies while checked out (database restart, failover, terminated backend) emits 'error' on its
  // client; without a listener that would crash the process. The query in flight rejects anyway, the transaction
  // fails and is retried by the consumer, and the dead client is discarded on release.
  pool.on('connect', (client) => {
    client.on('error', (err) => logger.warn({ err }, 'database connection lost'));
  });
  const registry = new promClient.Registry();
  const metrics = createPaymentMetrics(registry);
  const messaging = createMessaging({
    url: config.AMQP_URL,
    service: 'payment-processor',
    pool,
    schema: PAYMENT_SCHEMA,
    connectionName,
    logger,
    registry,
  });
  const markets = selectMarkets(config);
  const vhost = decodeURIComponent(new URL(config.AMQP_URL).pathname.replace(/^\//, '')) || '/';
  const engines = new EngineHost({
    markets,
    pool,
    messaging,
    replicaId,
    snapshotEvery: config.SNAPSHOT_EVERY,
    bookSnapshotIntervalMs: config.BOOK_SNAPSHOT_INTERVAL_MS,
    bookSnapshotDepth: config.BOOK_SNAPSHOT_DEPTH,
    prefetch: config.ORDERS_PREFETCH,
    batch: config.CONSUMER_BATCH_SIZE,
    haltAfterFailures: config.ENGINE_HALT_AFTER_FAILURES,
    metrics,
    logger,
    ...(config.RABBITMQ_MANAGEMENT_URL
      ? { management: { url: config.RABBITMQ_MANAGEMENT_URL, vhost, connectionName } }
      : {}),
  });
  const payouts = new PayoutService({
    messaging,
    catalog: loadCatalog(config.MARKETS_FILE),
    rail: { failureRate: config.PAYOUT_FAILURE_RATE, delayMs: config.PAYOUT_DELAY_MS, seed: config.PAYOUT_SEED },
    concurrency: config.PAYOUT_CONCURRENCY,
    metrics,
    logger,
  });
  return {
    pool,
    messaging,
    engines,
    payouts,
    registry,
    replicaId,
    connectionName,
    setLogger(l) {
      current = l;
    },
  };
}

export function authOptions(config: Config) {
  return {
    jwksUrl: config.AUTH_JWKS_URL,
    issuer: config.JWT_ISSUER,
    audience: config.JWT_AUDIENCE,
    internalToken: config.INTERNAL_API_TOKEN,
    // who may call /internal/* (the wallet's reconciliation reads the rail's payout records)
    internalCallers: parseInternalCallers(config.INTERNAL_CALLERS),
    mfaFreshSeconds: config.MFA_FRESH_SECONDS,
  };
}
