/**
 * The SQL of deposits, withdrawals, the rail records of deposits, users' KYC tiers and the withdrawals kill switch.
 * The transactions and rules around these statements are in service.ts. Each function sends one statement, its text
 * unchanged from where it was written (the prepared-statement cache keys on the text).
 */
import type { Pool, PoolClient } from '@exchange/db';

type Db = Pick<PoolClient, 'query'>;

// ------------------------------------------------------------------------------------------------------------
// Deposits
// ------------------------------------------------------------------------------------------------------------

export interface DepositRow {
  id: string;
  user_id: string;
  asset: string;
  amount: string;
  status: 'pending' | 'confirmed';
  confirm_at: Date;
  confirmed_at: Date | null;
  created_at: Date;
}

const DEPOSIT_COLUMNS = 'id::text, user_id::text, asset, amount::text, status, confirm_at, confirmed_at, created_at';

/** A new pending deposit, due `confirmationMs` from now. */
export async function insertDeposit(
  client: PoolClient,
  d: { id: string; userId: string; asset: string; amount: bigint; confirmationMs: number },
): Promise<DepositRow> {
  const { rows } = await client.query<DepositRow>(
    `INSERT INTO wallet.deposits (id, user_id, asset, amount, confirm_at)
       VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5::double precision / 1000)) RETURNING ${DEPOSIT_COLUMNS}`,
    [d.id, d.userId, d.asset, d.amount.toString(), d.confirmationMs],
  );
  return rows[0]!;
}

export async function getDeposit(pool: Pool, userId: string, id: string): Promise<DepositRow | undefined> {
  const { rows } = await pool.query<DepositRow>(
    `SELECT ${DEPOSIT_COLUMNS} FROM wallet.deposits WHERE id = $1 AND user_id = $2`,
    [id, userId],
  );
  return rows[0];
}

export async function listDeposits(pool: Pool, userId: string, limit: number): Promise<DepositRow[]> {
  const { rows } = await pool.query<DepositRow>(
    `SELECT ${DEPOSIT_COLUMNS} FROM wallet.deposits WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`,
    [userId, limit],
  );
  return rows;
}

/**
 * Lock one deposit if it is still pending. A key lookup with a state check: `IS TRUE` keeps the partial index of
 * pending deposits from being scanned whole (docs/architecture.md, Conventions).
 */
export async function lockPendingDeposit(client: PoolClient, id: string): Promise<DepositRow | undefined> {
  const { rows } = await client.query<DepositRow>(
    `SELECT ${DEPOSIT_COLUMNS} FROM wallet.deposits WHERE id = $1 AND (status = 'pending') IS TRUE FOR UPDATE`,
    [id],
  );
  return rows[0];
}

/** Claim the pending deposit due first, skipping those another transaction holds. */
export async function claimDueDeposit(client: PoolClient): Promise<DepositRow | undefined> {
  const { rows } = await client.query<DepositRow>(
    `SELECT ${DEPOSIT_COLUMNS} FROM wallet.deposits WHERE status = 'pending' AND confirm_at <= now()
            ORDER BY confirm_at LIMIT 1 FOR UPDATE SKIP LOCKED`,
  );
  return rows[0];
}

/** What the (sandbox) rail saw of a deposit. */
export async function insertDepositRailRecord(client: PoolClient, d: DepositRow): Promise<void> {
  await client.query(
    `INSERT INTO wallet.rail_transactions (direction, asset, amount, deposit_id, rail_tx_id)
       VALUES ('in', $1, $2, $3, $4)`,
    [d.asset, d.amount, d.id, `sandbox-in-${d.id}`],
  );
}

export async function markDepositConfirmed(client: PoolClient, id: string, entryId: string): Promise<void> {
  await client.query(
    `UPDATE wallet.deposits SET status = 'confirmed', confirmed_at = now(), entry_id = $2 WHERE id = $1`,
    [id, entryId],
  );
}

// ------------------------------------------------------------------------------------------------------------
// KYC tiers and the withdrawals kill switch
// ------------------------------------------------------------------------------------------------------------

export async function kycTier(client: Db, userId: string): Promise<number> {
  const { rows } = await client.query<{ kyc_tier: number }>(
    `SELECT kyc_tier FROM wallet.user_profiles WHERE user_id = $1`,
    [userId],
  );
  return rows[0]?.kyc_tier ?? 0;
}

export async function setKycTier(pool: Pool, userId: string, tier: number, actor: string): Promise<void> {
  await pool.query(
    `INSERT INTO wallet.user_profiles (user_id, kyc_tier, updated_by, updated_at) VALUES ($1, $2, $3, now())
     ON CONFLICT (user_id) DO UPDATE SET kyc_tier = EXCLUDED.kyc_tier, updated_by = EXCLUDED.updated_by,
       updated_at = now()`,
    [userId, tier, actor],
  );
}

/**
 * The `withdrawals` kill switch, read FOR SHARE (turning it off waits for the transaction that read it); undefined
 * when the flag row does not exist.
 */
export async function withdrawalsFlagForShare(client: PoolClient): Promise<boolean | undefined> {
  const { rows } = await client.query<{ enabled: boolean }>(
    `SELECT enabled FROM wallet.feature_flags WHERE name = 'withdrawals' FOR SHARE`,
  );
  return rows[0]?.enabled;
}

// ------------------------------------------------------------------------------------------------------------
// Withdrawals
// ------------------------------------------------------------------------------------------------------------

export interface WithdrawalRow {
  id: string;
  user_id: string;
  asset: string;
  amount: string;
  fee: string;
  address: string;
  status: 'awaiting_confirmation' | 'pending' | 'processing' | 'completed' | 'failed' | 'cancelled';
  dispatch_at: Date;
  rail_tx_id: string | null;
  failure_reason: string | null;
  /** While awaiting_confirmation: when the emailed link stops working. */
  confirm_expires_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

const WITHDRAWAL_COLUMNS = `id::text, user_id::text, asset, amount::text, fee::text, address, status, dispatch_at,
  rail_tx_id, failure_reason, confirm_expires_at, created_at, updated_at`;

export async function withdrawalById(client: Db, id: string): Promise<WithdrawalRow> {
  const { rows } = await client.query<WithdrawalRow>(
    `SELECT ${WITHDRAWAL_COLUMNS} FROM wallet.withdrawals WHERE id = $1`,
    [id],
  );
  return rows[0]!;
}

/** What a user withdrew (or is withdrawing) of an asset in the last 24 h, minor units as a decimal string. */
export async function withdrawnInLastDay(client: PoolClient, userId: string, asset: string): Promise<string> {
  const { rows } = await client.query<{ used: string }>(
    `SELECT COALESCE(SUM(amount), 0)::text AS used FROM wallet.withdrawals
        WHERE user_id = $1 AND asset = $2 AND status NOT IN ('failed', 'cancelled')
          AND created_at > now() - interval '24 hours'`,
    [userId, asset],
  );
  return rows[0]!.used;
}

/**
 * A new withdrawal, dispatched `dispatchDelayMs` from now; with a confirmation token hash it awaits the emailed
 * confirmation until `ttlS` from now.
 */
export async function insertWithdrawal(
  client: PoolClient,
  w: {
    id: string;
    userId: string;
    asset: string;
    amount: bigint;
    fee: bigint;
    address: string;
    dispatchDelayMs: number;
    status: 'awaiting_confirmation' | 'pending';
    tokenHash: string | null;
    ttlS: number;
  },
): Promise<WithdrawalRow> {
  const ins = await client.query<WithdrawalRow>(
    `INSERT INTO wallet.withdrawals (id, user_id, asset, amount, fee, address, dispatch_at, status,
                                       confirm_token_hash, confirm_expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7::double precision / 1000), $8, $9,
               CASE WHEN $9::text IS NULL THEN NULL ELSE now() + make_interval(secs => $10) END)
       RETURNING ${WITHDRAWAL_COLUMNS}`,
    [
      w.id,
      w.userId,
      w.asset,
      w.amount.toString(),
      w.fee.toString(),
      w.address,
      w.dispatchDelayMs,
      w.status,
      w.tokenHash,
      w.ttlS,
    ],
  );
  return ins.rows[0]!;
}

export async function getWithdrawal(pool: Pool, userId: string, id: string): Promise<WithdrawalRow | undefined> {
  const { rows } = await pool.query<WithdrawalRow>(
    `SELECT ${WITHDRAWAL_COLUMNS} FROM wallet.withdrawals WHERE id = $1 AND user_id = $2`,
    [id, userId],
  );
  return rows[0];
}

export async function listWithdrawals(pool: Pool, userId: string, limit: number): Promise<WithdrawalRow[]> {
  const { rows } = await pool.query<WithdrawalRow>(
    `SELECT ${WITHDRAWAL_COLUMNS} FROM wallet.withdrawals WHERE user_id = $1
      ORDER BY created_at DESC, id DESC LIMIT $2`,
    [userId, limit],
  );
  return rows;
}

/**
 * Lock the withdrawal awaiting confirmation with this token hash; `expired` when its link no longer works. A key
 * lookup with a state check, written `IS TRUE` (see lockPendingDeposit).
 */
export async function lockWithdrawalByTokenHash(
  client: PoolClient,
  tokenHash: string,
): Promise<(WithdrawalRow & { expired: boolean }) | undefined> {
  const { rows } = await client.query<WithdrawalRow & { expired: boolean }>(
    `SELECT ${WITHDRAWAL_COLUMNS}, confirm_expires_at <= now() AS expired FROM wallet.withdrawals
        WHERE confirm_token_hash = $1 AND (status = 'awaiting_confirmation') IS TRUE FOR UPDATE`,
    [tokenHash],
  );
  return rows[0];
}

/** awaiting_confirmation → pending, dispatched `dispatchDelayMs` from now; the token is cleared. */
export async function markWithdrawalConfirmed(
  client: PoolClient,
  id: string,
  dispatchDelayMs: number,
): Promise<WithdrawalRow> {
  const upd = await client.query<WithdrawalRow>(
    `UPDATE wallet.withdrawals SET status = 'pending', confirm_token_hash = NULL, confirmed_at = now(),
              dispatch_at = now() + make_interval(secs => $2::double precision / 1000), updated_at = now()
        WHERE id = $1 RETURNING ${WITHDRAWAL_COLUMNS}`,
    [id, dispatchDelayMs],
  );
  return upd.rows[0]!;
}

/** Claim the withdrawal whose confirmation link expired first, skipping those another transaction holds. */
export async function claimExpiredUnconfirmedWithdrawal(client: PoolClient): Promise<WithdrawalRow | undefined> {
  const { rows } = await client.query<WithdrawalRow>(
    `SELECT ${WITHDRAWAL_COLUMNS} FROM wallet.withdrawals
        WHERE status = 'awaiting_confirmation' AND confirm_expires_at <= now()
        ORDER BY confirm_expires_at LIMIT 1 FOR UPDATE SKIP LOCKED`,
  );
  return rows[0];
}

/** Cancelled because its confirmation link expired (failure_reason confirmation_expired). */
export async function markWithdrawalConfirmationExpired(client: PoolClient, id: string): Promise<void> {
  await client.query(
    `UPDATE wallet.withdrawals SET status = 'cancelled', confirm_token_hash = NULL,
              failure_reason = 'confirmation_expired', updated_at = now() WHERE id = $1`,
    [id],
  );
}

/** Lock a user's withdrawal. */
export async function lockUserWithdrawal(
  client: PoolClient,
  userId: string,
  id: string,
): Promise<WithdrawalRow | undefined> {
  const { rows } = await client.query<WithdrawalRow>(
    `SELECT ${WITHDRAWAL_COLUMNS} FROM wallet.withdrawals WHERE id = $1 AND user_id = $2 FOR UPDATE`,
    [id, userId],
  );
  return rows[0];
}

export async function markWithdrawalCancelled(client: PoolClient, id: string): Promise<WithdrawalRow> {
  const upd = await client.query<WithdrawalRow>(
    `UPDATE wallet.withdrawals SET status = 'cancelled', confirm_token_hash = NULL, updated_at = now() WHERE id = $1
       RETURNING ${WITHDRAWAL_COLUMNS}`,
    [id],
  );
  return upd.rows[0]!;
}

/** Claim the pending withdrawal due first, skipping those another transaction holds. */
export async function claimDueWithdrawal(client: PoolClient): Promise<WithdrawalRow | undefined> {
  const { rows } = await client.query<WithdrawalRow>(
    `SELECT ${WITHDRAWAL_COLUMNS} FROM wallet.withdrawals WHERE status = 'pending' AND dispatch_at <= now()
        ORDER BY dispatch_at LIMIT 1 FOR UPDATE SKIP LOCKED`,
  );
  return rows[0];
}

export async function markWithdrawalProcessing(client: PoolClient, id: string): Promise<void> {
  await client.query(`UPDATE wallet.withdrawals SET status = 'processing', updated_at = now() WHERE id = $1`, [id]);
}

// ------------------------------------------------------------------------------------------------------------
// Payouts (staff views of withdrawals by state)
// ------------------------------------------------------------------------------------------------------------

export interface PayoutRow {
  id: string;
  user_id: string;
  asset: string;
  amount: string;
  fee: string;
  address: string;
  status: string;
  dispatch_at: Date;
  rail_tx_id: string | null;
  failure_reason: string | null;
  created_at: Date;
  updated_at: Date;
}

/** Withdrawals in any of `statuses` (of one asset, or all when null), by creation time in `order`. */
export async function listPayouts(
  db: Db,
  statuses: string[],
  asset: string | null,
  order: 'ASC' | 'DESC',
  limit: number,
): Promise<PayoutRow[]> {
  const { rows } = await db.query<PayoutRow>(
    `SELECT id::text, user_id::text, asset, amount::text, fee::text, address, status, dispatch_at, rail_tx_id,
                failure_reason, created_at, updated_at
           FROM wallet.withdrawals
          WHERE status = ANY($1::text[]) AND ($2::text IS NULL OR asset = $2)
          ORDER BY created_at ${order}, id ${order}
          LIMIT $3`,
    [statuses, asset, limit],
  );
  return rows;
}

/** Per asset, how many withdrawals are in any of `statuses` and their total amount. */
export async function payoutTotals(
  db: Db,
  statuses: string[],
  asset: string | null,
): Promise<Array<{ asset: string; count: number; amount: string }>> {
  const { rows } = await db.query<{ asset: string; count: number; amount: string }>(
    `SELECT asset, count(*)::int AS count, sum(amount)::text AS amount
           FROM wallet.withdrawals
          WHERE status = ANY($1::text[]) AND ($2::text IS NULL OR asset = $2)
          GROUP BY asset ORDER BY asset`,
    [statuses, asset],
  );
  return rows;
}
