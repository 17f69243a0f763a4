import { promClient } from '@exchange/platform';
import { CHECK_NAMES, type ReconciliationMetrics } from './reconciliation/service.ts';

/** Label values of withdrawals_blocked_total. */
export const BLOCK_REASONS = ['kill_switch', 'mfa', 'scope', 'velocity', 'limits', 'address', 'insufficient_funds'];

export interface WalletMetrics extends ReconciliationMetrics {
  withdrawalsBlocked: promClient.Counter<'reason'>;
  withdrawalsRequested: promClient.Counter<'asset'>;
  depositsRequested: promClient.Counter<'asset'>;
  settlementLag: promClient.Histogram;
}

/** Wallet metrics on the app's registry (served at /metrics). */
export function createWalletMetrics(registry: promClient.Registry): WalletMetrics {
  const m: WalletMetrics = {
    withdrawalsBlocked: new promClient.Counter({
      name: 'withdrawals_blocked_total',
      help: 'Withdrawal requests refused by policy, by reason (kill_switch, mfa, scope, velocity, limits, address, insufficient_funds)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    withdrawalsRequested: new promClient.Counter({
      name: 'withdrawals_requested_total',
      help: 'Withdrawals accepted (funds held), by asset',
      labelNames: ['asset'],
      registers: [registry],
    }),
    depositsRequested: new promClient.Counter({
      name: 'deposits_requested_total',
      help: 'Sandbox deposits accepted, by asset',
      labelNames: ['asset'],
      registers: [registry],
    }),
    settlementLag: new promClient.Histogram({
      name: 'settlement_lag_seconds',
      help: 'Time from a trade executing in the engine to its settlement in the ledger',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
    mismatches: new promClient.Counter({
      name: 'reconciliation_mismatches_total',
      help: 'Mismatches found by reconciliation runs, by check',
      labelNames: ['check'],
      registers: [registry],
    }),
    runs: new promClient.Counter({
      name: 'reconciliation_runs_total',
      help: 'Reconciliation runs, by outcome (ok, mismatch)',
      labelNames: ['status'],
      registers: [registry],
    }),
    lastRun: new promClient.Gauge({
      name: 'reconciliation_last_run_timestamp_seconds',
      help: 'When the last reconciliation run on this instance finished',
      registers: [registry],
    }),
  };
  // Every series exists from the start (at 0), so increase() and alerts see the first increment.
  for (const reason of BLOCK_REASONS) m.withdrawalsBlocked.labels(reason).inc(0);
  for (const check of CHECK_NAMES()) m.mismatches.labels(check).inc(0);
  return m;
}
