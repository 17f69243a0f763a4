import { conflict, errorResponses, Type, unauthorized, type App } from '@exchange/platform';
import { requireAuth, requireFreshMfa, STAFF_ROLES } from '@exchange/auth-client';
import { withTransaction } from '@exchange/db';
import { audit } from '../audit.ts';
import { confirmPassword } from '../reauth.ts';
import { USER_COLUMNS, type Ctx, type UserRow } from '../context.ts';
import {
  checkTotp,
  newRecoveryCodes,
  newTotpSecret,
  otpauthUri,
  recoveryCodeHash,
  totpAad,
  useRecoveryCode,
  verifyUserTotp,
} from '../mfa.ts';
import { admitMfaCode } from '../login-guard.ts';
import { accessTokenFor } from '../sessions.ts';
import { revokeUserApiKeys } from './apikeys.ts';
import { AccessToken, bearer, Password, RecoveryCode, TotpCode } from './schemas.ts';
import { MfaDisabledV1, MfaEnabledV1 } from '@exchange/contracts/auth';
import { emit, requestContext } from '../email.ts';

const tags = ['2fa'];

export function mfaRoutes(app: App, ctx: Ctx): void {
  const loadUser = async (id: string) => {
    const { rows } = await ctx.pool.query<UserRow>(`SELECT ${USER_COLUMNS} FROM auth.users WHERE id = $1`, [id]);
    if (!rows[0]) throw unauthorized('UNAUTHENTICATED', 'user no longer exists');
    return rows[0];
  };

  app.post(
    '/api/v1/auth/2fa/setup',
    {
      onRequest: requireAuth,
      schema: {
        tags,
        summary: 'Start TOTP enrolment: returns a new secret and otpauth URI (2FA is on only after 2fa/verify)',
        description:
          'Needs the current password, so a stolen access token alone cannot enrol the thief’s authenticator and lock the owner out.',
        security: bearer,
        body: Type.Object({ password: Password }, { additionalProperties: false }),
        response: {
          200: Type.Object({ secret: Type.String(), otpauthUri: Type.String() }),
          ...errorResponses(400, 401, 409, 429),
        },
      },
    },
    async (req) => {
      const user = await loadUser(req.principal!.id);
      if (user.totp_enabled_at !== null) throw conflict('MFA_ALREADY_ENABLED', '2FA is already enabled');
      await confirmPassword(ctx, req, user, req.body.password, {
        action: 'auth.2fa_setup_failed',
        message: 'password is wrong',
      });
      const secret = newTotpSecret();
      await ctx.pool.query('UPDATE auth.users SET totp_pending_secret_enc = $2, updated_at = now() WHERE id = $1', [
        user.id,
        ctx.sealer.seal(secret, totpAad(user.id)),
      ]);
      await audit(ctx.pool, req, { action: 'auth.2fa_setup', actorId: user.id, targetId: user.id });
      return { secret, otpauthUri: otpauthUri(secret, user.email) };
    },
  );

  app.post(
    '/api/v1/auth/2fa/verify',
    {
      onRequest: requireAuth,
      schema: {
        tags,
        summary:
          'Confirm enrolment with a code: enables 2FA, revokes every other session, returns 10 single-use recovery codes (shown once) and a fresh access token',
        security: bearer,
        body: Type.Object({ totpCode: TotpCode }, { additionalProperties: false }),
        response: {
          200: Type.Intersect([AccessToken, Type.Object({ recoveryCodes: Type.Array(Type.String()) })]),
          ...errorResponses(400, 401, 409, 429),
        },
      },
    },
    async (req) => {
      const user = await loadUser(req.principal!.id);
      if (user.totp_enabled_at !== null) throw conflict('MFA_ALREADY_ENABLED', '2FA is already enabled');
      if (!user.totp_pending_secret_enc) throw conflict('MFA_SETUP_REQUIRED', 'call 2fa/setup first');
      const secret = ctx.sealer.open(user.totp_pending_secret_enc, totpAad(user.id));
      const budget = await admitMfaCode(ctx, user.id, req.principal!.sessionId);
      const step = await checkTotp(secret, req.body.totpCode);
      if (step === undefined) throw unauthorized('INVALID_MFA_CODE', 'the code is wrong');
      await budget.succeeded();
      const codes = newRecoveryCodes();
      const now = new Date();
      await withTransaction(ctx.pool, async (c) => {
        await c.query(
          `UPDATE auth.users SET totp_secret_enc = totp_pending_secret_enc, totp_pending_secret_enc = NULL,
             totp_enabled_at = $2, totp_last_step = $3, updated_at = now() WHERE id = $1`,
          [user.id, now, step],
        );
        await c.query('DELETE FROM auth.recovery_codes WHERE user_id = $1', [user.id]);
        for (const code of codes) {
          await c.query('INSERT INTO auth.recovery_codes (user_id, code_hash) VALUES ($1, $2)', [
            user.id,
            recoveryCodeHash(code),
          ]);
        }
        if (req.principal!.sessionId) {
          await c.query('UPDATE auth.sessions SET mfa_at = $2 WHERE id = $1', [req.principal!.sessionId, now]);
        }
        // Sessions opened before 2FA (perhaps by whoever made the owner turn it on) must not outlive it.
        const r = await c.query(
          `UPDATE auth.sessions SET revoked_at = clock_timestamp(), revoked_reason = '2fa_enabled'
            WHERE user_id = $1 AND revoked_at IS NULL AND id IS DISTINCT FROM $2::uuid`,
          [user.id, req.principal!.sessionId ?? null],
        );
        await audit(c, req, {
          action: 'auth.2fa_enabled',
          actorId: user.id,
          targetId: user.id,
          details: { otherSessionsRevoked: r.rowCount ?? 0 },
        });
        await emit(c, MfaEnabledV1, { userId: user.id, email: user.email, context: requestContext(req) }, req);
      });
      const access = await accessTokenFor(ctx, { ...user, totp_enabled_at: now }, req.principal!.sessionId!, now);
      ctx.metrics.tokensIssued.inc({ kind: 'mfa_enable' });
      return {
        accessToken: access.token,
        tokenType: 'Bearer' as const,
        expiresIn: access.expiresIn,
        mfaAt: Math.floor(now.getTime() / 1000),
        recoveryCodes: codes,
      };
    },
  );

  app.post(
    '/api/v1/auth/2fa/challenge',
    {
      onRequest: requireAuth,
      schema: {
        tags,
        summary:
          'Step-up: prove 2FA now and get an access token whose mfa_at is now (for withdrawals, API keys, admin actions)',
        security: bearer,
        body: Type.Object(
          { totpCode: Type.Optional(TotpCode), recoveryCode: Type.Optional(RecoveryCode) },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: { 200: AccessToken, ...errorResponses(400, 401, 409, 429) },
      },
    },
    async (req) => {
      const p = req.principal!;
      if (!p.sessionId) throw unauthorized('SESSION_REQUIRED', 'step-up needs a session token');
      const user = await loadUser(p.id);
      if (user.totp_enabled_at === null) throw conflict('MFA_NOT_ENABLED', '2FA is not enabled');
      const budget = await admitMfaCode(ctx, user.id, p.sessionId);
      const passed =
        req.body.totpCode !== undefined
          ? await verifyUserTotp(ctx, ctx.pool, user, req.body.totpCode)
          : await useRecoveryCode(ctx.pool, user.id, req.body.recoveryCode!);
      if (!passed) {
        await audit(ctx.pool, req, { action: 'auth.2fa_challenge_failed', actorId: user.id, targetId: user.id });
        throw unauthorized('INVALID_MFA_CODE', 'the two-factor code is wrong or already used');
      }
      await budget.succeeded();
      const now = new Date();
      await ctx.pool.query('UPDATE auth.sessions SET mfa_at = $2 WHERE id = $1', [p.sessionId, now]);
      await audit(ctx.pool, req, {
        action: 'auth.2fa_step_up',
        actorId: user.id,
        targetId: user.id,
        details: { sessionId: p.sessionId, method: req.body.totpCode !== undefined ? 'totp' : 'recovery_code' },
      });
      const access = await accessTokenFor(ctx, user, p.sessionId, now);
      ctx.metrics.tokensIssued.inc({ kind: 'step_up' });
      return {
        accessToken: access.token,
        tokenType: 'Bearer' as const,
        expiresIn: access.expiresIn,
        mfaAt: Math.floor(now.getTime() / 1000),
      };
    },
  );

  app.post(
    '/api/v1/auth/2fa/disable',
    {
      onRequest: [requireAuth, requireFreshMfa(ctx.config.MFA_FRESH_SECONDS)],
      schema: {
        tags,
        summary: 'Turn 2FA off (needs a fresh 2FA check); every other session is revoked',
        security: bearer,
        response: { 204: Type.Null(), ...errorResponses(401, 403, 409) },
      },
    },
    async (req, reply) => {
      const user = await loadUser(req.principal!.id);
      if (user.totp_enabled_at === null) throw conflict('MFA_NOT_ENABLED', '2FA is not enabled');
      if (user.roles.some((r) => STAFF_ROLES.includes(r)))
        throw conflict('MFA_REQUIRED_FOR_ROLE', 'support and admin accounts must keep 2FA on');
      await withTransaction(ctx.pool, async (c) => {
        await c.query(
          `UPDATE auth.users SET totp_secret_enc = NULL, totp_pending_secret_enc = NULL, totp_enabled_at = NULL,
             totp_last_step = NULL, updated_at = now() WHERE id = $1`,
          [user.id],
        );
        await c.query('DELETE FROM auth.recovery_codes WHERE user_id = $1', [user.id]);
        await c.query(
          `UPDATE auth.sessions SET revoked_at = clock_timestamp(), revoked_reason = '2fa_disabled'
            WHERE user_id = $1 AND revoked_at IS NULL AND id <> $2`,
          [user.id, req.principal!.sessionId ?? '00000000-0000-0000-0000-000000000000'],
        );
        const keys = await revokeUserApiKeys(c, user.id, '2fa_disabled');
        await audit(c, req, {
          action: 'auth.2fa_disabled',
          actorId: user.id,
          targetId: user.id,
          details: { apiKeysRevoked: keys },
        });
        await emit(c, MfaDisabledV1, { userId: user.id, email: user.email, context: requestContext(req) }, req);
      });
      return reply.status(204).send(null);
    },
  );
}
