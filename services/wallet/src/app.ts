import type { FastifyRequest } from 'fastify';
import { registerAuth, type AuthOptions } from '@exchange/auth-client';
import type { Pool } from '@exchange/db';
import {
  createApp,
  FeatureFlags,
  registerIdempotency,
  type App,
  type CreateAppOptions,
  type ReadinessCheck,
} from '@exchange/platform';
import { Assets } from './assets.ts';
import { WALLET_SCHEMA } from './db/schema.ts';
import { parseEmailConfirmThresholds, parseWithdrawalLimits } from './funding.ts';
import { createWalletMetrics, type WalletMetrics } from './metrics.ts';
import type { ReconciliationSources } from './reconciliation.ts';
import { registerAdminRoutes } from './routes/admin.ts';
import { registerInternalRoutes } from './routes/internal.ts';
import { registerPayoutRoutes } from './routes/payouts.ts';
import { registerUserRoutes } from './routes/user.ts';

export interface WalletSettings {
  /** Self-credited deposits (sandbox deployments only). */
  sandboxDeposits: boolean;
  depositConfirmationMs: number;
  withdrawalDispatchDelayMs: number;
  mfaMaxAgeS: number;
  /** JSON of WITHDRAWAL_DAILY_LIMITS (undefined = built-in tiers). */
  withdrawalDailyLimits?: string;
  /**
   * JSON of WITHDRAWAL_EMAIL_CONFIRM_THRESHOLDS ({"ASSET": "decimal"}): withdrawals of at least that much wait for
   * the emailed link. Undefined here = none (main.ts always passes the configured value, which has a default).
   */
  withdrawalEmailConfirmThresholds?: string;
  /** How long the withdrawal confirmation link works (s); then the withdrawal is cancelled. */
  withdrawalEmailConfirmTtlS: number;
}

export const DEFAULT_SETTINGS: WalletSettings = {
  sandboxDeposits: false,
  depositConfirmationMs: 5_000,
  withdrawalDispatchDelayMs: 5_000,
  mfaMaxAgeS: 300,
  withdrawalEmailConfirmTtlS: 1800,
};

export interface WalletAppDeps {
  pool: Pool;
  auth: AuthOptions;
  assets?: Assets;
  settings?: Partial<WalletSettings>;
  readiness?: Record<string, ReadinessCheck>;
  logLevel?: string;
  version?: string;
  fastify?: CreateAppOptions['fastify'];
  /** The order service's internal API for reconciliation's order_holds check (left out without it). */
  reconciliation?: ReconciliationSources;
}

/** What the routes share. */
export interface WalletContext {
  pool: Pool;
  assets: Assets;
  settings: WalletSettings;
  limits: ReturnType<typeof parseWithdrawalLimits>;
  emailConfirmThresholds: Map<string, bigint>;
  flags: FeatureFlags;
  metrics: WalletMetrics;
  reconciliation: ReconciliationSources;
}

declare module 'fastify' {
  interface FastifyInstance {
    wallet: WalletContext;
  }
}

export const FLAG_DEFAULTS = { withdrawals: true, deposits: true };

/** Who is acting, for audit rows and flag changes. */
export const actorOf = (req: FastifyRequest): string =>
  req.principal ? `user:${req.principal.id}` : req.url.startsWith('/internal/') ? 'service' : 'anonymous';

/** The wallet's HTTP app: plugins (auth, idempotency) then routes. Does not listen. */
export async function buildApp(deps: WalletAppDeps): Promise<App> {
  const assets = deps.assets ?? new Assets();
  const settings: WalletSettings = { ...DEFAULT_SETTINGS, ...deps.settings };
  const app = await createApp({
    service: 'wallet',
    ...(deps.version ? { version: deps.version } : {}),
    ...(deps.logLevel ? { logLevel: deps.logLevel } : {}),
    ...(deps.readiness ? { readiness: deps.readiness } : {}),
    ...(deps.fastify ? { fastify: deps.fastify } : {}),
    openapi: {
      title: 'Wallet API',
      description:
        'Balances, ledger statement, sandbox deposits, withdrawals, reconciliation; internal hold API for the order service.',
    },
  });
  const ctx: WalletContext = {
    pool: deps.pool,
    assets,
    settings,
    limits: parseWithdrawalLimits(settings.withdrawalDailyLimits, assets),
    emailConfirmThresholds: settings.withdrawalEmailConfirmThresholds
      ? parseEmailConfirmThresholds(settings.withdrawalEmailConfirmThresholds, assets)
      : new Map(),
    flags: new FeatureFlags({ pool: deps.pool, schema: WALLET_SCHEMA, defaults: FLAG_DEFAULTS }),
    metrics: createWalletMetrics(app.metrics.registry),
    reconciliation: deps.reconciliation ?? {},
  };
  app.decorate('wallet', ctx);

  registerAuth(app, deps.auth);
  registerIdempotency(app, { pool: deps.pool, schema: WALLET_SCHEMA });

  registerUserRoutes(app, ctx);
  registerAdminRoutes(app, ctx);
  registerPayoutRoutes(app, ctx);
  registerInternalRoutes(app, ctx);
  return app;
}
