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
  totals: Array<{
    asset: string;
    users: string;
    held: string;
    fees: string;
    depositRail: string;
    withdrawalRail: string;
  }>;
}

const CHECKS: Array<{ name: string; description: string; sql: string }> = [
  {
    name: 'balance_vs_journal',
    description: 'Each account balance equals the sum of its postings (invariant 3)',
    sql: `SELECT a.id::text AS "accountId", a.kind, a.user_id AS "userId", a.asset, a.balance::text AS stored,
                 COALESCE(p.s, 0)::text AS journal
            FROM wallet.accounts a
            LEFT JOIN (SELECT account_id, SUM(amount) AS s FROM wallet.postings GROUP BY account_id) p
              ON p.account_id = a.id
           WHERE a.balance <> COALESCE(p.s, 0)
           ORDER BY a.id`,
  },
  {
    name: 'asset_sum_zero',
    description: 'Per asset, the balances of all accounts (system accounts included) sum to zero (invariant 1)',
    sql: `SELECT asset, SUM(balance)::text AS sum FROM wallet.accounts GROUP BY asset HAVING SUM(balance) <> 0
           ORDER BY asset`,
  },
  {
    name: 'entries_balanced',
    description: 'Every journal entry sums to zero per asset, and postings are in their account’s asset',
    sql: `SELECT entry_id::text AS "entryId", asset, SUM(amount)::text AS sum FROM wallet.postings
           GROUP BY entry_id, asset HAVING SUM(amount) <> 0
          UNION ALL
          SELECT p.entry_id::text, p.asset, 'posting ' || p.id || ' in account of ' || a.asset
            FROM wallet.postings p JOIN wallet.accounts a ON a.id = p.account_id WHERE a.asset <> p.asset`,
  },
  {
    name: 'user_balances_nonnegative',
    description: 'No user balance below zero; 0 <= held <= total (invariant 2)',
    sql: `SELECT id::text AS "accountId", user_id AS "userId", asset, balance::text AS total, held::text AS held
            FROM wallet.accounts
           WHERE (kind = 'user' AND (balance < 0 OR held > balance)) OR held < 0 OR (kind <> 'user' AND held <> 0)`,
  },
  {
    name: 'held_vs_holds',
    description: 'Each account’s held amount equals the remaining amount of its active holds',
    sql: `SELECT a.id::text AS "accountId", a.user_id AS "userId", a.asset, a.held::text AS stored,
                 COALESCE(h.s, 0)::text AS holds
            FROM wallet.accounts a
            LEFT JOIN (SELECT account_id, SUM(amount - captured - released) AS s FROM wallet.holds
                        WHERE status = 'active' GROUP BY account_id) h ON h.account_id = a.id
           WHERE a.held <> COALESCE(h.s, 0)
           ORDER BY a.id`,
  },
  {
    name: 'holds_consistent',
    description: 'Hold state is coherent: ended exactly once, parts add up, in its account’s asset',
    sql: `SELECT h.id::text AS "holdId", h.status, h.amount::text, h.captured::text, h.released::text
            FROM wallet.holds h JOIN wallet.accounts a ON a.id = h.account_id
           WHERE a.asset <> h.asset OR a.user_id <> h.user_id
              OR h.captured + h.released > h.amount
              OR h.late_captured > h.released
              OR (h.status = 'active') <> (h.captured + h.released < h.amount)
              OR (h.status <> 'active' AND h.closed_at IS NULL)`,
  },
  {
    name: 'withdrawal_holds',
    description:
      'Awaiting-confirmation/pending/processing withdrawals hold amount + fee; completed ones captured it; others released it',
    sql: `SELECT w.id::text AS "withdrawalId", w.status, h.status AS "holdStatus",
                 (w.amount + w.fee)::text AS expected, h.amount::text AS held, h.captured::text AS captured
            FROM wallet.withdrawals w LEFT JOIN wallet.holds h ON h.id = w.id
           WHERE h.id IS NULL
              OR h.amount <> w.amount + w.fee
              OR (w.status IN ('awaiting_confirmation', 'pending', 'processing') AND h.status <> 'active')
              OR (w.status = 'completed' AND (h.status <> 'captured' OR w.entry_id IS NULL))
              OR (w.status IN ('failed', 'cancelled') AND (h.status <> 'released' OR h.captured <> 0))`,
  },
  {
    name: 'deposits_vs_rail',
    description: 'Every confirmed deposit has its ledger entry and exactly its rail record; no rail record without one',
    sql: `SELECT d.id::text AS "depositId", d.status, d.amount::text AS amount, r.amount::text AS rail,
                 e.id::text AS "entryId"
            FROM wallet.deposits d
            FULL JOIN (SELECT * FROM wallet.rail_transactions WHERE direction = 'in') r ON r.deposit_id = d.id
            LEFT JOIN wallet.journal_entries e ON e.id = d.entry_id
           WHERE (d.status = 'confirmed' AND (r.id IS NULL OR r.amount <> d.amount OR e.id IS NULL
                  OR e.idempotency_key <> 'deposit:' || d.id))
              OR (r.id IS NOT NULL AND (d.id IS NULL OR d.status <> 'confirmed'))`,
  },
  {
    name: 'withdrawals_vs_rail',
    description: 'Every completed withdrawal has exactly its rail payout; no payout for any other withdrawal',
    sql: `SELECT w.id::text AS "withdrawalId", w.status, w.amount::text AS amount, r.amount::text AS rail
            FROM wallet.withdrawals w
            FULL JOIN (SELECT * FROM wallet.rail_transactions WHERE direction = 'out') r ON r.withdrawal_id = w.id
           WHERE (w.status = 'completed' AND (r.id IS NULL OR r.amount <> w.amount OR r.asset <> w.asset))
              OR (r.id IS NOT NULL AND (w.id IS NULL OR w.status <> 'completed'))`,
  },
  {
    name: 'rail_accounts',
    description: 'The rail accounts equal the rail records: deposit rail = -(money in), withdrawal rail = money out',
    sql: `WITH r AS (
            SELECT asset, SUM(CASE WHEN direction = 'in' THEN amount ELSE 0 END) AS rin,
                   SUM(CASE WHEN direction = 'out' THEN amount ELSE 0 END) AS rout
              FROM wallet.rail_transactions GROUP BY asset),
          a AS (
            SELECT asset, SUM(CASE WHEN kind = 'deposit_rail' THEN balance ELSE 0 END) AS dep,
                   SUM(CASE WHEN kind = 'withdrawal_rail' THEN balance ELSE 0 END) AS wd
              FROM wallet.accounts GROUP BY asset)
          SELECT COALESCE(a.asset, r.asset) AS asset, COALESCE(a.dep, 0)::text AS "depositRailBalance",
                 COALESCE(r.rin, 0)::text AS "railIn", COALESCE(a.wd, 0)::text AS "withdrawalRailBalance",
                 COALESCE(r.rout, 0)::text AS "railOut"
            FROM a FULL JOIN r ON r.asset = a.asset
           WHERE COALESCE(a.dep, 0) <> -COALESCE(r.rin, 0) OR COALESCE(a.wd, 0) <> COALESCE(r.rout, 0)`,
  },
  {
    name: 'settlements_once',
    description: 'Each settled trade has exactly one journal entry, keyed by its trade id (invariant 4)',
    sql: `SELECT s.trade_id::text AS "tradeId", e.idempotency_key AS key
            FROM wallet.settlements s LEFT JOIN wallet.journal_entries e ON e.id = s.entry_id
           WHERE e.id IS NULL OR e.idempotency_key <> 'trade:' || s.trade_id
          UNION ALL
          SELECT e.ref_id, e.idempotency_key FROM wallet.journal_entries e
            LEFT JOIN wallet.settlements s ON s.entry_id = e.id
           WHERE e.ref_type = 'trade' AND s.trade_id IS NULL`,
  },
  {
    name: 'payouts_unbooked',
    description:
      'No withdrawal handed to the payout rail more than 30 minutes ago without its result booked (the rail may ' +
      'have paid it out while the wallet never heard back)',
    sql: `SELECT id::text AS "withdrawalId", user_id AS "userId", asset, amount::text AS amount, status,
                 updated_at AS "requestedAt"
            FROM wallet.withdrawals
           WHERE status = 'processing' AND updated_at < now() - interval '30 minutes'
           ORDER BY updated_at`,
  },
  {
    name: 'payouts_paid_unbooked',
    description:
      'No withdrawal the payout rail reported paid out (its payout.completed reached the wallet and was ' +
      'dead-lettered) without the ledger booking it as completed: the money left, the user still has it',
    sql: `SELECT w.id::text AS "withdrawalId", w.user_id AS "userId", w.asset, w.amount::text AS amount, w.status,
                 d.message->'payload'->>'railTxId' AS "railTxId", d.reason, d.dead_lettered_at AS "deadLetteredAt"
            FROM wallet.dead_letters d
            JOIN wallet.withdrawals w ON w.id::text = d.message->'payload'->>'withdrawalId'
           WHERE d.type = 'payout.completed' AND d.status = 'dead' AND w.status <> 'completed'
           ORDER BY d.id`,
  },
];

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
  ...CHECKS.map((c) => c.name),
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
  const { rows } = await client.query<{
    id: string;
    user_id: string;
    asset: string;
    remaining: string;
    status: string;
    old: boolean;
  }>(
    `SELECT id::text, user_id::text, asset, (amount - captured - released)::text AS remaining, status,
            created_at < now() - make_interval(secs => $1) AS old
       FROM wallet.holds
      WHERE ref_type = 'order' AND (status = 'active' OR closed_at >= now() - make_interval(secs => $1))
      /* reconciliation: order holds */`,
    [graceMs / 1000],
  );
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
 * Compare the order holds of the snapshot with the order service's view. Orders are read after the snapshot, so
 * anything that changed within `graceMs` is in flight (a hold being created, a release being delivered): skipped.
 */
async function checkOrderHolds(snap: OrderHoldSnapshot, orders: OrderClient, graceMs: number): Promise<CheckResult> {
  const cutoff = Date.now() - graceMs;
  const items: Array<Record<string, unknown>> = [];
  let mismatches = 0;
  const add = (item: Record<string, unknown>) => {
    mismatches++;
    if (items.length < MAX_ITEMS) items.push(item);
  };
  try {
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
  } catch (err) {
    return { ...ORDER_HOLDS, mismatches: 0, items: [], error: (err as Error).message };
  }
  return { ...ORDER_HOLDS, mismatches, items };
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
  const items: Array<Record<string, unknown>> = [];
  let mismatches = 0;
  const to = new Date(Date.now() - graceMs);
  const from = new Date(Date.now() - lookbackMs);
  try {
    let batch: Array<{ tradeId: string; market: string; executedAt: string }> = [];
    const flush = async () => {
      if (batch.length === 0) return;
      const { rows } = await pool.query<{ trade_id: string }>(
        'SELECT trade_id::text FROM wallet.settlements WHERE trade_id = ANY($1::uuid[])',
        [batch.map((t) => t.tradeId)],
      );
      const settled = new Set(rows.map((r) => r.trade_id));
      for (const t of batch) {
        if (settled.has(t.tradeId)) continue;
        mismatches++;
        if (items.length < MAX_ITEMS) items.push({ ...t, problem: 'trade executed but never settled' });
      }
      batch = [];
    };
    for await (const t of orders.trades(from, to)) {
      batch.push(t);
      if (batch.length >= 1000) await flush();
    }
    await flush();
  } catch (err) {
    return { ...TRADES_SETTLED, mismatches: 0, items: [], error: (err as Error).message };
  }
  return { ...TRADES_SETTLED, mismatches, items };
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
  const items: Array<Record<string, unknown>> = [];
  let mismatches = 0;
  const add = (item: Record<string, unknown>) => {
    mismatches++;
    if (items.length < MAX_ITEMS) items.push(item);
  };
  type W = { id: string; status: string; asset: string; amount: string };
  try {
    for await (const page of rail.payouts()) {
      const ids = page.map((p) => p.withdrawalId).filter((id) => UUID.test(id));
      const { rows } = await pool.query<W>(
        `SELECT id::text, status, asset, amount::text FROM wallet.withdrawals WHERE id = ANY($1::uuid[])
         /* reconciliation: rail payouts */`,
        [ids],
      );
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
      const { rows } = await pool.query<W>(
        `SELECT id::text, status, asset, amount::text FROM wallet.withdrawals
          WHERE status = 'completed' AND id > $1::uuid ORDER BY id LIMIT 1000 /* reconciliation: rail payouts */`,
        [after],
      );
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
  } catch (err) {
    return { ...RAIL_PAYOUTS, mismatches: 0, items: [], error: (err as Error).message };
  }
  return { ...RAIL_PAYOUTS, mismatches, items };
}

/** Run every check on `client` (inside the caller's snapshot). */
export async function runChecks(client: Pick<PoolClient, 'query'>): Promise<ReconciliationResult> {
  const checks: CheckResult[] = [];
  for (const c of CHECKS) {
    // tagged: the query-plan test recognises the reconciliation's whole-table reads by it
    const { rows } = await client.query<Record<string, unknown>>(`${c.sql} /* reconciliation: ${c.name} */`);
    checks.push({ name: c.name, description: c.description, mismatches: rows.length, items: rows.slice(0, MAX_ITEMS) });
  }
  const byRef = await client.query<{ refType: string; asset: string; count: string; remaining: string; oldest: Date }>(
    `SELECT ref_type AS "refType", asset, count(*)::text AS count, SUM(amount - captured - released)::text AS remaining,
            min(created_at) AS oldest
       FROM wallet.holds WHERE status = 'active' GROUP BY ref_type, asset ORDER BY ref_type, asset`,
  );
  const items = await client.query<{
    holdId: string;
    userId: string;
    asset: string;
    remaining: string;
    refType: string;
    refId: string;
  }>(
    `SELECT id::text AS "holdId", user_id::text AS "userId", asset, (amount - captured - released)::text AS remaining,
            ref_type AS "refType", ref_id AS "refId"
       FROM wallet.holds WHERE status = 'active' ORDER BY created_at LIMIT ${MAX_ITEMS}`,
  );
  const totals = await client.query<{
    asset: string;
    users: string;
    held: string;
    fees: string;
    depositRail: string;
    withdrawalRail: string;
  }>(
    `SELECT asset,
            SUM(CASE WHEN kind = 'user' THEN balance ELSE 0 END)::text AS users,
            SUM(held)::text AS held,
            SUM(CASE WHEN kind = 'fees' THEN balance ELSE 0 END)::text AS fees,
            SUM(CASE WHEN kind = 'deposit_rail' THEN balance ELSE 0 END)::text AS "depositRail",
            SUM(CASE WHEN kind = 'withdrawal_rail' THEN balance ELSE 0 END)::text AS "withdrawalRail"
       FROM wallet.accounts GROUP BY asset ORDER BY asset`,
  );
  return {
    checks,
    mismatchCount: checks.reduce((n, c) => n + c.mismatches, 0),
    activeHolds: {
      count: byRef.rows.reduce((n, r) => n + Number(r.count), 0),
      byRefType: byRef.rows.map((r) => ({ ...r, count: Number(r.count), oldest: r.oldest.toISOString() })),
      items: items.rows,
    },
    totals: totals.rows,
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
  await pool.query(
    `INSERT INTO wallet.reconciliation_reports (id, trigger, requested_by, status, mismatch_count, started_at,
       finished_at, report) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [
      id,
      opts.trigger,
      opts.requestedBy ?? null,
      status,
      result.mismatchCount,
      startedAt,
      finishedAt,
      JSON.stringify(result),
    ],
  );
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

interface DbReport {
  id: string;
  trigger: string;
  requested_by: string | null;
  status: ReportStatus;
  mismatch_count: number;
  started_at: Date;
  finished_at: Date;
  report: ReconciliationResult;
}

const toReport = (r: DbReport): ReportRow => ({
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
  const { rows } = await pool.query<DbReport>(
    `SELECT id::text, trigger, requested_by, status, mismatch_count, started_at, finished_at, report
       FROM wallet.reconciliation_reports ORDER BY started_at DESC LIMIT $1`,
    [limit],
  );
  return rows.map(toReport);
}

export async function getReport(pool: Pool, id: string): Promise<ReportRow | undefined> {
  const { rows } = await pool.query<DbReport>(
    `SELECT id::text, trigger, requested_by, status, mismatch_count, started_at, finished_at, report
       FROM wallet.reconciliation_reports WHERE id = $1`,
    [id],
  );
  return rows[0] ? toReport(rows[0]) : undefined;
}
