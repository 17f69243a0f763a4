import type { FastifyServerOptions } from 'fastify';
import type pg from 'pg';
import { pingDatabase } from '@exchange/db';
import { createApp, registerIdempotency, type App } from '@exchange/platform';
import { parseInternalCallers, registerAuth } from '@exchange/auth-client';
import { trustProxyOption, type Config } from './config.ts';
import { backupMetrics } from './backups/service.ts';
import { createAuthMetrics, type AuthContext } from './context.ts';
import { Sealer } from './crypto.ts';
import { EmailTokens } from './email/service.ts';
import { KeyStore } from './signing-keys/service.ts';
import { Passwords } from './users/passwords.ts';
import { isSessionRevoked } from './sessions/service.ts';
import { Throttle } from './login-security/throttle.ts';
import { registerAdminRoutes } from './routes/admin.ts';
import { registerApiKeyRoutes } from './routes/apikeys.ts';
import { registerInternalRoutes } from './routes/internal.ts';
import { registerMfaRoutes } from './routes/mfa.ts';
import { registerPublicRoutes } from './routes/public.ts';
import { registerEmailRoutes } from './routes/email.ts';
import { registerSessionRoutes } from './routes/sessions.ts';
import { registerUserRoutes } from './routes/user.ts';

export interface AuthDeps {
  pool: pg.Pool;
  config: Config;
  /** Defaults to a KeyStore over `pool`; call `keys.ensureKey()` before serving (main.ts does). */
  keys?: KeyStore;
  fastify?: Partial<FastifyServerOptions>;
}

export function keyStoreFor(pool: pg.Pool, config: Config): KeyStore {
  return new KeyStore(pool, new Sealer(config.SIGNING_KEY_ENCRYPTION_KEY), {
    issuer: config.JWT_ISSUER,
    audience: config.JWT_AUDIENCE,
    accessTtlSeconds: config.ACCESS_TOKEN_TTL_SECONDS,
    activationDelaySeconds: config.SIGNING_KEY_ACTIVATION_DELAY_SECONDS,
  });
}

export async function buildApp(deps: AuthDeps): Promise<App> {
  const { pool, config } = deps;
  const app = await createApp({
    service: 'auth',
    version: config.SERVICE_VERSION,
    logLevel: config.LOG_LEVEL,
    readiness: { database: () => pingDatabase(pool) },
    openapi: {
      title: 'Exchange auth API',
      description:
        'Accounts, sessions (RS256 access tokens + rotating refresh tokens), TOTP 2FA, API keys, roles, audit',
    },
    fastify: { trustProxy: trustProxyOption(config.TRUST_PROXY), ...deps.fastify },
  });
  const keys = deps.keys ?? keyStoreFor(pool, config);
  backupMetrics(app.metrics.registry, pool);
  const ctx: AuthContext = {
    pool,
    config,
    keys,
    sealer: new Sealer(config.API_KEY_ENCRYPTION_KEY),
    passwords: new Passwords({
      memoryCost: config.ARGON2_MEMORY_KIB,
      timeCost: config.ARGON2_TIME_COST,
      parallelism: config.ARGON2_PARALLELISM,
    }),
    emailTokens: new EmailTokens(config.API_KEY_ENCRYPTION_KEY),
    throttle: new Throttle(pool),
    metrics: createAuthMetrics(app.metrics.registry),
    accountLimits: {
      soft: config.LOGIN_ACCOUNT_SOFT_LIMIT,
      lock: config.LOGIN_ACCOUNT_LOCK_LIMIT,
      baseMs: config.LOGIN_BACKOFF_BASE_MS,
      lockSeconds: config.LOGIN_LOCK_SECONDS,
    },
    ipLimits: {
      soft: config.LOGIN_IP_SOFT_LIMIT,
      lock: config.LOGIN_IP_LOCK_LIMIT,
      baseMs: config.LOGIN_BACKOFF_BASE_MS,
      lockSeconds: config.LOGIN_LOCK_SECONDS,
    },
  };
  app.decorate('authContext', ctx);

  // The auth service verifies its own tokens like everyone else (same plugin, same rules), but with its keys and
  // its session table in-process. Its routes need a user session: API keys are not accepted here.
  registerAuth(app, {
    jwksUrl: `http://127.0.0.1:${config.PORT}/.well-known/jwks.json`,
    issuer: config.JWT_ISSUER,
    audience: config.JWT_AUDIENCE,
    internalToken: config.INTERNAL_API_TOKEN,
    internalCallers: parseInternalCallers(config.INTERNAL_CALLERS),
    acceptApiKeys: false,
    resolveKey: (kid) => keys.publicKey(kid),
    isSessionRevoked: (sid) => isSessionRevoked(pool, sid),
  });

  // routes by audience (public, user, admin, internal); the user's own resources each in their file
  registerPublicRoutes(app, ctx);
  registerUserRoutes(app, ctx);
  registerEmailRoutes(app, ctx);
  registerSessionRoutes(app, ctx);
  registerMfaRoutes(app, ctx);
  registerInternalRoutes(app, ctx);
  // Responses of login, refresh, 2FA and API-key creation carry tokens or secrets; the idempotency store keeps
  // response bodies in the database, so it is registered only around the admin writes, whose responses hold none.
  registerApiKeyRoutes(app, ctx);
  await app.register(async (scope) => {
    registerIdempotency(scope as unknown as App, { pool, schema: 'auth' });
    registerAdminRoutes(scope as unknown as App, ctx);
  });
  return app;
}
