/**
 * The SQL of the scheduler: the advisory lock that lets one replica at a time run the scheduled reconciliation, and
 * whether that reconciliation is due. The scheduler (scheduler.ts) decides what runs when. Each function sends one
 * statement, its text unchanged from where it was written.
 */
import type { PoolClient } from '@exchange/db';

/** Take the scheduled reconciliation's session advisory lock on `client` if it is free; whether it was taken. */
export async function tryLockScheduledReconciliation(client: PoolClient): Promise<boolean> {
  const { rows } = await client.query<{ ok: boolean }>(
    `SELECT pg_try_advisory_lock(hashtext('wallet:scheduled-reconciliation')) AS ok`,
  );
  return rows[0]?.ok ?? false;
}

export async function unlockScheduledReconciliation(client: PoolClient): Promise<void> {
  await client.query(`SELECT pg_advisory_unlock(hashtext('wallet:scheduled-reconciliation'))`);
}

/**
 * Whether the last scheduled reconciliation report started more than `intervalMs` ago (or there is none). An
 * `incomplete` one (a service it asks was unreachable) is retried after `retryMs` instead, so that one unlucky run
 * does not leave the ledger unverified for a whole interval.
 */
export async function scheduledReconciliationDue(
  client: PoolClient,
  intervalMs: number,
  retryMs: number,
): Promise<boolean> {
  const last = await client.query<{ due: boolean }>(
    `SELECT COALESCE((SELECT started_at < now() - make_interval(secs => (CASE WHEN status = 'incomplete'
                     THEN least($1::double precision, $2::double precision) ELSE $1::double precision END) / 1000)
                        FROM wallet.reconciliation_reports WHERE trigger = 'scheduled'
                       ORDER BY started_at DESC LIMIT 1), true) AS due`,
    [intervalMs, retryMs],
  );
  return last.rows[0]?.due ?? false;
}
