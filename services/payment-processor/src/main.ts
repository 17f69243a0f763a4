// config → pool → migrate → broker → app → engines/consumers → listen. Consumers stop in preClose (the command in
// flight finishes and each engine snapshots), the broker connection and the pool close in onClose.
import { trustProxyOption } from '@exchange/config';
import { runService } from '@exchange/platform';
import { buildApp } from './app.ts';
import { loadConfig } from './config.ts';
import { runMigrations } from './migrate.ts';
import { authOptions, createRuntime } from './runtime.ts';

const config = loadConfig();
const rt = createRuntime(config);
await runMigrations(rt.pool);
const app = await buildApp({
  pool: rt.pool,
  messaging: rt.messaging,
  engines: rt.engines,
  auth: authOptions(config),
  replicaId: rt.replicaId,
  registry: rt.registry,
  version: config.SERVICE_VERSION,
  logLevel: config.LOG_LEVEL,
  // admin routes: the audit names the real client IP behind Kong
  fastify: { trustProxy: trustProxyOption(config.TRUST_PROXY) },
});
rt.setLogger(app.log);
await rt.messaging.start();
await rt.engines.start();
await rt.payouts.start();
app.addHook('preClose', async () => {
  await rt.payouts.stop();
  await rt.engines.stop();
});
app.addHook('onClose', async () => {
  await rt.messaging.close();
  await rt.pool.end();
});
await runService(app, { host: config.HOST, port: config.PORT, shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS });
app.log.info({ replica: rt.replicaId, markets: [...rt.engines.engines.keys()] }, 'payment-processor: consuming');
