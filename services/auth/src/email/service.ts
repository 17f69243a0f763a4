/**
 * Emailed tokens (verification, password reset), the domain events auth publishes through its outbox, and the
 * operations on them: confirming an address, resending the link, asking for and completing a password reset.
 *
 * A token is `<32 random bytes, base64url>.<HMAC-SHA256 tag, base64url>`; the tag binds it to its purpose with a key
 * derived from API_KEY_ENCRYPTION_KEY (HKDF, label `exchange-email-token`). An altered token fails the tag check before
 * the database is asked; a well-formed one is looked up by its SHA-256 (the only thing stored) and spent atomically
 * (`used_at`), so it works once, and only until `expires_at`.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyRequest } from 'fastify';
import type { MessageContract } from '@exchange/contracts';
import {
  EmailVerificationRequestedV1,
  MfaDisabledV1,
  MfaEnabledV1,
  PasswordResetCompletedV1,
  PasswordResetRequestedV1,
  type RequestContext,
} from '@exchange/contracts/auth';
import { withTransaction, type PoolClient } from '@exchange/db';
import { enqueue, EVENTS_EXCHANGE, type Queryable } from '@exchange/messaging';
import { AppError, unauthorized } from '@exchange/platform';
import type { Static, TSchema } from '@sinclair/typebox';
import { revokeUserApiKeys } from '../api-keys/repository.ts';
import { audit, clientIp } from '../audit/repository.ts';
import { normaliseEmail, type AuthContext } from '../context.ts';
import { randomToken, sha256hex } from '../crypto.ts';
import { revokeUserSessions } from '../sessions/repository.ts';
import { assertStrongPassword } from '../users/passwords.ts';
import { findUserByEmail, findUserById, resetPassword, verifyEmail } from '../users/repository.ts';
import * as repo from './repository.ts';

export type TokenPurpose = 'verify_email' | 'reset_password';

export const PRODUCER = 'auth';

export class EmailTokens {
  private readonly key: Buffer;
  constructor(base64Key: string) {
    this.key = Buffer.from(hkdfSync('sha256', Buffer.from(base64Key, 'base64'), '', 'exchange-email-token', 32));
  }

  private tag(purpose: TokenPurpose, body: string): string {
    return createHmac('sha256', this.key).update(`${purpose}:${body}`).digest('base64url');
  }

  /** A new token for `purpose`; returns the token (for the mail) and its hash (for the table). */
  mint(purpose: TokenPurpose): { token: string; hash: string } {
    const body = randomToken(32);
    const token = `${body}.${this.tag(purpose, body)}`;
    return { token, hash: sha256hex(token) };
  }

  /** Whether the token carries a valid tag for `purpose` (constant time). */
  wellFormed(purpose: TokenPurpose, token: string): boolean {
    const m = /^([A-Za-z0-9_-]{43})\.([A-Za-z0-9_-]{43})$/.exec(token);
    if (!m) return false;
    const expected = Buffer.from(this.tag(purpose, m[1]!));
    const given = Buffer.from(m[2]!);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }

  /**
   * Store a fresh token for the user (earlier unused tokens of the same purpose are spent: only the newest link
   * works). Run it in the transaction that publishes the mail event.
   */
  async issue(
    db: Queryable,
    userId: string,
    purpose: TokenPurpose,
    ttlSeconds: number,
  ): Promise<{ token: string; expiresAt: Date }> {
    await repo.spendUnusedTokens(db, userId, purpose);
    const { token, hash } = this.mint(purpose);
    const expiresAt = await repo.insertToken(db, userId, purpose, hash, ttlSeconds);
    return { token, expiresAt };
  }

  /**
   * Spend a token: `{ userId }`, or the refusal. Spending is atomic (`WHERE used_at IS NULL`), so of two concurrent
   * uses one wins. An expired token is spent too (it can never work again) and reported as TOKEN_EXPIRED.
   */
  async consume(
    db: Queryable,
    purpose: TokenPurpose,
    token: string,
  ): Promise<{ userId: string } | { error: 'INVALID_TOKEN' | 'TOKEN_EXPIRED' }> {
    if (!this.wellFormed(purpose, token)) return { error: 'INVALID_TOKEN' };
    const r = await repo.spendToken(db, sha256hex(token), purpose);
    if (!r) return { error: 'INVALID_TOKEN' };
    if (r.expired) return { error: 'TOKEN_EXPIRED' };
    return { userId: r.user_id };
  }

  /** The email of the account a password-reset token belongs to, without spending it (used or not). */
  async resetTokenEmail(db: Queryable, token: string): Promise<string | undefined> {
    return repo.resetTokenEmail(db, sha256hex(token));
  }

  /** Spend every unused token of the user, whatever its purpose. */
  async spendAll(db: Queryable, userId: string): Promise<void> {
    await repo.spendAllTokens(db, userId);
  }
}

/** IP and user agent of the request, for the "was this you?" lines of a mail. */
export function requestContext(req: FastifyRequest | undefined): RequestContext {
  if (!req) return { ip: null, userAgent: null };
  return { ip: clientIp(req), userAgent: (req.headers['user-agent'] ?? '').slice(0, 512) || null };
}

/**
 * Write an auth event to the outbox in the caller's transaction (or on the pool, as its own statement, when the
 * state change it reports was a single statement already committed). Routing key = event type.
 */
export async function emit<T extends TSchema>(
  db: Queryable,
  contract: MessageContract<T>,
  payload: Static<T>,
  req?: FastifyRequest,
): Promise<void> {
  await enqueue(db, {
    schema: 'auth',
    exchange: EVENTS_EXCHANGE,
    routingKey: contract.type,
    message: contract.create(payload, { producer: PRODUCER, ...(req ? { correlationId: req.id } : {}) }),
  });
}

/** The events that tell a user by mail about a change to their account: `{ userId, email, context }`. */
export type AccountNotice = typeof MfaEnabledV1 | typeof MfaDisabledV1 | typeof PasswordResetCompletedV1;

/**
 * A change to the user's own account, in the transaction that makes it: its audit row (the user as actor and target)
 * and the event that tells the user by mail.
 */
export async function recordAccountChange(
  c: PoolClient,
  req: FastifyRequest,
  user: { id: string; email: string },
  change: { action: string; details: Record<string, unknown>; notice: AccountNotice },
): Promise<void> {
  await audit(c, req, { action: change.action, actorId: user.id, targetId: user.id, details: change.details });
  await emit(c, change.notice, { userId: user.id, email: user.email, context: requestContext(req) }, req);
}

const HOUR = 3600;

/** Counts one request against `kind`/`key`: at most `limit` per hour, then 429 RATE_LIMITED (Retry-After). */
async function rateLimit(ctx: AuthContext, kind: string, key: string, limit: number): Promise<void> {
  const s = await ctx.throttle.attempt(kind, key, { soft: Infinity, lock: limit + 1, baseMs: 0, lockSeconds: HOUR });
  if (s.blocked || s.failures > limit) {
    const retryAfter = s.blocked ? s.retryAfterSeconds : HOUR;
    throw new AppError(429, 'RATE_LIMITED', 'too many requests; try again later', {
      headers: { 'retry-after': String(retryAfter) },
    });
  }
}

const tokenError = (code: 'INVALID_TOKEN' | 'TOKEN_EXPIRED') =>
  new AppError(
    400,
    code,
    code === 'TOKEN_EXPIRED'
      ? 'this link has expired; ask for a new one'
      : 'this link is not valid or was already used',
  );

/** Confirm an email address with the token of the emailed link (single use); 400 INVALID_TOKEN or TOKEN_EXPIRED. */
export async function confirmEmail(ctx: AuthContext, req: FastifyRequest, token: string): Promise<void> {
  const userId = await withTransaction(ctx.pool, async (c) => {
    const r = await ctx.emailTokens.consume(c, 'verify_email', token);
    if ('error' in r) return r;
    await verifyEmail(c, r.userId);
    await audit(c, req, { action: 'auth.email_verified', actorId: r.userId, targetId: r.userId });
    return r;
  });
  if ('error' in userId) {
    // an expired token is spent by consume (its transaction must commit for that)
    throw tokenError(userId.error);
  }
}

/** A new verification link (earlier links stop working), rate-limited; nothing for a verified address. */
export async function resendVerification(ctx: AuthContext, req: FastifyRequest, userId: string): Promise<void> {
  await rateLimit(ctx, 'email_resend', userId, ctx.config.EMAIL_RESEND_LIMIT);
  await withTransaction(ctx.pool, async (c) => {
    const user = await findUserById(c, userId);
    if (!user) throw unauthorized('UNAUTHENTICATED', 'user no longer exists');
    if (user.email_verified_at !== null) return;
    const t = await ctx.emailTokens.issue(c, user.id, 'verify_email', ctx.config.EMAIL_VERIFICATION_TTL_SECONDS);
    await emit(
      c,
      EmailVerificationRequestedV1,
      {
        userId: user.id,
        email: user.email,
        verificationToken: t.token,
        expiresAt: t.expiresAt.toISOString(),
        context: requestContext(req),
      },
      req,
    );
    await audit(c, req, { action: 'auth.email_verification_resent', actorId: user.id, targetId: user.id });
  });
}

/**
 * A password reset link for `email` if it has an account. Rate-limited per client IP and per email, and answered in
 * the same time (PASSWORD_FORGOT_MIN_MS) whether or not the account exists.
 */
export async function forgotPassword(ctx: AuthContext, req: FastifyRequest, rawEmail: string): Promise<void> {
  const started = Date.now();
  const email = normaliseEmail(rawEmail);
  // Both limits are counted for known and unknown emails alike, so a 429 says nothing about the account.
  await rateLimit(ctx, 'forgot_ip', clientIp(req) ?? 'unknown', ctx.config.PASSWORD_FORGOT_IP_LIMIT);
  await rateLimit(ctx, 'forgot_email', email, ctx.config.PASSWORD_FORGOT_EMAIL_LIMIT);
  await requestReset(ctx, req, email);
  const wait = ctx.config.PASSWORD_FORGOT_MIN_MS - (Date.now() - started);
  if (wait > 0) await sleep(wait);
}

/** Issue a reset token and publish the mail event if the email has an account; nothing otherwise. */
async function requestReset(ctx: AuthContext, req: FastifyRequest, email: string): Promise<void> {
  await withTransaction(ctx.pool, async (c) => {
    const user = await findUserByEmail(c, email);
    if (!user) {
      await audit(c, req, { action: 'auth.password_reset_requested', details: { email, known: false } });
      return;
    }
    const t = await ctx.emailTokens.issue(c, user.id, 'reset_password', ctx.config.PASSWORD_RESET_TTL_SECONDS);
    await emit(
      c,
      PasswordResetRequestedV1,
      {
        userId: user.id,
        email: user.email,
        resetToken: t.token,
        expiresAt: t.expiresAt.toISOString(),
        context: requestContext(req),
      },
      req,
    );
    await audit(c, req, {
      action: 'auth.password_reset_requested',
      actorId: user.id,
      targetId: user.id,
      details: { known: true },
    });
  });
}

/**
 * Set a new password with the token of the emailed reset link: every session and API key of the user is revoked,
 * and the address counts as verified (the mail reached its owner). A weak password is refused before the link is
 * spent, so it stays usable.
 */
export async function resetPasswordWithToken(
  ctx: AuthContext,
  req: FastifyRequest,
  token: string,
  newPassword: string,
): Promise<void> {
  if (!ctx.emailTokens.wellFormed('reset_password', token)) throw tokenError('INVALID_TOKEN');
  // Weak password first, without spending the link: look the user up by the token (not consumed yet).
  const email = await ctx.emailTokens.resetTokenEmail(ctx.pool, token);
  if (email !== undefined) assertStrongPassword(newPassword, email);
  const hash = await ctx.passwords.hash(newPassword);
  const result = await withTransaction(ctx.pool, async (c) => {
    const r = await ctx.emailTokens.consume(c, 'reset_password', token);
    if ('error' in r) return r;
    const user = (await findUserById(c, r.userId, { forUpdate: true }))!;
    // The mail reached its owner: the address is proven too.
    await resetPassword(c, user.id, hash);
    const sessions = await revokeUserSessions(c, user.id, 'password_reset');
    const keys = await revokeUserApiKeys(c, user.id, 'password_reset');
    await ctx.emailTokens.spendAll(c, user.id);
    await recordAccountChange(c, req, user, {
      action: 'auth.password_reset',
      details: { sessionsRevoked: sessions, apiKeysRevoked: keys },
      notice: PasswordResetCompletedV1,
    });
    return { userId: user.id };
  });
  if ('error' in result) throw tokenError(result.error);
}
