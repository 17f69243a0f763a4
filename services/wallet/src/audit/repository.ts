/**
 * The SQL of the wallet's audit trail (wallet.audit_events, append-only): append an event, and the withdrawal
 * requests refused by policy that staff look at. Each function sends one statement, its text unchanged from where it
 * was written.
 */
import type { Pool } from '@exchange/db';
import type { AuditEvent } from './service.ts';

export async function insertAuditEvent(pool: Pool, e: AuditEvent): Promise<void> {
  await pool.query(
    `INSERT INTO wallet.audit_events (actor, action, outcome, subject_type, subject_id, details, request_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [
      e.actor,
      e.action,
      e.outcome,
      e.subjectType ?? null,
      e.subjectId ?? null,
      JSON.stringify(e.details ?? {}),
      e.requestId ?? null,
    ],
  );
}

export interface BlockedWithdrawalRow {
  at: Date;
  actor: string;
  details: { reason?: unknown; code?: unknown; body?: unknown };
  request_id: string | null;
}

/** Withdrawal requests refused by policy, newest first. */
export async function blockedWithdrawalRequests(pool: Pool, limit: number): Promise<BlockedWithdrawalRow[]> {
  const { rows } = await pool.query<BlockedWithdrawalRow>(
    `SELECT at, actor, details, request_id FROM wallet.audit_events
          WHERE action = 'withdrawal.request' AND outcome = 'blocked'
          ORDER BY id DESC LIMIT $1`,
    [limit],
  );
  return rows;
}
