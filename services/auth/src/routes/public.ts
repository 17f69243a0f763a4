import type { FastifyRequest } from 'fastify';
import { AppError, errorResponses, Type, unauthorized, type App } from '@exchange/platform';
import { requireAuth, requireFreshMfa, STAFF_ROLES } from '@exchange/auth-client';
import { withTransaction } from '@exchange/db';
import { audit, clientIp } from '../audit.ts';
import { confirmPassword } from '../reauth.ts';
import { normaliseEmail, USER_COLUMNS, userView, type Ctx, type UserRow } from '../context.ts';
import { useRecoveryCode, verifyUserTotp } from '../mfa.ts';
import { passwordProblems } from '../passwords.ts';
import { revokeSession, rotateRefreshToken, startSession } from '../sessions.ts';
import { revokeUserApiKeys } from './apikeys.ts';
import { admitLogin, admitMfaCode, loginSucceeded, powChallenge, type Admission } from '../login-guard.ts';
import { LoginNewDeviceV1, UserRegisteredV1 } from '@exchange/contracts/auth';
import { emit, requestContext } from '../email.ts';
import { bearer, Email, Password, RecoveryCode, TokenPair, TotpCode, UserView } from './schemas.ts';

const tags = ['auth'];

export function publicRoutes(app: App, ctx: Ctx): void {
  const preverified = new Set(
    ctx.config.EMAIL_PREVERIFIED.split(',')
      .map((e) => normaliseEmail(e))
      .filter(Boolean),
  );
  app.get(
    '/.well-known/jwks.json',
    {
      schema: {
        tags,
        summary: 'Public keys verifying access tokens (RS256), by kid',
        response: { 200: Type.Object({ keys: Type.Array(Type.Record(Type.String(), Type.Unknown())) }) },
      },
    },
    async (_req, reply) => {
      reply.header('cache-control', 'public, max-age=60');
      return ctx.keys.publicJwks();
    },
  );

  app.post(
    '/api/v1/auth/register',
    {
      schema: {
        tags,
        summary: 'Create an account',
        description:
          'Always answers 202 with the same body, whether or not the email is already registered, so registration ' +
          'cannot be used to find out which emails have accounts. Log in afterwards.',
        body: Type.Object({ email: Email, password: Password }, { additionalProperties: false }),
        response: {
          202: Type.Object({ status: Type.Literal('accepted'), message: Type.String() }),
          ...errorResponses(400, 429),
        },
      },
    },
    async (req, reply) => {
      const email = normaliseEmail(req.body.email);
      const problems = passwordProblems(req.body.password, email);
      if (problems.length)
        throw new AppError(400, 'WEAK_PASSWORD', `password ${problems.join('; ')}`, { details: { problems } });
      const hash = await ctx.passwords.hash(req.body.password);
      await withTransaction(ctx.pool, async (c) => {
        const { rows } = await c.query<{ id: string }>(
          `INSERT INTO auth.users (email, password_hash) VALUES ($1, $2) ON CONFLICT (email) DO NOTHING RETURNING id`,
          [email, hash],
        );
        const id = rows[0]?.id;
        if (!id) {
          await audit(c, req, { action: 'auth.register_duplicate', details: { email } });
          return;
        }
        await audit(c, req, { action: 'auth.register', actorId: id, targetId: id });
        if (preverified.has(email)) {
          await c.query('UPDATE auth.users SET email_verified_at = now() WHERE id = $1', [id]);
          return;
        }
        // The welcome mail carries the verification link; it is sent after commit by the notification service.
        const t = await ctx.emailTokens.issue(c, id, 'verify_email', ctx.config.EMAIL_VERIFICATION_TTL_SECONDS);
        await emit(
          c,
          UserRegisteredV1,
          {
            userId: id,
            email,
            verificationToken: t.token,
            expiresAt: t.expiresAt.toISOString(),
            context: requestContext(req),
          },
          req,
        );
      });
      return reply
        .status(202)
        .send({ status: 'accepted', message: 'if the email was not registered yet, the account now exists; log in' });
    },
  );

  app.post(
    '/api/v1/auth/login',
    {
      schema: {
        tags,
        summary: 'Log in; returns an access token and a refresh token',
        description:
          'Wrong email and wrong password give the same 401 INVALID_CREDENTIALS. Repeated failures per account and per ' +
          'IP back off (429 LOGIN_THROTTLED with Retry-After) and then lock (429 LOGIN_LOCKED). With 2FA on, a correct ' +
          'password without `totpCode`/`recoveryCode` gives 401 MFA_REQUIRED; send the login again with the code.',
        body: Type.Object(
          {
            email: Email,
            password: Password,
            totpCode: Type.Optional(TotpCode),
            recoveryCode: Type.Optional(RecoveryCode),
            proofOfWork: Type.Optional(
              Type.String({
                maxLength: 4096,
                description:
                  'base64 JSON {challenge, solution} (ALTCHA v2) solving the challenge of a 429 PROOF_OF_WORK_REQUIRED',
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Intersect([
            TokenPair,
            Type.Object({
              user: UserView,
              mfaEnrolmentRequired: Type.Optional(
                Type.Boolean({
                  description:
                    'true for a support/admin account without 2FA: no staff route works until 2FA is enrolled ' +
                    '(2fa/setup, 2fa/verify); the session works for everything else',
                }),
              ),
            }),
          ]),
          ...errorResponses(400, 401, 403, 429),
        },
      },
    },
    async (req) => login(ctx, req, req.body),
  );

  app.post(
    '/api/v1/auth/login/challenge',
    {
      schema: {
        tags,
        summary: 'A proof-of-work challenge for logging in to an account that sees many failed logins',
        description:
          'Solve it (altcha-lib `solveChallenge`, SHA-256) and send base64(JSON {challenge, solution}) as ' +
          '`proofOfWork` with the login. A 429 PROOF_OF_WORK_REQUIRED carries one too. Each solution opens one attempt.',
        body: Type.Object({ email: Email }, { additionalProperties: false }),
        response: {
          200: Type.Object({ challenge: Type.Record(Type.String(), Type.Unknown()) }),
          ...errorResponses(400),
        },
      },
    },
    async (req) => ({ challenge: (await powChallenge(ctx, normaliseEmail(req.body.email))) as never }),
  );

  app.post(
    '/api/v1/auth/refresh',
    {
      schema: {
        tags,
        summary: 'Exchange a refresh token for a new pair (the old refresh token is spent)',
        description: 'Reusing a spent refresh token revokes the whole session (401 REFRESH_TOKEN_REUSED).',
        body: Type.Object(
          { refreshToken: Type.String({ minLength: 10, maxLength: 200 }) },
          { additionalProperties: false },
        ),
        response: { 200: TokenPair, ...errorResponses(400, 401) },
      },
    },
    async (req) => rotateRefreshToken(ctx, req.body.refreshToken, req),
  );

  app.post(
    '/api/v1/auth/logout',
    {
      onRequest: requireAuth,
      schema: {
        tags,
        summary: 'Revoke the current session (its refresh tokens and, within seconds everywhere, its access tokens)',
        security: bearer,
        response: { 204: Type.Null(), ...errorResponses(401) },
      },
    },
    async (req, reply) => {
      const p = req.principal!;
      if (p.sessionId) {
        await revokeSession(ctx.pool, p.sessionId, 'logout');
        await audit(ctx.pool, req, {
          action: 'auth.logout',
          actorId: p.id,
          targetId: p.id,
          details: { sessionId: p.sessionId },
        });
      }
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/api/v1/auth/password',
    {
      onRequest: [requireAuth, requireFreshMfa(ctx.config.MFA_FRESH_SECONDS)],
      schema: {
        tags,
        summary:
          'Change your password (needs the current one, and a fresh 2FA check when 2FA is on); every other session is revoked',
        security: bearer,
        body: Type.Object({ currentPassword: Password, newPassword: Password }, { additionalProperties: false }),
        response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 429) },
      },
    },
    async (req, reply) => {
      const p = req.principal!;
      const { rows } = await ctx.pool.query<UserRow>(`SELECT ${USER_COLUMNS} FROM auth.users WHERE id = $1`, [p.id]);
      const user = rows[0];
      if (!user) throw unauthorized('UNAUTHENTICATED', 'user no longer exists');
      await confirmPassword(ctx, req, user, req.body.currentPassword, {
        action: 'auth.password_change_failed',
        message: 'current password is wrong',
      });
      const problems = passwordProblems(req.body.newPassword, user.email);
      if (problems.length)
        throw new AppError(400, 'WEAK_PASSWORD', `password ${problems.join('; ')}`, { details: { problems } });
      const hash = await ctx.passwords.hash(req.body.newPassword);
      await withTransaction(ctx.pool, async (c) => {
        await c.query('UPDATE auth.users SET password_hash = $2, updated_at = now() WHERE id = $1', [user.id, hash]);
        const r = await c.query(
          `UPDATE auth.sessions SET revoked_at = clock_timestamp(), revoked_reason = 'password_changed'
            WHERE user_id = $1 AND revoked_at IS NULL AND id IS DISTINCT FROM $2::uuid`,
          [user.id, p.sessionId ?? null],
        );
        const keys = await revokeUserApiKeys(c, user.id, 'password_changed');
        await audit(c, req, {
          action: 'auth.password_changed',
          actorId: user.id,
          targetId: user.id,
          details: { otherSessionsRevoked: r.rowCount ?? 0, apiKeysRevoked: keys },
        });
      });
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/api/v1/auth/me',
    {
      onRequest: requireAuth,
      schema: {
        tags,
        summary: 'The calling user',
        security: bearer,
        response: { 200: UserView, ...errorResponses(401) },
      },
    },
    async (req) => {
      const { rows } = await ctx.pool.query<UserRow>(`SELECT ${USER_COLUMNS} FROM auth.users WHERE id = $1`, [
        req.principal!.id,
      ]);
      if (!rows[0]) throw unauthorized('UNAUTHENTICATED', 'user no longer exists');
      return userView(rows[0]);
    },
  );
}

async function login(
  ctx: Ctx,
  req: FastifyRequest,
  body: { email: string; password: string; totpCode?: string; recoveryCode?: string; proofOfWork?: string },
) {
  const email = normaliseEmail(body.email);
  const ip = clientIp(req) ?? 'unknown';
  // Counted and judged before the password is touched, so a refused attempt says nothing about it.
  const admitted = await admitLogin(ctx, req, email, ip, body.proofOfWork);
  const { rows } = await ctx.pool.query<UserRow>(`SELECT ${USER_COLUMNS} FROM auth.users WHERE email = $1`, [email]);
  const user = rows[0];
  const ok = await ctx.passwords.verify(user?.password_hash ?? null, body.password);
  if (!user || !ok) {
    await fail(ctx, req, email, admitted, user ? 'bad_password' : 'unknown_account', user?.id);
    throw unauthorized('INVALID_CREDENTIALS', 'email or password is wrong');
  }
  if (user.locked_at !== null) {
    ctx.metrics.loginFailures.inc({ reason: 'account_locked' });
    await audit(ctx.pool, req, {
      action: 'auth.login_failed',
      actorId: user.id,
      targetId: user.id,
      details: { reason: 'account_locked' },
    });
    throw new AppError(403, 'ACCOUNT_LOCKED', 'this account is locked; contact support');
  }
  let mfaAt: Date | null = null;
  if (user.totp_enabled_at !== null) {
    if (body.totpCode === undefined && body.recoveryCode === undefined) {
      throw new AppError(
        401,
        'MFA_REQUIRED',
        'two-factor code required: send the login again with totpCode or recoveryCode',
        {
          details: { methods: ['totp', 'recovery_code'] },
        },
      );
    }
    const codeBudget = await admitMfaCode(ctx, user.id, undefined);
    const passed =
      body.totpCode !== undefined
        ? await verifyUserTotp(ctx, ctx.pool, user, body.totpCode)
        : await useRecoveryCode(ctx.pool, user.id, body.recoveryCode!);
    if (passed) await codeBudget.succeeded();
    if (!passed) {
      await fail(ctx, req, email, admitted, 'mfa_invalid', user.id);
      throw unauthorized('INVALID_MFA_CODE', 'the two-factor code is wrong or already used');
    }
    if (body.recoveryCode !== undefined) {
      await audit(ctx.pool, req, { action: 'auth.recovery_code_used', actorId: user.id, targetId: user.id });
    }
    mfaAt = new Date();
  }
  await loginSucceeded(ctx, email, ip);
  if (ctx.passwords.needsRehash(user.password_hash)) {
    await ctx.pool.query('UPDATE auth.users SET password_hash = $2, updated_at = now() WHERE id = $1', [
      user.id,
      await ctx.passwords.hash(body.password),
    ]);
  }
  const pair = await startSession(ctx, user, req, mfaAt);
  await noticeNewDevice(ctx, req, user, pair.sessionId);
  ctx.metrics.logins.inc({ mfa: String(mfaAt !== null) });
  ctx.metrics.tokensIssued.inc({ kind: 'login' });
  await audit(ctx.pool, req, {
    action: 'auth.login',
    actorId: user.id,
    targetId: user.id,
    details: { sessionId: pair.sessionId, mfa: mfaAt !== null },
  });
  const staffWithoutMfa = user.totp_enabled_at === null && user.roles.some((r) => STAFF_ROLES.includes(r));
  return { ...pair, user: userView(user), ...(staffWithoutMfa ? { mfaEnrolmentRequired: true } : {}) };
}

/**
 * A login from an (IP, user agent) pair none of the user's earlier sessions had publishes login.new_device (the mail
 * says when, from where, with what). The very first login of an account is not "new": it is the registration device.
 */
async function noticeNewDevice(ctx: Ctx, req: FastifyRequest, user: UserRow, sessionId: string): Promise<void> {
  const c = requestContext(req);
  const { rows } = await ctx.pool.query<{ earlier: boolean; same: boolean }>(
    `SELECT count(*) > 0 AS earlier,
            coalesce(bool_or(ip IS NOT DISTINCT FROM $3::inet AND user_agent IS NOT DISTINCT FROM $4), false) AS same
       FROM auth.sessions WHERE user_id = $1 AND id <> $2`,
    [user.id, sessionId, c.ip, c.userAgent],
  );
  if (!rows[0]?.earlier || rows[0].same) return;
  await emit(ctx.pool, LoginNewDeviceV1, { userId: user.id, email: user.email, sessionId, context: c }, req);
}

async function fail(ctx: Ctx, req: FastifyRequest, email: string, a: Admission, reason: string, userId?: string) {
  ctx.metrics.loginFailures.inc({ reason });
  const locked = a.clientFailures === ctx.accountLimits.lock || a.ipFailures === ctx.ipLimits.lock;
  if (locked) ctx.metrics.securityEvents.inc({ event: 'login_lockout' });
  await audit(ctx.pool, req, {
    action: 'auth.login_failed',
    actorId: userId ?? null,
    targetId: userId ?? null,
    details: {
      email,
      reason,
      accountFailures: a.accountFailures,
      clientFailures: a.clientFailures,
      ipFailures: a.ipFailures,
      ...(locked ? { lockedOut: true } : {}),
    },
  });
}
