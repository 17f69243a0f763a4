import { parseInternalCallers } from '@exchange/auth-client';
import { trustProxyOption } from '@exchange/config';
/**
 * Wallet service entry point: config → pool → migrate → app → broker (relay + consumers) → scheduler → listen.
 * Shutdown (runService): HTTP drains, then `preClose` stops the scheduler, the consumers (waiting for the running
 * handler, unacked messages go back) and the outbox relay; `onClose` closes the broker connection and the pool.
 */
import { createPool, pingDatabase } from '@exchange/db';
import { createMessaging, type Messaging } from '@exchange/messaging';
import { runService } from '@exchange/platform';
import { buildApp } from './app.ts';
import { createOrderClient } from './clients/order-client.ts';
import { createPaymentProcessorClient } from './clients/payment-processor-client.ts';
import { loadConfig } from './config.ts';
import { WALLET_SCHEMA } from './db/schema.ts';
import { runMigrations } from './migrate.ts';
import { startConsumers } from './messaging/queues.ts';
import { Scheduler } from './jobs/scheduler.ts';

const config = loadConfig();
const pool = createPool({
  connectionString: config.DATABASE_URL,
  max: config.DATABASE_POOL_MAX,
  applicationName: 'wallet',
});
await runMigrations(pool);

const broker: { messaging?: Messaging } = {};
const reconciliation = {
  orders: createOrderClient({ baseUrl: config.ORDER_URL, internalToken: config.INTERNAL_API_TOKEN }),
  rail: createPaymentProcessorClient({
    baseUrl: config.PAYMENT_PROCESSOR_URL,
    internalToken: config.INTERNAL_API_TOKEN,
  }),
  orderGraceMs: config.RECONCILIATION_GRACE_S * 1000,
};
const app = await buildApp({
  // API-key IP allow-lists need the real client IP: believe X-Forwarded-For only from the proxy in front
  fastify: { trustProxy: trustProxyOption(config.TRUST_PROXY) },
  pool,
  reconciliation,
  auth: {
    jwksUrl: config.AUTH_JWKS_URL,
    issuer: config.JWT_ISSUER,
    audience: config.JWT_AUDIENCE,
    internalToken: config.INTERNAL_API_TOKEN,
    internalCallers: parseInternalCallers(config.INTERNAL_CALLERS),
    mfaFreshSeconds: config.MFA_FRESH_SECONDS,
  },
  settings: {
    sandboxDeposits: config.SANDBOX_DEPOSITS,
    depositConfirmationMs: config.DEPOSIT_CONFIRMATION_MS,
    withdrawalDispatchDelayMs: config.WITHDRAWAL_DISPATCH_DELAY_MS,
    mfaMaxAgeS: config.WITHDRAWAL_MFA_MAX_AGE_S,
    withdrawalEmailConfirmThresholds: config.WITHDRAWAL_EMAIL_CONFIRM_THRESHOLDS,
    withdrawalEmailConfirmTtlS: config.WITHDRAWAL_EMAIL_CONFIRM_TTL_S,
    ...(config.WITHDRAWAL_DAILY_LIMITS ? { withdrawalDailyLimits: config.WITHDRAWAL_DAILY_LIMITS } : {}),
  },
  readiness: {
    database: () => pingDatabase(pool),
    broker: async () => {
      const h = await broker.messaging?.health();
      if (!h?.ok) throw new Error(h?.error ?? 'not connected');
    },
  },
  logLevel: config.LOG_LEVEL,
  version: config.SERVICE_VERSION,
});

// The broker comes after the app only so its metrics land on the app's registry (served at /metrics).
const messaging = createMessaging({
  url: config.AMQP_URL,
  service: 'wallet',
  pool,
  schema: WALLET_SCHEMA,
  registry: app.metrics.registry,
  logger: app.log,
});
broker.messaging = messaging;
const consumers = await startConsumers(
  messaging,
  app.wallet.assets,
  app.log,
  {},
  (s) => app.wallet.metrics.settlementLag.observe(s),
  config.CONSUMER_BATCH_SIZE,
);
await messaging.start();

const scheduler = new Scheduler({
  pool,
  assets: app.wallet.assets,
  pollMs: config.SCHEDULER_POLL_MS,
  reconciliationIntervalMs: config.RECONCILIATION_INTERVAL_MS,
  reconciliationStartDelayMs: config.RECONCILIATION_START_DELAY_MS,
  metrics: app.wallet.metrics,
  reconciliation,
  log: app.log,
});
scheduler.start();

app.addHook('preClose', async () => {
  await scheduler.stop();
  await Promise.all(consumers.map((c) => c.stop()));
  await messaging.relay?.stop();
});
app.addHook('onClose', async () => {
  await messaging.close();
  await pool.end();
});

await runService(app, { host: config.HOST, port: config.PORT, shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS });
