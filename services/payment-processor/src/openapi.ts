import { buildApp } from './app.ts';
import { ConfigSchema } from './config.ts';
import { loadConfig } from '@exchange/config';
import { authOptions, createRuntime } from './runtime.ts';

/** The OpenAPI document of the service, built without touching the database or the broker. */
export async function openapiDocument(): Promise<unknown> {
  const config = loadConfig('payment-processor', ConfigSchema, {
    INTERNAL_API_TOKEN: 'openapi-document-only-not-a-secret',
    LOG_LEVEL: 'silent',
  });
  const rt = createRuntime(config);
  const app = await buildApp({
    pool: rt.pool,
    messaging: rt.messaging,
    engines: rt.engines,
    auth: authOptions(config),
    replicaId: rt.replicaId,
    logLevel: 'silent',
  });
  try {
    await app.ready();
    return app.swagger();
  } finally {
    await app.close();
    await rt.messaging.close();
    await rt.pool.end();
  }
}
