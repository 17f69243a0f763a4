import type { FastifyRequest } from 'fastify';
import { withTransaction } from '@exchange/db';
import { AppError, notFound } from '@exchange/platform';
import { audit, clientIp, type Queryable } from '../audit/repository.ts';
import type { AuthContext, Caller, UserRow } from '../context.ts';
import { randomToken, sha256hex } from '../crypto.ts';
import { findUserById } from '../users/repository.ts';
import * as repo from './repository.ts';

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
  sessionId: string;
}

const epoch = (d: Date | null) => (d ? Math.floor(d.getTime() / 1000) : undefined);

export async function accessTokenFor(ctx: AuthContext, user: UserRow, sessionId: string, mfaAt: Date | null) {
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
  ctx: AuthContext,
  user: UserRow,
  req: FastifyRequest,
  mfaAt: Date | null,
): Promise<TokenPair> {
  const refreshToken = `rt_${randomToken(32)}`;
  const sessionId = await withTransaction(ctx.pool, async (c) => {
    const sid = await repo.insertSession(c, {
      userId: user.id,
      ttlSeconds: ctx.config.REFRESH_TOKEN_TTL_SECONDS,
      mfaAt,
      ip: clientIp(req),
      userAgent: (req.headers['user-agent'] ?? '').slice(0, 512) || null,
    });
    await repo.insertRefreshToken(c, sid, sha256hex(refreshToken));
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
export async function rotateRefreshToken(
  ctx: AuthContext,
  refreshToken: string,
  req: FastifyRequest,
): Promise<TokenPair> {
  const next = `rt_${randomToken(32)}`;
  const result = await withTransaction<RotateResult>(ctx.pool, async (c) => {
    const t = await repo.lockRefreshToken(c, sha256hex(refreshToken));
    if (!t) return { error: 'INVALID_REFRESH_TOKEN' as const };
    if (t.used_at !== null) {
      if (t.revoked_at === null) {
        await repo.revokeSession(c, t.session_id, 'refresh_token_reuse');
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
    const user = (await findUserById(c, t.user_id))!;
    if (user.locked_at !== null) return { error: 'ACCOUNT_LOCKED' as const };
    await repo.markRefreshTokenUsed(c, t.id);
    await repo.insertRefreshToken(c, t.session_id, sha256hex(next));
    await repo.touchSession(c, t.session_id);
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

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function isSessionRevoked(db: Queryable, sessionId: string): Promise<boolean> {
  if (!UUID.test(sessionId)) return true;
  return (await repo.sessionDead(db, sessionId)) ?? true;
}

/**
 * Sessions revoked after `sinceMs` (epoch ms) recent enough that an access token of theirs (TTL `accessTtlSeconds`)
 * may be unexpired: their id, until when (epoch s) to refuse them, and the database clock (epoch ms) as of the read.
 */
export async function revokedSessionsSince(
  db: Queryable,
  sinceMs: number,
  accessTtlSeconds: number,
): Promise<{ asOf: number; sessions: Array<{ sid: string; until: number }> }> {
  const rows = await repo.revokedSessionRows(db, sinceMs, accessTtlSeconds);
  let asOf = rows[0] ? Number(rows[0].as_of) : undefined;
  if (asOf === undefined) asOf = await repo.databaseNowMs(db);
  return { asOf, sessions: rows.map((r) => ({ sid: r.sid, until: r.until })) };
}

/**
 * What a verifier refuses: the sessions revoked since `sinceMs` (see revokedSessionsSince) and the signing keys
 * revoked in an emergency (always the full list).
 */
export async function revocations(ctx: AuthContext, sinceMs: number) {
  const { asOf, sessions } = await revokedSessionsSince(ctx.pool, sinceMs, ctx.config.ACCESS_TOKEN_TTL_SECONDS);
  return { asOf, sessions, revokedKids: await ctx.keys.revokedKids() };
}

/** Log out: revoke the calling session (a credential without a session, such as an API key, has none to end). */
export async function logout(ctx: AuthContext, req: FastifyRequest, caller: Caller): Promise<void> {
  if (!caller.sessionId) return;
  await repo.revokeSession(ctx.pool, caller.sessionId, 'logout');
  await audit(ctx.pool, req, {
    action: 'auth.logout',
    actorId: caller.id,
    targetId: caller.id,
    details: { sessionId: caller.sessionId },
  });
}

/** Revoke one of the user's own active sessions (log out another device); 404 SESSION_NOT_FOUND otherwise. */
export async function revokeOwnSession(
  ctx: AuthContext,
  req: FastifyRequest,
  userId: string,
  sessionId: string,
): Promise<void> {
  const owned = await repo.isOwnSession(ctx.pool, sessionId, userId);
  if (!owned || !(await repo.revokeSession(ctx.pool, sessionId, 'revoked_by_user'))) {
    throw notFound('SESSION_NOT_FOUND', 'no such active session');
  }
  await audit(ctx.pool, req, {
    action: 'auth.session_revoked',
    actorId: userId,
    targetId: userId,
    details: { sessionId },
  });
}
