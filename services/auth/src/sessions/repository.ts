/** The SQL of auth.sessions and auth.refresh_tokens. The transactions around them are in service.ts. */
import type { Queryable } from '../audit/repository.ts';

/** A new session (refresh-token family); its id. */
export async function insertSession(
  db: Queryable,
  v: { userId: string; ttlSeconds: number; mfaAt: Date | null; ip: string | null; userAgent: string | null },
): Promise<string> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO auth.sessions (user_id, expires_at, mfa_at, ip, user_agent)
       VALUES ($1, now() + make_interval(secs => $2), $3, $4, $5) RETURNING id`,
    [v.userId, v.ttlSeconds, v.mfaAt, v.ip, v.userAgent],
  );
  return rows[0]!.id;
}

export async function insertRefreshToken(db: Queryable, sessionId: string, tokenHash: string): Promise<void> {
  await db.query('INSERT INTO auth.refresh_tokens (session_id, token_hash) VALUES ($1, $2)', [sessionId, tokenHash]);
}

export interface RefreshTokenRow {
  id: string;
  used_at: Date | null;
  session_id: string;
  user_id: string;
  revoked_at: Date | null;
  expired: boolean;
  mfa_at: Date | null;
}

/** The refresh token with this hash and its session, both locked. */
export async function lockRefreshToken(db: Queryable, tokenHash: string): Promise<RefreshTokenRow | undefined> {
  const { rows } = await db.query<RefreshTokenRow>(
    `SELECT t.id, t.used_at, t.session_id, s.user_id, s.revoked_at, s.expires_at < now() AS expired, s.mfa_at
         FROM auth.refresh_tokens t JOIN auth.sessions s ON s.id = t.session_id
        WHERE t.token_hash = $1 FOR UPDATE OF t, s`,
    [tokenHash],
  );
  return rows[0];
}

export async function markRefreshTokenUsed(db: Queryable, tokenId: string): Promise<void> {
  await db.query('UPDATE auth.refresh_tokens SET used_at = now() WHERE id = $1', [tokenId]);
}

export async function touchSession(db: Queryable, sessionId: string): Promise<void> {
  await db.query('UPDATE auth.sessions SET last_used_at = now() WHERE id = $1', [sessionId]);
}

export async function revokeSession(db: Queryable, sessionId: string, reason: string): Promise<boolean> {
  const r = await db.query(
    'UPDATE auth.sessions SET revoked_at = clock_timestamp(), revoked_reason = $2 WHERE id = $1 AND revoked_at IS NULL',
    [sessionId, reason],
  );
  return r.rowCount === 1;
}

export async function revokeUserSessions(db: Queryable, userId: string, reason: string): Promise<number> {
  const r = await db.query(
    'UPDATE auth.sessions SET revoked_at = clock_timestamp(), revoked_reason = $2 WHERE user_id = $1 AND revoked_at IS NULL',
    [userId, reason],
  );
  return r.rowCount ?? 0;
}

/** Whether the session is revoked or expired; undefined when there is no such session. */
export async function sessionDead(db: Queryable, sessionId: string): Promise<boolean | undefined> {
  const { rows } = await db.query<{ dead: boolean }>(
    'SELECT (revoked_at IS NOT NULL OR expires_at < now()) AS dead FROM auth.sessions WHERE id = $1',
    [sessionId],
  );
  return rows[0]?.dead;
}

export interface ActiveSessionRow {
  id: string;
  created_at: Date;
  last_used_at: Date;
  expires_at: Date;
  ip: string | null;
  user_agent: string | null;
  mfa_at: Date | null;
}

/** A user's active sessions ("devices"), most recently used first, at most 100. */
export async function listActiveSessions(db: Queryable, userId: string): Promise<ActiveSessionRow[]> {
  const { rows } = await db.query<ActiveSessionRow>(
    `SELECT id, created_at, last_used_at, expires_at, host(ip) AS ip, user_agent, mfa_at FROM auth.sessions
      WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now() ORDER BY last_used_at DESC LIMIT 100`,
    [userId],
  );
  return rows;
}

/** Whether the session (active or not) belongs to the user. */
export async function isOwnSession(db: Queryable, sessionId: string, userId: string): Promise<boolean> {
  const owned = await db.query('SELECT 1 FROM auth.sessions WHERE id = $1 AND user_id = $2', [sessionId, userId]);
  return (owned.rowCount ?? 0) > 0;
}

/**
 * Revoke every active session of the user but `keep` (the caller's own, when there is one): password change, 2FA
 * turned on or off. How many were revoked.
 */
export async function revokeOtherSessions(
  db: Queryable,
  userId: string,
  keep: string | null,
  reason: string,
): Promise<number> {
  const r = await db.query(
    `UPDATE auth.sessions SET revoked_at = clock_timestamp(), revoked_reason = $3
      WHERE user_id = $1 AND revoked_at IS NULL AND id IS DISTINCT FROM $2::uuid`,
    [userId, keep, reason],
  );
  return r.rowCount ?? 0;
}

/** The session passed a 2FA check at `at` (enrolment, step-up). */
export async function setSessionMfaAt(db: Queryable, sessionId: string, at: Date): Promise<void> {
  await db.query('UPDATE auth.sessions SET mfa_at = $2 WHERE id = $1', [sessionId, at]);
}

/**
 * Sessions revoked after `sinceMs` (epoch ms) recent enough that an access token of theirs (TTL `accessTtlSeconds`)
 * may be unexpired: their id, until when (epoch s) to refuse them, and the database clock (epoch ms) as of the read.
 */
export async function revokedSessionRows(
  db: Queryable,
  sinceMs: number,
  accessTtlSeconds: number,
): Promise<Array<{ sid: string; until: number; as_of: string }>> {
  const { rows } = await db.query<{ sid: string; until: number; as_of: string }>(
    `SELECT id AS sid, (extract(epoch FROM revoked_at)::bigint + $2::int)::int AS until,
            (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS as_of
       FROM auth.sessions
      WHERE revoked_at > greatest(to_timestamp($1::bigint / 1000.0), now() - make_interval(secs => $2::int + 10))`,
    [sinceMs, accessTtlSeconds],
  );
  return rows;
}

/** The database clock, epoch ms. */
export async function databaseNowMs(db: Queryable): Promise<number> {
  const r = await db.query<{ as_of: string }>(`SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS as_of`);
  return Number(r.rows[0]!.as_of);
}

/**
 * Whether the user had sessions other than `sessionId`, and whether one of them came from this IP and user agent
 * (the new-device notice).
 */
export async function earlierDevices(
  db: Queryable,
  userId: string,
  sessionId: string,
  device: { ip: string | null; userAgent: string | null },
): Promise<{ earlier: boolean; same: boolean }> {
  const { rows } = await db.query<{ earlier: boolean; same: boolean }>(
    `SELECT count(*) > 0 AS earlier,
            coalesce(bool_or(ip IS NOT DISTINCT FROM $3::inet AND user_agent IS NOT DISTINCT FROM $4), false) AS same
       FROM auth.sessions WHERE user_id = $1 AND id <> $2`,
    [userId, sessionId, device.ip, device.userAgent],
  );
  return { earlier: rows[0]?.earlier ?? false, same: rows[0]?.same ?? false };
}
