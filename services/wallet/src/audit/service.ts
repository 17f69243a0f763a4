import type { Pool } from '@exchange/db';
import { insertAuditEvent } from './repository.ts';

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
    await insertAuditEvent(pool, e);
  } catch (err) {
    log?.error({ err, action: e.action }, 'audit write failed');
  }
}
