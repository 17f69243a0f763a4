/**
 * The SQL of what the wallet's consumers apply: the settlement rows of trades, and the withdrawals a payout result
 * completes or fails with the rail's record of it. The transactions and rules around these statements are in
 * service.ts. Each function sends one statement, its text unchanged from where it was written (the
 * prepared-statement cache keys on the text).
 */
import type { PoolClient } from '@exchange/db';
import type { OutboxGuard } from '@exchange/messaging';
import { LEDGER_WRITES_CTES, ledgerWritesValues, type LedgerWrites } from '../ledger/repository.ts';

/**
 * One row per settled trade, naming its journal entry and the message that settled it: the guard of the settlement's
 * outbox statement (`enqueueGuarded`), after the ledger's `writes` (`LEDGER_WRITES_CTES`), so the holds, the
 * accounts, the postings, these rows and the trades' messages are written by one statement.
 */
export function settlementsGuard(
  writes: LedgerWrites,
  settled: Array<{ tradeId: string; market: string; entryId: string; messageId: string }>,
): OutboxGuard {
  const ledger = ledgerWritesValues(writes);
  const n = ledger.length;
  return {
    with: LEDGER_WRITES_CTES,
    sql: `INSERT INTO wallet.settlements (trade_id, market, entry_id, message_id)
            SELECT * FROM unnest($${n + 1}::uuid[], $${n + 2}::text[], $${n + 3}::bigint[], $${n + 4}::text[])
          RETURNING trade_id::text AS id`,
    values: [
      ...ledger,
      settled.map((s) => s.tradeId),
      settled.map((s) => s.market),
      settled.map((s) => s.entryId),
      settled.map((s) => s.messageId),
    ],
    dependsOn: settled.map((s) => s.tradeId),
  };
}

export interface PayoutWithdrawalRow {
  id: string;
  user_id: string;
  asset: string;
  amount: string;
  fee: string;
  status: string;
}

/** Lock a withdrawal a payout result names. */
export async function lockWithdrawal(client: PoolClient, id: string): Promise<PayoutWithdrawalRow | undefined> {
  const { rows } = await client.query<PayoutWithdrawalRow>(
    `SELECT id::text, user_id::text, asset, amount::text, fee::text, status FROM wallet.withdrawals
      WHERE id = $1 FOR UPDATE`,
    [id],
  );
  return rows[0];
}

/** What the rail paid out for a withdrawal. */
export async function insertPayoutRailRecord(
  client: PoolClient,
  w: PayoutWithdrawalRow,
  railTxId: string,
): Promise<void> {
  await client.query(
    `INSERT INTO wallet.rail_transactions (direction, asset, amount, withdrawal_id, rail_tx_id)
     VALUES ('out', $1, $2, $3, $4)`,
    [w.asset, w.amount, w.id, railTxId],
  );
}

export async function markWithdrawalCompleted(
  client: PoolClient,
  id: string,
  railTxId: string,
  entryId: string,
): Promise<void> {
  await client.query(
    `UPDATE wallet.withdrawals SET status = 'completed', rail_tx_id = $2, entry_id = $3, updated_at = now()
      WHERE id = $1`,
    [id, railTxId, entryId],
  );
}

export async function markWithdrawalFailed(client: PoolClient, id: string, reason: string): Promise<void> {
  await client.query(
    `UPDATE wallet.withdrawals SET status = 'failed', failure_reason = $2, updated_at = now() WHERE id = $1`,
    [id, reason],
  );
}
