/**
 * Reconciliation: recompute everything the ledger stores from first principles and list every disagreement.
 * Runs in one REPEATABLE READ, READ ONLY transaction (a consistent snapshot, no locks taken), so it can run at any
 * time next to live traffic. The same checks back `assertLedgerInvariants` in tests.
 */
import { randomUUID } from 'node:crypto';
import { withTransaction, type Pool, type PoolClient } from '@exchange/db';
import { FINAL_ORDER_STATUSES } from '@exchange/contracts/orders';
import type { promClient } from '@exchange/platform';
import type { OrderClient } from '../clients/order-client.ts';
import type { PaymentProcessorClient } from '../clients/payment-processor-client.ts';
import * as repo from './repository.ts';

/** Mismatches kept per check in a report (the count is always exact). */
const MAX_ITEMS = 500;

export interface CheckResult {
  name: string;
  description: string;
  mismatches: number;
  items: Array<Record<string, unknown>>;
  /** Set when the check could not run (e.g. the order service was unreachable); its mismatches are then unknown. */
  error?: string;
}

export interface ReconciliationResult {
  checks: CheckResult[];
  mismatchCount: number;
  /** Informational (not mismatches): open holds by kind, so operators can cross-check them with open orders. */
  activeHolds: {
    count: number;
    byRefType: Array<{ refType: string; asset: string; count: number; remaining: string; oldest: string }>;
    items: Array<{ holdId: string; userId: string; asset: string; remaining: string; refType: string; refId: string }>;
  };
  totals: repo.AssetTotal[];
}

const ORDER_HOLDS = {
  name: 'order_holds',
  description:
    'Order holds match open orders (order service): no finished or unknown order still holds funds, and every ' +
    'open order has an active hold (orders and holds that changed within the grace period are skipped)',
};

const TRADES_SETTLED = {
  name: 'trades_unsettled',
  description:
    'Every trade the engine executed (order service tape) from the look-back window up to the grace period ago has ' +
    'its wallet settlement: a settle-trade lost or dead-lettered leaves fills unpaid',
};

const RAIL_PAYOUTS = {
  name: 'rail_payouts',
  description:
    "Withdrawals against the rail's own payout records (payment-processor): no payout that left the rail without " +
    'the withdrawal booked as completed, none booked as paid out that the rail does not know or failed, same asset ' +
    'and amount (rail records younger than the grace period are not judged)',
};

/** Names of the checks (label values of reconciliation_mismatches_total). */
export const CHECK_NAMES = (): string[] => [
  ...repo.CHECKS.map((c) => c.name),
  ORDER_HOLDS.name,
  TRADES_SETTLED.name,
  RAIL_PAYOUTS.name,
];

interface OrderHoldSnapshot {
  /** Active order holds older than the grace period. */
  settled: Array<{ holdId: string; userId: string; asset: string; remaining: string }>;
  /** Ids of every active order hold. */
  active: Set<string>;
  /** Ids of order holds closed within the grace period (a release the order service may not have seen yet). */
  recentlyClosed: Set<string>;
}

async function orderHoldSnapshot(client: Pick<PoolClient, 'query'>, graceMs: number): Promise<OrderHoldSnapshot> {
  const rows = await repo.orderHolds(client, graceMs);
  const active = rows.filter((r) => r.status === 'active');
  return {
    settled: active
      .filter((r) => r.old)
      .map((r) => ({ holdId: r.id, userId: r.user_id, asset: r.asset, remaining: r.remaining })),
    active: new Set(active.map((r) => r.id)),
    recentlyClosed: new Set(rows.filter((r) => r.status !== 'active').map((r) => r.id)),
  };
}

/**
 * A check that reads another service: counts every mismatch it reports, keeps the first MAX_ITEMS, and when the
 * other service cannot be read carries the error instead of a count (the report is then incomplete, never ok).
 */
async function remoteCheck(
  meta: { name: string; description: string },
  run: (add: (item: Record<string, unknown>) => void) => Promise<void>,
): Promise<CheckResult> {
  const items: Array<Record<string, unknown>> = [];
  let mismatches = 0;
  try {
    await run((item) => {
      mismatches++;
      if (items.length < MAX_ITEMS) items.push(item);
    });
  } catch (err) {
    return { ...meta, mismatches: 0, items: [], error: (err as Error).message };
  }
  return { ...meta, mismatches, items };
}

/**
 * Compare the order holds of the snapshot with the order service's view. Orders are read after the snapshot, so
 * anything that changed within `graceMs` is in flight (a hold being created, a release being delivered): skipped.
 */
async function checkOrderHolds(snap: OrderHoldSnapshot, orders: OrderClient, graceMs: number): Promise<CheckResult> {
  const cutoff = Date.now() - graceMs;
  return remoteCheck(ORDER_HOLDS, async (add) => {
    const states = new Map((await orders.lookup(snap.settled.map((h) => h.holdId))).map((o) => [o.id, o]));
    for (const h of snap.settled) {
      const o = states.get(h.holdId);
      if (!o) add({ ...h, problem: 'hold of an order the order service does not know' });
      else if (FINAL_ORDER_STATUSES.has(o.status) && Date.parse(o.updatedAt) < cutoff)
        add({ ...h, orderStatus: o.status, orderUpdatedAt: o.updatedAt, problem: 'finished order still holds funds' });
    }
    for await (const o of orders.open()) {
      if (Date.parse(o.createdAt) >= cutoff || snap.active.has(o.id) || snap.recentlyClosed.has(o.id)) continue;
      add({ orderId: o.id, orderStatus: o.status, problem: 'open order without an active hold' });
    }
  });
}

/**
 * Trades on the order service's tape, executed in [now - lookback, now - grace), without a settlement. Read after
 * the snapshot (a settlement committed meanwhile counts as settled; only older trades are judged).
 */
async function checkTradesSettled(
  pool: Pool,
  orders: OrderClient,
  graceMs: number,
  lookbackMs: number,
): Promise<CheckResult> {
  const to = new Date(Date.now() - graceMs);
  const from = new Date(Date.now() - lookbackMs);
  return remoteCheck(TRADES_SETTLED, async (add) => {
    let batch: Array<{ tradeId: string; market: string; executedAt: string }> = [];
    const flush = async () => {
      if (batch.length === 0) return;
      const rows = await repo.settledTrades(
        pool,
        batch.map((t) => t.tradeId),
      );
      const settled = new Set(rows.map((r) => r.trade_id));
      for (const t of batch) {
        if (!settled.has(t.tradeId)) add({ ...t, problem: 'trade executed but never settled' });
      }
      batch = [];
    };
    for await (const t of orders.trades(from, to)) {
      batch.push(t);
      if (batch.length >= 1000) await flush();
    }
    await flush();
  });
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The rail's payout records (read page by page through the payment-processor: its tables are not the wallet's to
 * read) against the withdrawals, both ways, in bounded batches:
 *   1. each rail record with its withdrawal: paid out but not booked, booked but failed by the rail, amounts differ;
 *   2. each withdrawal booked as completed (by id, page by page) has a rail record.
 * Read after the snapshot: a withdrawal is booked only after the rail recorded it, so (2) needs no grace; a rail
 * record younger than `graceMs` may have its result still on the way to the wallet and is not judged in (1).
 */
async function checkRailPayouts(pool: Pool, rail: PaymentProcessorClient, graceMs: number): Promise<CheckResult> {
  const cutoff = Date.now() - graceMs;
  return remoteCheck(RAIL_PAYOUTS, async (add) => {
    for await (const page of rail.payouts()) {
      const ids = page.map((p) => p.withdrawalId).filter((id) => UUID.test(id));
      const rows = await repo.withdrawalsById(pool, ids);
      const booked = new Map(rows.map((w) => [w.id, w]));
      for (const p of page) {
        const w = booked.get(p.withdrawalId.toLowerCase());
        const settled = Date.parse(p.processedAt) < cutoff;
        const item = {
          withdrawalId: p.withdrawalId,
          railStatus: p.status,
          railTxId: p.railTxId,
          railAsset: p.asset,
          railAmount: p.amount,
          processedAt: p.processedAt,
          ...(w ? { status: w.status, asset: w.asset, amount: w.amount } : {}),
        };
        if (!w) {
          if (settled) add({ ...item, problem: 'rail payout of a withdrawal the wallet does not know' });
        } else if (p.status === 'completed' && w.status !== 'completed') {
          if (settled) add({ ...item, problem: 'paid out by the rail, not booked as completed' });
        } else if (p.status === 'failed' && w.status === 'completed') {
          add({ ...item, problem: 'booked as paid out, but the rail failed it' });
        } else if (p.status === 'failed' && w.status === 'processing') {
          if (settled) add({ ...item, problem: 'failed by the rail, not booked as failed' });
        } else if (p.status === 'completed' && (w.asset !== p.asset || w.amount !== p.amount)) {
          add({ ...item, problem: 'booked amount differs from the rail payout' });
        }
      }
    }
    let after = '00000000-0000-0000-0000-000000000000';
    for (;;) {
      const rows = await repo.completedWithdrawalsAfter(pool, after);
      if (rows.length === 0) break;
      const known = new Set((await rail.lookup(rows.map((w) => w.id))).map((p) => p.withdrawalId.toLowerCase()));
      for (const w of rows) {
        if (!known.has(w.id))
          add({
            withdrawalId: w.id,
            status: w.status,
            asset: w.asset,
            amount: w.amount,
            problem: 'booked as paid out, unknown to the rail',
          });
      }
      after = rows[rows.length - 1]!.id;
    }
  });
}

/** Run every check on `client` (inside the caller's snapshot). */
export async function runChecks(client: Pick<PoolClient, 'query'>): Promise<ReconciliationResult> {
  const checks: CheckResult[] = [];
  for (const c of repo.CHECKS) {
    const rows = await repo.runCheck(client, c);
    checks.push({ name: c.name, description: c.description, mismatches: rows.length, items: rows.slice(0, MAX_ITEMS) });
  }
  const byRef = await repo.activeHoldsByRefType(client);
  const items = await repo.oldestActiveHolds(client, MAX_ITEMS);
  const totals = await repo.assetTotals(client);
  return {
    checks,
    mismatchCount: checks.reduce((n, c) => n + c.mismatches, 0),
    activeHolds: {
      count: byRef.reduce((n, r) => n + Number(r.count), 0),
      byRefType: byRef.map((r) => ({ ...r, count: Number(r.count), oldest: r.oldest.toISOString() })),
      items,
    },
    totals,
  };
}

export interface ReconciliationMetrics {
  mismatches: promClient.Counter<'check'>;
  runs: promClient.Counter<'status'>;
  lastRun: promClient.Gauge<string>;
}

/** Where the order_holds check reads the order service's view. */
export interface ReconciliationSources {
  /** Without it the order_holds check is left out. */
  orders?: OrderClient;
  /** Changes younger than this are in flight and not judged by order_holds, trades_unsettled, rail_payouts (60 s). */
  orderGraceMs?: number;
  /** How far back trades_unsettled looks (default 26 h: a day and the hourly runs around it). */
  tradeLookbackMs?: number;
  /** The payment-processor's rail records; without it the rail_payouts check is left out. */
  rail?: PaymentProcessorClient;
}

export type ReportStatus = 'ok' | 'mismatch' | 'incomplete';

export interface ReportRow {
  id: string;
  trigger: string;
  requestedBy: string | null;
  /** `incomplete`: no mismatch found, but a check could not run (see its `error`): not a clean bill. */
  status: ReportStatus;
  mismatchCount: number;
  startedAt: string;
  finishedAt: string;
  report: ReconciliationResult;
}

/** Run the checks on a consistent snapshot, persist the report, count mismatches per check. */
export async function runReconciliation(
  pool: Pool,
  opts: ReconciliationSources & {
    trigger: 'manual' | 'scheduled';
    requestedBy?: string;
    metrics?: ReconciliationMetrics;
  },
): Promise<ReportRow> {
  const startedAt = new Date();
  const graceMs = opts.orderGraceMs ?? 60_000;
  let snapshot: { result: ReconciliationResult; holds: OrderHoldSnapshot | undefined };
  try {
    snapshot = await withTransaction(
      pool,
      async (c) => {
        await c.query('SET TRANSACTION READ ONLY');
        // Full scans of a growing ledger outlast the pool's 30 s statement timeout; this read-only snapshot takes
        // no locks, so a long bound costs live traffic nothing.
        await c.query(`SET LOCAL statement_timeout = '15min'`);
        return {
          result: await runChecks(c),
          holds: opts.orders ? await orderHoldSnapshot(c, graceMs) : undefined,
        };
      },
      { isolation: 'repeatable read' },
    );
  } catch (err) {
    // A run that could not finish is counted, so RECONCILIATION_FAILED fires (the stale alert follows later).
    opts.metrics?.runs.inc({ status: 'error' });
    throw err;
  }
  const { result, holds } = snapshot;
  if (opts.orders && holds) {
    const check = await checkOrderHolds(holds, opts.orders, graceMs);
    result.checks.push(check);
    result.mismatchCount += check.mismatches;
    const trades = await checkTradesSettled(pool, opts.orders, graceMs, opts.tradeLookbackMs ?? 26 * 3_600_000);
    result.checks.push(trades);
    result.mismatchCount += trades.mismatches;
  }
  if (opts.rail) {
    const rail = await checkRailPayouts(pool, opts.rail, graceMs);
    result.checks.push(rail);
    result.mismatchCount += rail.mismatches;
  }
  const finishedAt = new Date();
  const id = randomUUID();
  const status: ReportStatus =
    result.mismatchCount > 0 ? 'mismatch' : result.checks.some((c) => c.error) ? 'incomplete' : 'ok';
  await repo.insertReport(pool, {
    id,
    trigger: opts.trigger,
    requestedBy: opts.requestedBy ?? null,
    status,
    mismatchCount: result.mismatchCount,
    startedAt,
    finishedAt,
    report: result,
  });
  if (opts.metrics) {
    for (const c of result.checks) if (c.mismatches > 0) opts.metrics.mismatches.inc({ check: c.name }, c.mismatches);
    opts.metrics.runs.inc({ status });
    opts.metrics.lastRun.set(finishedAt.getTime() / 1000);
  }
  return {
    id,
    trigger: opts.trigger,
    requestedBy: opts.requestedBy ?? null,
    status,
    mismatchCount: result.mismatchCount,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    report: result,
  };
}

const toReport = (r: repo.DbReport): ReportRow => ({
  id: r.id,
  trigger: r.trigger,
  requestedBy: r.requested_by,
  status: r.status,
  mismatchCount: r.mismatch_count,
  startedAt: r.started_at.toISOString(),
  finishedAt: r.finished_at.toISOString(),
  report: r.report,
});

export async function listReports(pool: Pool, limit: number): Promise<ReportRow[]> {
  return (await repo.latestReports(pool, limit)).map(toReport);
}

export async function getReport(pool: Pool, id: string): Promise<ReportRow | undefined> {
  const row = await repo.reportById(pool, id);
  return row ? toReport(row) : undefined;
}
