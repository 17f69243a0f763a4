/**
 * The wallet's service context: what the routes and jobs share (pool, assets, settings, limits, flags, metrics,
 * reconciliation sources) and its Fastify decoration (`app.wallet`). Who is acting: `actorOf` of @exchange/auth-client.
 */
import type { Pool } from '@exchange/db';
import type { FeatureFlags } from '@exchange/platform';
import type { Assets } from './assets.ts';
import type { parseWithdrawalLimits } from './funding/service.ts';
import type { WalletMetrics } from './metrics.ts';
import type { ReconciliationSources } from './reconciliation/service.ts';

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
