/**
 * The wallet's durable scheduler. All state is in Postgres (deposits.confirm_at, withdrawals.dispatch_at, the time of
 * the last scheduled reconciliation report), so a restart loses nothing: whatever became due while the service was
 * down is picked up on the first tick. Rows are claimed with FOR UPDATE SKIP LOCKED, so any number of replicas can
 * run it; scheduled reconciliation runs on one replica at a time (advisory lock).
 */
import type { Pool } from '@exchange/db';
import { purgeIdempotencyKeys } from '@exchange/platform';
import type { Assets } from '../assets.ts';
import { confirmNextDeposit, dispatchNextWithdrawal, expireNextUnconfirmedWithdrawal } from '../funding/service.ts';
import {
  runReconciliation,
  type ReconciliationMetrics,
  type ReconciliationSources,
} from '../reconciliation/service.ts';
import * as repo from './repository.ts';

/** An incomplete scheduled reconciliation is run again this soon (or after the interval, if that is shorter). */
const RETRY_INCOMPLETE_MS = 5 * 60_000;

export interface SchedulerLogger {
  info(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface SchedulerOptions {
  pool: Pool;
  /** For the amounts of withdrawal.failed when an unconfirmed withdrawal expires (default: built-in catalog). */
  assets?: Assets;
  pollMs: number;
  /** 0 = no scheduled reconciliation. */
  reconciliationIntervalMs: number;
  /**
   * No scheduled reconciliation this soon after the scheduler is created (default 0). At start-up the services the
   * run asks (order, payment-processor) may not be up yet: a run then is `incomplete`, which pages.
   */
  reconciliationStartDelayMs?: number;
  metrics?: ReconciliationMetrics;
  /** The order service's view for the order_holds check (left out without it). */
  reconciliation?: ReconciliationSources;
  log: SchedulerLogger;
  /** Most rows handled per kind per tick (the next tick continues). */
  batch?: number;
}

export class Scheduler {
  private readonly opts: SchedulerOptions;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  /** Set by stop(): a tick in progress finishes its current row and returns. */
  private halting = false;
  private lastPurge = 0;
  private assets: Assets | undefined;
  private readonly createdAt = Date.now();

  constructor(opts: SchedulerOptions) {
    this.opts = opts;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.halting = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.halting = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.tick()
        .then(() => undefined)
        .catch((err: unknown) => this.opts.log.error({ err }, 'scheduler tick failed'))
        .finally(() => this.schedule(this.opts.pollMs));
    }, ms);
  }

  /**
   * One pass: cancel withdrawals whose email confirmation expired, confirm due deposits, dispatch due withdrawals,
   * reconcile when due, purge idempotency keys.
   */
  async tick(): Promise<{
    deposits: number;
    withdrawals: number;
    expired: number;
    reconciled: boolean;
    purgedKeys: number;
  }> {
    const batch = this.opts.batch ?? 100;
    this.assets ??= this.opts.assets ?? new (await import('../assets.ts')).Assets();
    let expired = 0;
    while (expired < batch && !this.halting && (await expireNextUnconfirmedWithdrawal(this.opts.pool, this.assets))) {
      expired++;
    }
    let deposits = 0;
    while (deposits < batch && !this.halting && (await confirmNextDeposit(this.opts.pool))) deposits++;
    let withdrawals = 0;
    while (withdrawals < batch && !this.halting && (await dispatchNextWithdrawal(this.opts.pool))) withdrawals++;
    if (deposits || withdrawals || expired) {
      this.opts.log.info({ deposits, withdrawals, expired }, 'scheduler: processed due items');
    }
    const reconciled = await this.maybeReconcile();
    const purgedKeys = await this.maybePurge();
    return { deposits, withdrawals, expired, reconciled, purgedKeys };
  }

  /** Idempotency keys: a day old, or stuck without a reply (see purgeIdempotencyKeys); at most once a minute. */
  private async maybePurge(): Promise<number> {
    if (Date.now() - this.lastPurge < 60_000) return 0;
    this.lastPurge = Date.now();
    return purgeIdempotencyKeys(this.opts.pool, 'wallet');
  }

  private async maybeReconcile(): Promise<boolean> {
    const interval = this.opts.reconciliationIntervalMs;
    if (interval <= 0) return false;
    if (Date.now() - this.createdAt < (this.opts.reconciliationStartDelayMs ?? 0)) return false;
    const client = await this.opts.pool.connect();
    try {
      if (!(await repo.tryLockScheduledReconciliation(client))) return false;
      try {
        if (!(await repo.scheduledReconciliationDue(client, interval, RETRY_INCOMPLETE_MS))) return false;
        const report = await runReconciliation(this.opts.pool, {
          ...this.opts.reconciliation,
          trigger: 'scheduled',
          ...(this.opts.metrics ? { metrics: this.opts.metrics } : {}),
        });
        const log = report.status === 'ok' ? this.opts.log.info : this.opts.log.error;
        log.call(this.opts.log, { reportId: report.id, mismatches: report.mismatchCount }, 'scheduled reconciliation');
        return true;
      } finally {
        await repo.unlockScheduledReconciliation(client);
      }
    } finally {
      client.release();
    }
  }
}
