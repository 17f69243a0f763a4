// config → pool → migrate → app → consumer + sender → listen. Shutdown: the consumer and the sender finish the
// message / mail in hand (preClose), then the broker connection and the pool close (onClose).
import { createPool, ensureDatabase } from '@exchange/db';
import { runService } from '@exchange/platform';
import { buildApp } from './app.ts';
import { loadConfig } from './config.ts';
import { authContacts } from './contacts.ts';
import { runMigrations } from './migrate.ts';
import { createRuntime } from './runtime.ts';
import { smtpTransport } from './sender.ts';

const config = loadConfig();
if (config.NODE_ENV !== 'production') await ensureDatabase(config.DATABASE_URL);
const pool = createPool({
  connectionString: config.DATABASE_URL,
  max: config.DATABASE_POOL_MAX,
  applicationName: 'notification',
});
await runMigrations(pool);

const broker: { messaging?: import('@exchange/messaging').Messaging } = {};
const app = await buildApp({ pool, broker, logLevel: config.LOG_LEVEL, version: config.SERVICE_VERSION });
const rt = createRuntime({
  pool,
  amqpUrl: config.AMQP_URL,
  registry: app.metrics.registry,
  logger: app.log,
  contacts: authContacts({ authUrl: config.AUTH_URL, internalToken: config.INTERNAL_API_TOKEN }),
  transport: smtpTransport({
    host: config.SMTP_HOST,
    port: config.SMTP_PORT,
    secure: config.SMTP_SECURE,
    requireTls: config.SMTP_REQUIRE_TLS,
    user: config.SMTP_USER,
    password: config.SMTP_PASSWORD,
    timeoutMs: config.SMTP_TIMEOUT_MS,
  }),
  from: config.MAIL_FROM,
  product: config.MAIL_PRODUCT_NAME,
  webUrl: config.PUBLIC_WEB_URL,
  maxAttempts: config.MAIL_MAX_ATTEMPTS,
  retryBaseMs: config.MAIL_RETRY_BASE_MS,
  retryMaxMs: config.MAIL_RETRY_MAX_MS,
  pollMs: config.MAIL_POLL_MS,
  concurrency: config.MAIL_SEND_CONCURRENCY,
  retentionDays: config.MAIL_RETENTION_DAYS,
});
broker.messaging = rt.messaging;
await rt.start();
app.log.info(
  { smtp: `${config.SMTP_HOST}:${config.SMTP_PORT}`, secure: config.SMTP_SECURE, from: config.MAIL_FROM },
  'notification: consuming notification.mails, sending over SMTP',
);

app.addHook('preClose', async () => {
  await rt.consumer?.stop();
  await rt.sender.stop();
});
app.addHook('onClose', async () => {
  await rt.messaging.close();
  await pool.end();
});

await runService(app, { host: config.HOST, port: config.PORT, shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS });
