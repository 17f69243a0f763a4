import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyRequest } from 'fastify';
import { withTransaction } from '@exchange/db';
import { AppError, errorResponses, Type, unauthorized, type App } from '@exchange/platform';
import { requireAuth } from '@exchange/auth-client';
import {
  EmailVerificationRequestedV1,
  PasswordResetCompletedV1,
  PasswordResetRequestedV1,
} from '@exchange/contracts/auth';
import { audit, clientIp } from '../audit.ts';
import { normaliseEmail, USER_COLUMNS, type Ctx, type UserRow } from '../context.ts';
import { sha256hex } from '../crypto.ts';
import { emit, requestContext } from '../email.ts';
import { passwordProblems } from '../passwords.ts';
import { revokeUserSessions } from '../sessions.ts';
import { revokeUserApiKeys } from './apikeys.ts';
import { bearer, Email, Password } from './schemas.ts';

const tags = ['auth'];
const EmailToken = Type.String({ minLength: 1, maxLength: 300, description: 'the token of the emailed link' });
const HOUR = 3600;

/** Counts one request against `kind`/`key`: at most `limit` per hour, then 429 RATE_LIMITED (Retry-After). */
async function rateLimit(ctx: Ctx, kind: string, key: string, limit: number): Promise<void> {
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

export function emailRoutes(app: App, ctx: Ctx): void {
  app.post(
    '/api/v1/auth/email/verify',
    {
      schema: {
        tags,
        summary: 'Confirm your email address with the token of the emailed link (single use)',
        description:
          'Bad, altered or already used tokens: 400 INVALID_TOKEN; expired: 400 TOKEN_EXPIRED. Access tokens issued ' +
          'before the verification still say unverified (claim `ev`); services ask the auth service in that case.',
        body: Type.Object({ token: EmailToken }, { additionalProperties: false }),
        response: { 200: Type.Object({ emailVerified: Type.Literal(true) }), ...errorResponses(400) },
      },
    },
    async (req) => {
      const userId = await withTransaction(ctx.pool, async (c) => {
        const r = await ctx.emailTokens.consume(c, 'verify_email', req.body.token);
        if ('error' in r) return r;
        await c.query(
          `UPDATE auth.users SET email_verified_at = coalesce(email_verified_at, now()), updated_at = now() WHERE id = $1`,
          [r.userId],
        );
        await audit(c, req, { action: 'auth.email_verified', actorId: r.userId, targetId: r.userId });
        return r;
      });
      if ('error' in userId) {
        // an expired token is spent by consume (its transaction must commit for that)
        throw tokenError(userId.error);
      }
      return { emailVerified: true as const };
    },
  );

  app.post(
    '/api/v1/auth/email/resend',
    {
      onRequest: requireAuth,
      schema: {
        tags,
        summary: 'Send a new verification link (earlier links stop working); rate-limited',
        description: `At most EMAIL_RESEND_LIMIT (default 5) per hour, then 429 RATE_LIMITED. Already verified: 202 and no mail.`,
        security: bearer,
        response: { 202: Type.Object({ sent: Type.Literal(true) }), ...errorResponses(401, 429) },
      },
    },
    async (req, reply) => {
      const userId = req.principal!.id;
      await rateLimit(ctx, 'email_resend', userId, ctx.config.EMAIL_RESEND_LIMIT);
      await withTransaction(ctx.pool, async (c) => {
        const { rows } = await c.query<UserRow>(`SELECT ${USER_COLUMNS} FROM auth.users WHERE id = $1`, [userId]);
        const user = rows[0];
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
      return reply.status(202).send({ sent: true as const });
    },
  );

  app.post(
    '/api/v1/auth/password/forgot',
    {
      schema: {
        tags,
        summary: 'Ask for a password reset link by email',
        description:
          'Always 202 {accepted: true}, in the same time (PASSWORD_FORGOT_MIN_MS), whether or not the email has an ' +
          'account; only an existing account gets a mail. Rate-limited per email and per client IP (429 RATE_LIMITED). ' +
          'The link works once, for PASSWORD_RESET_TTL_SECONDS (30 min).',
        body: Type.Object({ email: Email }, { additionalProperties: false }),
        response: { 202: Type.Object({ accepted: Type.Literal(true) }), ...errorResponses(400, 429) },
      },
    },
    async (req, reply) => {
      const started = Date.now();
      const email = normaliseEmail(req.body.email);
      // Both limits are counted for known and unknown emails alike, so a 429 says nothing about the account.
      await rateLimit(ctx, 'forgot_ip', clientIp(req) ?? 'unknown', ctx.config.PASSWORD_FORGOT_IP_LIMIT);
      await rateLimit(ctx, 'forgot_email', email, ctx.config.PASSWORD_FORGOT_EMAIL_LIMIT);
      await requestReset(ctx, req, email);
      const wait = ctx.config.PASSWORD_FORGOT_MIN_MS - (Date.now() - started);
      if (wait > 0) await sleep(wait);
      return reply.status(202).send({ accepted: true as const });
    },
  );

  app.post(
    '/api/v1/auth/password/reset',
    {
      schema: {
        tags,
        summary: 'Set a new password with the token of the emailed reset link',
        description:
          'Revokes every session (refresh tokens; access tokens within seconds everywhere) and every API key of the ' +
          'user. Bad or used token: 400 INVALID_TOKEN; expired: 400 TOKEN_EXPIRED; weak password: 400 WEAK_PASSWORD ' +
          '(the link stays usable).',
        body: Type.Object({ token: EmailToken, newPassword: Password }, { additionalProperties: false }),
        response: { 200: Type.Object({ reset: Type.Literal(true) }), ...errorResponses(400) },
      },
    },
    async (req) => {
      const { token, newPassword } = req.body;
      if (!ctx.emailTokens.wellFormed('reset_password', token)) throw tokenError('INVALID_TOKEN');
      // Weak password first, without spending the link: look the user up by the token (not consumed yet).
      const { rows } = await ctx.pool.query<{ email: string }>(
        `SELECT u.email FROM auth.email_tokens t JOIN auth.users u ON u.id = t.user_id
          WHERE t.token_hash = $1 AND t.purpose = 'reset_password'`,
        [sha256hex(token)],
      );
      const found = rows[0];
      if (found) {
        const problems = passwordProblems(newPassword, found.email);
        if (problems.length)
          throw new AppError(400, 'WEAK_PASSWORD', `password ${problems.join('; ')}`, { details: { problems } });
      }
      const hash = await ctx.passwords.hash(newPassword);
      const result = await withTransaction(ctx.pool, async (c) => {
        const r = await ctx.emailTokens.consume(c, 'reset_password', token);
        if ('error' in r) return r;
        const u = await c.query<UserRow>(`SELECT ${USER_COLUMNS} FROM auth.users WHERE id = $1 FOR UPDATE`, [r.userId]);
        const user = u.rows[0]!;
        // The mail reached its owner: the address is proven too.
        await c.query(
          `UPDATE auth.users SET password_hash = $2, email_verified_at = coalesce(email_verified_at, now()),
                  updated_at = now() WHERE id = $1`,
          [user.id, hash],
        );
        const sessions = await revokeUserSessions(c, user.id, 'password_reset');
        const keys = await revokeUserApiKeys(c, user.id, 'password_reset');
        await c.query(`UPDATE auth.email_tokens SET used_at = now() WHERE user_id = $1 AND used_at IS NULL`, [user.id]);
        await audit(c, req, {
          action: 'auth.password_reset',
          actorId: user.id,
          targetId: user.id,
          details: { sessionsRevoked: sessions, apiKeysRevoked: keys },
        });
        await emit(
          c,
          PasswordResetCompletedV1,
          { userId: user.id, email: user.email, context: requestContext(req) },
          req,
        );
        return { userId: user.id };
      });
      if ('error' in result) throw tokenError(result.error);
      return { reset: true as const };
    },
  );
}

/** Issue a reset token and publish the mail event if the email has an account; nothing otherwise. */
async function requestReset(ctx: Ctx, req: FastifyRequest, email: string): Promise<void> {
  await withTransaction(ctx.pool, async (c) => {
    const { rows } = await c.query<UserRow>(`SELECT ${USER_COLUMNS} FROM auth.users WHERE email = $1`, [email]);
    const user = rows[0];
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
