/** The SQL of payment.payouts: one row per withdrawal paid out (or refused) on the rail. */
import type { Pool, PoolClient } from '@exchange/db';
import { PAYMENT_SCHEMA } from '../db/schema.ts';

const P = `"${PAYMENT_SCHEMA}"`;

export interface PayoutRecord {
  withdrawalId: string;
  userId: string;
  asset: string;
  amount: string;
  address: string;
  status: 'completed' | 'failed';
  railTxId: string | null;
  failureReason: string | null;
  requestMessageId: string;
  requestedAt: string;
  processedAt: Date;
}

/** Serialise concurrent deliveries of one withdrawal (two message ids for it) until the transaction ends. */
export async function lockWithdrawal(tx: PoolClient, withdrawalId: string): Promise<void> {
  await tx.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`payout:${withdrawalId}`]);
}

export async function payoutExists(tx: PoolClient, withdrawalId: string): Promise<boolean> {
  const r = await tx.query(`SELECT 1 FROM ${P}.payouts WHERE withdrawal_id = $1`, [withdrawalId]);
  return (r.rowCount ?? 0) > 0;
}

export async function insertPayout(tx: PoolClient, p: PayoutRecord): Promise<void> {
  await tx.query(
    `INSERT INTO ${P}.payouts
       (withdrawal_id, user_id, asset, amount, address, status, rail_tx_id, failure_reason, request_message_id,
        requested_at, processed_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
    [
      p.withdrawalId,
      p.userId,
      p.asset,
      p.amount,
      p.address,
      p.status,
      p.railTxId,
      p.failureReason,
      p.requestMessageId,
      p.requestedAt,
      p.processedAt,
    ],
  );
}

/** A payout record as the wallet's reconciliation reads it (GET /internal/payouts, @exchange/contracts/payouts). */
export interface RailRecord {
  withdrawalId: string;
  status: 'completed' | 'failed';
  asset: string;
  amount: string;
  railTxId: string | null;
  processedAt: string;
}

interface RailRow {
  withdrawal_id: string;
  status: 'completed' | 'failed';
  asset: string;
  amount: string;
  rail_tx_id: string | null;
  processed_at: Date;
}

const RAIL_COLUMNS = 'withdrawal_id, status, asset, amount::text AS amount, rail_tx_id, processed_at';

const toRailRecord = (r: RailRow): RailRecord => ({
  withdrawalId: r.withdrawal_id,
  status: r.status,
  asset: r.asset,
  amount: r.amount,
  railTxId: r.rail_tx_id,
  processedAt: r.processed_at.toISOString(),
});

/** Up to `limit` payout records after withdrawal id `after`, by withdrawal id: keyset on the primary key. */
export async function railRecordsPage(pool: Pool, after: string | undefined, limit: number): Promise<RailRecord[]> {
  const { rows } = await pool.query<RailRow>(
    `SELECT ${RAIL_COLUMNS} FROM ${P}.payouts WHERE ($1::text IS NULL OR withdrawal_id > $1)
      ORDER BY withdrawal_id LIMIT $2`,
    [after ?? null, limit],
  );
  return rows.map(toRailRecord);
}

/** The payout records of the named withdrawals that exist. */
export async function railRecordsByIds(pool: Pool, ids: string[]): Promise<RailRecord[]> {
  const { rows } = await pool.query<RailRow>(
    `SELECT ${RAIL_COLUMNS} FROM ${P}.payouts WHERE withdrawal_id = ANY($1::text[]) ORDER BY withdrawal_id`,
    [ids],
  );
  return rows.map(toRailRecord);
}
