import { parseInternalCallers } from '@exchange/auth-client';
import { trustProxyOption } from '@exchange/config';
// Process entry: config → pool → migrate → broker → app → consumers/relay/sweeper → listen; graceful shutdown.
import { createPool } from '@exchange/db';
import { loadCatalog } from '@exchange/contracts/markets';
import { createMessaging } from '@exchange/messaging';
import { runService } from '@exchange/platform';
import { buildApp } from './app.ts';
import { loadConfig } from './config.ts';
import { ORDERS_SCHEMA } from './db/schema.ts';
import { orderEventsHandler } from './messaging/order-events.ts';
import { eventsConsumer, eventsQueue } from './messaging/queues.ts';
import { runMigrations } from './migrate.ts';
import { startSweeper } from './orders/service.ts';
import { startAmendSweeper } from './orders/amend.ts';
import { StreamFeed, StreamHub } from './stream.ts';
import { startCodHeartbeat } from './session/cancel-on-disconnect.ts';
import { startDeadManScheduler } from './session/dead-man-switch.ts';
import { vhostOf } from './trading-health.ts';
import { createWalletClient } from './clients/wallet-client.ts';

const cfg = loadConfig();
const catalog = loadCatalog(cfg.MARKETS_FILE);
const pool = createPool({ connectionString: cfg.DATABASE_URL, max: cfg.DATABASE_POOL_MAX, applicationName: 'order' });
await runMigrations(pool);

const hub = new StreamHub();
const ref: { messaging?: ReturnType<typeof createMessaging> } = {};
const app = await buildApp({
  // API-key IP allow-lists need the real client IP: believe X-Forwarded-For only from the proxy in front
  fastify: { trustProxy: trustProxyOption(cfg.TRUST_PROXY) },
  pool,
  catalog,
  hub,
  logLevel: cfg.LOG_LEVEL,
  version: cfg.SERVICE_VERSION,
  wallet: createWalletClient({
    baseUrl: cfg.WALLET_URL,
    internalToken: cfg.INTERNAL_API_TOKEN,
    timeoutMs: cfg.WALLET_TIMEOUT_MS,
  }),
  auth: {
    jwksUrl: cfg.AUTH_JWKS_URL,
    issuer: cfg.JWT_ISSUER,
    audience: cfg.JWT_AUDIENCE,
    internalToken: cfg.INTERNAL_API_TOKEN,
    internalCallers: parseInternalCallers(cfg.INTERNAL_CALLERS),
    mfaFreshSeconds: cfg.MFA_FRESH_SECONDS,
  },
  management: { managementUrl: cfg.RABBITMQ_MANAGEMENT_URL, vhost: vhostOf(cfg.AMQP_URL) },
  pendingTimeoutMs: cfg.PENDING_ORDER_TIMEOUT_S * 1000,
  codStaleMs: cfg.COD_STALE_MS,
  orderLimits: {
    ordersPerSecond: cfg.ORDER_RATE_PER_SECOND,
    burst: cfg.ORDER_RATE_BURST,
    maxOpenOrders: cfg.MAX_OPEN_ORDERS_PER_USER,
  },
  // Fault injection for the crash-recovery test only: die (kill -9) between the wallet hold and the commit.
  ...(cfg.NODE_ENV === 'test' && process.env.ORDER_FAULT === 'kill-after-hold'
    ? { afterHold: async () => void process.kill(process.pid, 'SIGKILL') }
    : {}),
  readiness: {
    broker: async () => {
      const h = await ref.messaging?.health();
      if (!h?.ok) throw new Error(h?.error ?? 'broker not connected');
    },
  },
});

const messaging = createMessaging({
  url: cfg.AMQP_URL,
  service: 'order',
  pool,
  schema: ORDERS_SCHEMA,
  registry: app.metrics.registry,
  logger: app.log,
});
ref.messaging = messaging;
await messaging.declareQueue(eventsQueue({ attempts: 5, backoffMs: [1_000, 5_000, 30_000, 120_000, 600_000] }));
await messaging.connection.register(new StreamFeed(hub, catalog, app.log));
await messaging.start();
await messaging.consume(eventsConsumer(orderEventsHandler({ catalog, log: app.log }), cfg.CONSUMER_BATCH_SIZE));
const stopSweeper = startSweeper(app.orderService, cfg.SWEEP_INTERVAL_MS, app.log);
const stopAmendSweeper = startAmendSweeper(
  app.orderAmends,
  cfg.SWEEP_INTERVAL_MS,
  cfg.PENDING_ORDER_TIMEOUT_S * 1000,
  app.log,
);

const stopDeadMan = startDeadManScheduler(app.deadManSwitches, cfg.DEAD_MAN_POLL_MS, app.log, (r) => {
  app.order.metrics.sessionCancels.inc({ trigger: 'dead_man_switch' }, r.length);
  app.order.metrics.cancelRequests.inc(
    { reason: 'dead_man_switch' },
    r.reduce((n, f) => n + f.cancelled, 0),
  );
});
const stopCod = startCodHeartbeat(app.cancelOnDisconnect, cfg.COD_HEARTBEAT_MS, app.log, (r) => {
  app.order.metrics.sessionCancels.inc({ trigger: 'disconnect_stale' }, r.length);
  app.order.metrics.cancelRequests.inc(
    { reason: 'disconnect' },
    r.reduce((n, e) => n + e.cancelled, 0),
  );
});

app.addHook('preClose', async () => {
  await stopDeadMan();
  await stopCod();
  await stopSweeper();
  await stopAmendSweeper();
  await messaging.close();
});
app.addHook('onClose', async () => {
  await pool.end();
});

await runService(app, { host: cfg.HOST, port: cfg.PORT, shutdownTimeoutMs: cfg.SHUTDOWN_TIMEOUT_MS });
