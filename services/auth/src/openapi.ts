import { createPool } from '@exchange/db';
import { buildApp } from './app.ts';
import { ConfigSchema } from './config.ts';
import { loadConfig } from '@exchange/config';

/** The OpenAPI document, built from the route schemas without touching a database (the pool never connects). */
export async function openapiDocument() {
  const config = loadConfig('auth', ConfigSchema, {
    INTERNAL_API_TOKEN: 'openapi-document-only',
    SIGNING_KEY_ENCRYPTION_KEY: Buffer.alloc(32).toString('base64'),
    API_KEY_ENCRYPTION_KEY: Buffer.alloc(32).toString('base64'),
    ARGON2_MEMORY_KIB: '8192',
    ARGON2_TIME_COST: '1',
  });
  const pool = createPool({ connectionString: 'postgres://openapi@127.0.0.1:1/none', max: 1 });
  const app = await buildApp({ pool, config, fastify: { logger: false } });
  await app.ready();
  const doc = app.swagger();
  await app.close();
  await pool.end();
  return doc;
}
