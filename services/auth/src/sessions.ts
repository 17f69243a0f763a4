import type { FastifyRequest } from 'fastify';
import { withTransaction } from '@exchange/db';
import { AppError } from '@exchange/platform';
import { audit, clientIp, type Queryable } from './audit.ts';
import { USER_COLUMNS, type Ctx, type UserRow } from './context.ts';
import { randomToken, sha256hex } from './crypto.ts';

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
  sessionId: string;
}

const epoch = (d: Date | null) => (d ? Math.floor(d.getTime() / 1000) : undefined);

export async function accessTokenFor(ctx: Ctx, user: UserRow, sessionId: string, mfaAt: Date | null) {
  return ctx.keys.signAccessToken({
    sub: user.id,
    roles: user.roles,
    sid: sessionId,
    mfa: user.totp_enabled_at !== null,
    mfaAt: epoch(mfaAt),
    emailVerified: user.email_verified_at !== null,
  });
}

/** A new session (refresh-token family) with its first refresh token, and an access token. */
export async function startSession(
  ctx: Ctx,
  user: UserRow,
  req: FastifyRequest,
  mfaAt: Date | null,
): Promise<TokenPair> {
  const refreshToken = `rt_${randomToken(32)}`;
  const sessionId = await withTransaction(ctx.pool, async (c) => {
    const { rows } = await c.query<{ id: string }>(
      `INSERT INTO auth.sessions (user_id, expires_at, mfa_at, ip, user_agent)
       VALUES ($1, now() + make_interval(secs => $2), $3, $4, $5) RETURNING id`,
      [
        user.id,
        ctx.config.REFRESH_TOKEN_TTL_SECONDS,
        mfaAt,
        clientIp(req),
        (req.headers['user-agent'] ?? '').slice(0, 512) || null,
      ],
    );
    const sid = rows[0]!.id;
    await c.query('INSERT INTO auth.refresh_tokens (session_id, token_hash) VALUES ($1, $2)', [
      sid,
      sha256hex(refreshToken),
    ]);
    return sid;
  });
  const access = await accessTokenFor(ctx, user, sessionId, mfaAt);
  return { accessToken: access.token, refreshToken, tokenType: 'Bearer', expiresIn: access.expiresIn, sessionId };
}

type RotateError =
  'INVALID_REFRESH_TOKEN' | 'REFRESH_TOKEN_REUSED' | 'SESSION_REVOKED' | 'SESSION_EXPIRED' | 'ACCOUNT_LOCKED';
type RotateResult =
  { error: RotateError } | { error?: undefined; user: UserRow; sessionId: string; mfaAt: Date | null };

/**
 * RFC 9700 §4.14 rotation: every refresh token is single use. Presenting a rotated one again means it was copied:
 * the whole family (session) is revoked and a security event is audited.
 */
export async function rotateRefreshToken(ctx: Ctx, refreshToken: string, req: FastifyRequest): Promise<TokenPair> {
  const next = `rt_${randomToken(32)}`;
  const result = await withTransaction<RotateResult>(ctx.pool, async (c) => {
    const { rows } = await c.query<{
      id: string;
      used_at: Date | null;
      session_id: string;
      user_id: string;
      revoked_at: Date | null;
      expired: boolean;
      mfa_at: Date | null;
    }>(
      `SELECT t.id, t.used_at, t.session_id, s.user_id, s.revoked_at, s.expires_at < now() AS expired, s.mfa_at
         FROM auth.refresh_tokens t JOIN auth.sessions s ON s.id = t.session_id
        WHERE t.token_hash = $1 FOR UPDATE OF t, s`,
      [sha256hex(refreshToken)],
    );
    const t = rows[0];
    if (!t) return { error: 'INVALID_REFRESH_TOKEN' as const };
    if (t.used_at !== null) {
      if (t.revoked_at === null) {
        await revokeSession(c, t.session_id, 'refresh_token_reuse');
        await audit(c, req, {
          action: 'security.refresh_token_reuse',
          actorId: t.user_id,
          targetId: t.user_id,
          details: { sessionId: t.session_id, rotatedAt: t.used_at.toISOString() },
        });
        ctx.metrics.securityEvents.inc({ event: 'refresh_token_reuse' });
      }
      return { error: 'REFRESH_TOKEN_REUSED' as const };
    }
    if (t.revoked_at !== null) return { error: 'SESSION_REVOKED' as const };
    if (t.expired) return { error: 'SESSION_EXPIRED' as const };
    const users = await c.query<UserRow>(`SELECT ${USER_COLUMNS} FROM auth.users WHERE id = $1`, [t.user_id]);
    const user = users.rows[0]!;
    if (user.locked_at !== null) return { error: 'ACCOUNT_LOCKED' as const };
    await c.query('UPDATE auth.refresh_tokens SET used_at = now() WHERE id = $1', [t.id]);
    await c.query('INSERT INTO auth.refresh_tokens (session_id, token_hash) VALUES ($1, $2)', [
      t.session_id,
      sha256hex(next),
    ]);
    await c.query('UPDATE auth.sessions SET last_used_at = now() WHERE id = $1', [t.session_id]);
    return { user, sessionId: t.session_id, mfaAt: t.mfa_at };
  });
  if (result.error !== undefined) {
    const messages = {
      INVALID_REFRESH_TOKEN: 'refresh token not recognised',
      REFRESH_TOKEN_REUSED: 'refresh token already used; the session has been revoked',
      SESSION_REVOKED: 'the session was logged out or revoked; log in again',
      SESSION_EXPIRED: 'the session has ended; log in again',
      ACCOUNT_LOCKED: 'the account is locked',
    };
    const code = result.error;
    throw new AppError(401, code, messages[code]);
  }
  const access = await accessTokenFor(ctx, result.user, result.sessionId, result.mfaAt);
  ctx.metrics.tokensIssued.inc({ kind: 'refresh' });
  return {
    accessToken: access.token,
    refreshToken: next,
    tokenType: 'Bearer',
    expiresIn: access.expiresIn,
    sessionId: result.sessionId,
  };
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

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function isSessionRevoked(db: Queryable, sessionId: string): Promise<boolean> {
  if (!UUID.test(sessionId)) return true;
  const { rows } = await db.query<{ dead: boolean }>(
    'SELECT (revoked_at IS NOT NULL OR expires_at < now()) AS dead FROM auth.sessions WHERE id = $1',
    [sessionId],
  );
  return rows[0]?.dead ?? true;
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
