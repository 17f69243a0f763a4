import { createPool, ensureDatabase } from '@exchange/db';
import { createMessaging } from '@exchange/messaging';
import { purgeIdempotencyKeys, runService } from '@exchange/platform';
import { buildApp, keyStoreFor } from './app.ts';
import { loadConfig } from './config.ts';
import { runMigrations } from './migrate.ts';
import { ensureAdmin } from './seed.ts';
import { deleteExpiredSignatures } from './api-keys/repository.ts';
import { deleteStaleThrottles } from './login-security/repository.ts';

const config = loadConfig();
if (config.NODE_ENV !== 'production') await ensureDatabase(config.DATABASE_URL);
const pool = createPool({
  connectionString: config.DATABASE_URL,
  max: config.DATABASE_POOL_MAX,
  applicationName: 'auth',
});
await runMigrations(pool);
const keys = keyStoreFor(pool, config);
await keys.ensureKey();
const app = await buildApp({ pool, config, keys });

// The outbox relay publishes auth's domain events (mails: verification, reset, security notices). Auth consumes
// nothing; a broker outage only delays mails (the outbox keeps them, outbox_pending shows them), it never fails a
// request, so the broker is deliberately not part of /ready.
const messaging = createMessaging({
  url: config.AMQP_URL,
  service: 'auth',
  pool,
  schema: 'auth',
  registry: app.metrics.registry,
  logger: app.log,
  // auth has no inbox (it consumes nothing): the relay's cleanup must not look for one
  relay: { inboxRetentionMs: 0 },
});
await messaging.start({ waitForBroker: false });

if (config.ADMIN_EMAIL && config.ADMIN_PASSWORD) {
  const r = await ensureAdmin(pool, app.authContext.passwords, config.ADMIN_EMAIL, config.ADMIN_PASSWORD, 'env');
  app.log.info({ userId: r.id, created: r.created }, 'admin seeded from ADMIN_EMAIL');
}

// Housekeeping: expired replay entries, stale throttle rows, old idempotency keys.
const housekeeping = setInterval(() => {
  void (async () => {
    await deleteExpiredSignatures(pool);
    await deleteStaleThrottles(pool, config.LOGIN_LOCK_SECONDS);
    await purgeIdempotencyKeys(pool, 'auth', 24);
  })().catch((err) => app.log.warn({ err }, 'housekeeping failed'));
}, 60_000);
housekeeping.unref();
app.addHook('preClose', async () => {
  await messaging.relay?.stop();
});
app.addHook('onClose', async () => {
  clearInterval(housekeeping);
  await messaging.close();
  await pool.end();
});

await runService(app, { host: config.HOST, port: config.PORT, shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS });
