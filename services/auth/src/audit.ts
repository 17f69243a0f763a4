import type { FastifyRequest } from 'fastify';
import type pg from 'pg';

export type Queryable = pg.Pool | pg.PoolClient;

export interface AuditEntry {
  action: string;
  actorId?: string | null;
  targetId?: string | null;
  details?: Record<string, unknown>;
}

/** Append one row to auth.audit_log (who, whom, what, from where, when). The table rejects UPDATE/DELETE. */
export async function audit(db: Queryable, req: FastifyRequest | undefined, e: AuditEntry): Promise<void> {
  await db.query(
    `INSERT INTO auth.audit_log (actor_id, target_id, action, ip, user_agent, request_id, details)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [
      e.actorId ?? null,
      e.targetId ?? null,
      e.action,
      req ? clientIp(req) : null,
      req ? (req.headers['user-agent'] ?? '').slice(0, 512) || null : null,
      req?.id ?? null,
      JSON.stringify(e.details ?? {}),
    ],
  );
}

/** A valid inet or null (the IP Fastify derived, honouring trustProxy). */
export function clientIp(req: FastifyRequest): string | null {
  const ip = req.ip;
  return ip && /^[0-9a-fA-F:.]{2,45}$/.test(ip) ? ip : null;
}
