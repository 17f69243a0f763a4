import { createPool } from '@exchange/db';
import { buildApp } from './app.ts';

/** The wallet's OpenAPI document, built from the route schemas (no database or broker connection is made). */
export async function openapiDocument(): Promise<unknown> {
  const pool = createPool({ connectionString: 'postgres://openapi@127.0.0.1:1/none', max: 1 });
  const app = await buildApp({
    pool,
    auth: {
      jwksUrl: 'http://127.0.0.1:1/.well-known/jwks.json',
      issuer: 'exchange-auth',
      audience: 'exchange-api',
      internalToken: 'openapi-document-only',
      revocation: false,
    },
    fastify: { logger: false },
  });
  try {
    await app.ready();
    return app.swagger();
  } finally {
    await app.close();
    await pool.end();
  }
}
