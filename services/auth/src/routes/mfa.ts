import { errorResponses, Type, type App } from '@exchange/platform';
import { requireAuth, requireFreshMfa } from '@exchange/auth-client';
import type { AuthContext } from '../context.ts';
import { confirmTotp, disableMfa, startTotpSetup, stepUp } from '../mfa/service.ts';
import { AccessToken, bearer, Password, RecoveryCode, TotpCode } from './schemas.ts';

const tags = ['2fa'];

export function registerMfaRoutes(app: App, ctx: AuthContext): void {
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
    async (req) => startTotpSetup(ctx, req, req.principal!.id, req.body.password),
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
    async (req) => confirmTotp(ctx, req, req.principal!, req.body.totpCode),
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
    async (req) => stepUp(ctx, req, req.principal!, req.body),
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
      await disableMfa(ctx, req, req.principal!);
      return reply.status(204).send(null);
    },
  );
}
