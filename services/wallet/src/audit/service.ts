import type { Pool } from '@exchange/db';

export interface AuditEvent {
  actor: string;
  action: string;
  outcome: 'ok' | 'blocked' | 'failed';
  subjectType?: string;
  subjectId?: string;
  details?: Record<string, unknown>;
  requestId?: string;
}

/** Append to the wallet's audit trail (append-only table). Never throws: auditing must not break the request. */
export async function audit(pool: Pool, e: AuditEvent, log?: { error(o: object, m?: string): void }): Promise<void> {
  try {
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
  } catch (err) {
    log?.error({ err, action: e.action }, 'audit write failed');
  }
}
