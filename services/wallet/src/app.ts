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
import { parseEmailConfirmThresholds, parseWithdrawalLimits } from './funding/service.ts';
import { createWalletMetrics } from './metrics.ts';
import type { ReconciliationSources } from './reconciliation/service.ts';
import { registerAdminRoutes } from './routes/admin.ts';
import { registerInternalRoutes } from './routes/internal.ts';
import { registerPayoutRoutes } from './routes/payouts.ts';
import { registerUserRoutes } from './routes/user.ts';
import { DEFAULT_SETTINGS, FLAG_DEFAULTS, type WalletContext, type WalletSettings } from './context.ts';

export interface WalletAppDeps {
  pool: Pool;
  auth: AuthOptions;
  assets?: Assets;
  settings?: Partial<WalletSettings>;
  readiness?: Record<string, ReadinessCheck>;
  logLevel?: string;
  version?: string;
  fastify?: CreateAppOptions['fastify'];
  /**
   * The order service's and payment-processor's internal APIs for reconciliation's order_holds, trades_unsettled and
   * rail_payouts checks (each left out without its source).
   */
  reconciliation?: ReconciliationSources;
}

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
      : new Map<string, bigint>(),
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
