/**
 * The SQL of reconciliation: the checks that are one query each, the reads of the other checks and of the report's
 * summary, and the stored reports. The snapshot transaction and the rules around these statements are in service.ts.
 * Each function sends one statement, its text unchanged from where it was written (the query-plan test recognises
 * the reconciliation's whole-table reads by their tags).
 */
import type { Pool, PoolClient } from '@exchange/db';
import type { ReconciliationResult, ReportStatus } from './service.ts';

type Db = Pick<PoolClient, 'query'>;

/** The checks that are one query each: every row a query returns is a mismatch. */
export const CHECKS: Array<{ name: string; description: string; sql: string }> = [
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

/** Run one check of CHECKS on `client` (inside the caller's snapshot): its mismatches. */
export async function runCheck(client: Db, c: { name: string; sql: string }): Promise<Array<Record<string, unknown>>> {
  // tagged: the query-plan test recognises the reconciliation's whole-table reads by it
  const { rows } = await client.query<Record<string, unknown>>(`${c.sql} /* reconciliation: ${c.name} */`);
  return rows;
}

/** Active holds per kind and asset: how many, what they still hold, the oldest. */
export async function activeHoldsByRefType(
  client: Db,
): Promise<Array<{ refType: string; asset: string; count: string; remaining: string; oldest: Date }>> {
  const { rows } = await client.query<{
    refType: string;
    asset: string;
    count: string;
    remaining: string;
    oldest: Date;
  }>(
    `SELECT ref_type AS "refType", asset, count(*)::text AS count, SUM(amount - captured - released)::text AS remaining,
            min(created_at) AS oldest
       FROM wallet.holds WHERE status = 'active' GROUP BY ref_type, asset ORDER BY ref_type, asset`,
  );
  return rows;
}

/** The oldest active holds, at most `limit`. */
export async function oldestActiveHolds(
  client: Db,
  limit: number,
): Promise<
  Array<{ holdId: string; userId: string; asset: string; remaining: string; refType: string; refId: string }>
> {
  const { rows } = await client.query<{
    holdId: string;
    userId: string;
    asset: string;
    remaining: string;
    refType: string;
    refId: string;
  }>(
    `SELECT id::text AS "holdId", user_id::text AS "userId", asset, (amount - captured - released)::text AS remaining,
            ref_type AS "refType", ref_id AS "refId"
       FROM wallet.holds WHERE status = 'active' ORDER BY created_at LIMIT ${limit}`,
  );
  return rows;
}

/**
 * One asset's balances of users, fee and rail accounts, and what is held (minor units). A type, not an interface:
 * reports carry it where any record fits, which needs the implicit index signature.
 */
export type AssetTotal = {
  asset: string;
  users: string;
  held: string;
  fees: string;
  depositRail: string;
  withdrawalRail: string;
};

/** Per asset, the balances of users, fee and rail accounts, and what is held. */
export async function assetTotals(client: Db): Promise<AssetTotal[]> {
  const { rows } = await client.query<AssetTotal>(
    `SELECT asset,
            SUM(CASE WHEN kind = 'user' THEN balance ELSE 0 END)::text AS users,
            SUM(held)::text AS held,
            SUM(CASE WHEN kind = 'fees' THEN balance ELSE 0 END)::text AS fees,
            SUM(CASE WHEN kind = 'deposit_rail' THEN balance ELSE 0 END)::text AS "depositRail",
            SUM(CASE WHEN kind = 'withdrawal_rail' THEN balance ELSE 0 END)::text AS "withdrawalRail"
       FROM wallet.accounts GROUP BY asset ORDER BY asset`,
  );
  return rows;
}

export interface OrderHoldRow {
  id: string;
  user_id: string;
  asset: string;
  remaining: string;
  status: string;
  /** Created before the grace period. */
  old: boolean;
}

/** Order holds that are active or were closed within the grace period. */
export async function orderHolds(client: Db, graceMs: number): Promise<OrderHoldRow[]> {
  const { rows } = await client.query<OrderHoldRow>(
    `SELECT id::text, user_id::text, asset, (amount - captured - released)::text AS remaining, status,
            created_at < now() - make_interval(secs => $1) AS old
       FROM wallet.holds
      WHERE ref_type = 'order' AND (status = 'active' OR closed_at >= now() - make_interval(secs => $1))
      /* reconciliation: order holds */`,
    [graceMs / 1000],
  );
  return rows;
}

/** Which of these trades have a settlement. */
export async function settledTrades(pool: Pool, tradeIds: string[]): Promise<Array<{ trade_id: string }>> {
  const { rows } = await pool.query<{ trade_id: string }>(
    'SELECT trade_id::text FROM wallet.settlements WHERE trade_id = ANY($1::uuid[])',
    [tradeIds],
  );
  return rows;
}

export interface RailWithdrawalRow {
  id: string;
  status: string;
  asset: string;
  amount: string;
}

/** The withdrawals with these ids. */
export async function withdrawalsById(pool: Pool, ids: string[]): Promise<RailWithdrawalRow[]> {
  const { rows } = await pool.query<RailWithdrawalRow>(
    `SELECT id::text, status, asset, amount::text FROM wallet.withdrawals WHERE id = ANY($1::uuid[])
         /* reconciliation: rail payouts */`,
    [ids],
  );
  return rows;
}

/** The next page of completed withdrawals, by id after `after`. */
export async function completedWithdrawalsAfter(pool: Pool, after: string): Promise<RailWithdrawalRow[]> {
  const { rows } = await pool.query<RailWithdrawalRow>(
    `SELECT id::text, status, asset, amount::text FROM wallet.withdrawals
          WHERE status = 'completed' AND id > $1::uuid ORDER BY id LIMIT 1000 /* reconciliation: rail payouts */`,
    [after],
  );
  return rows;
}

export interface DbReport {
  id: string;
  trigger: string;
  requested_by: string | null;
  status: ReportStatus;
  mismatch_count: number;
  started_at: Date;
  finished_at: Date;
  report: ReconciliationResult;
}

export async function insertReport(
  pool: Pool,
  r: {
    id: string;
    trigger: string;
    requestedBy: string | null;
    status: ReportStatus;
    mismatchCount: number;
    startedAt: Date;
    finishedAt: Date;
    report: ReconciliationResult;
  },
): Promise<void> {
  await pool.query(
    `INSERT INTO wallet.reconciliation_reports (id, trigger, requested_by, status, mismatch_count, started_at,
       finished_at, report) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [r.id, r.trigger, r.requestedBy, r.status, r.mismatchCount, r.startedAt, r.finishedAt, JSON.stringify(r.report)],
  );
}

/** The latest reports, newest first. */
export async function latestReports(pool: Pool, limit: number): Promise<DbReport[]> {
  const { rows } = await pool.query<DbReport>(
    `SELECT id::text, trigger, requested_by, status, mismatch_count, started_at, finished_at, report
       FROM wallet.reconciliation_reports ORDER BY started_at DESC LIMIT $1`,
    [limit],
  );
  return rows;
}

export async function reportById(pool: Pool, id: string): Promise<DbReport | undefined> {
  const { rows } = await pool.query<DbReport>(
    `SELECT id::text, trigger, requested_by, status, mismatch_count, started_at, finished_at, report
       FROM wallet.reconciliation_reports WHERE id = $1`,
    [id],
  );
  return rows[0];
}
