/** The SQL of auth.audit_log: append a row, page through them, a user's security log. */
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

export interface AuditRow {
  id: string;
  at: Date;
  actor_id: string | null;
  target_id: string | null;
  action: string;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  details: Record<string, unknown>;
}

/** Audit rows, newest first, below the id `before`, filtered; `limit + 1` rows so the caller knows whether more follow. */
export async function auditPage(
  db: Queryable,
  q: { before?: number; actorId?: string; targetId?: string; action?: string; limit: number },
): Promise<AuditRow[]> {
  const where: string[] = [];
  const args: unknown[] = [];
  const add = (sql: string, v: unknown) => {
    args.push(v);
    where.push(sql.replace('?', `$${args.length}`));
  };
  if (q.before !== undefined) add('id < ?', q.before);
  if (q.actorId) add('actor_id = ?', q.actorId);
  if (q.targetId) add('target_id = ?', q.targetId);
  if (q.action) add('action = ?', q.action);
  args.push(q.limit + 1);
  const { rows } = await db.query<AuditRow>(
    `SELECT id, at, actor_id, target_id, action, host(ip) AS ip, user_agent, request_id, details FROM auth.audit_log
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT $${args.length}`,
    args,
  );
  return rows;
}

/** The security events of a user's account (sign-ins, 2FA, API keys, staff actions on it), newest first. */
export async function securityLogOf(
  db: Queryable,
  userId: string,
  limit: number,
): Promise<Array<Pick<AuditRow, 'at' | 'action' | 'ip' | 'user_agent' | 'details'>>> {
  const { rows } = await db.query<Pick<AuditRow, 'at' | 'action' | 'ip' | 'user_agent' | 'details'>>(
    `SELECT at, action, host(ip) AS ip, user_agent, details FROM auth.audit_log
      WHERE target_id = $1 AND (action LIKE 'auth.%' OR action LIKE 'admin.user_%' OR action LIKE 'security.%')
      ORDER BY id DESC LIMIT $2`,
    [userId, limit],
  );
  return rows;
}
