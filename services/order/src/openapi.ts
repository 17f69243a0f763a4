// The OpenAPI document of this service, built from the route schemas without connecting to anything.
import { createPool } from '@exchange/db';
import { loadCatalog } from '@exchange/contracts/markets';
import { buildApp } from './app.ts';

export async function openapiDocument(): Promise<unknown> {
  const pool = createPool({ connectionString: 'postgres://unused@127.0.0.1:1/unused', max: 1 }); // never queried
  const app = await buildApp({
    pool,
    catalog: loadCatalog(),
    wallet: {
      hold: () => Promise.reject(new Error('not connected')),
      release: () => Promise.reject(new Error('not connected')),
    },
    auth: {
      jwksUrl: 'http://127.0.0.1:1/.well-known/jwks.json',
      issuer: 'exchange-auth',
      audience: 'exchange-api',
      internalToken: 'openapi-document-only-token',
    },
    management: { managementUrl: 'http://127.0.0.1:1', vhost: '/' },
    fastify: { logger: false },
  });
  await app.ready();
  const doc = app.swagger();
  await app.close();
  await pool.end();
  return doc;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(`${JSON.stringify(await openapiDocument(), null, 2)}\n`);
}
