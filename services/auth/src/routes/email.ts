import { errorResponses, Type, type App } from '@exchange/platform';
import { requireAuth } from '@exchange/auth-client';
import type { AuthContext } from '../context.ts';
import { confirmEmail, forgotPassword, resendVerification, resetPasswordWithToken } from '../email/service.ts';
import { bearer, Email, Password } from './schemas.ts';

const tags = ['auth'];
const EmailToken = Type.String({ minLength: 1, maxLength: 300, description: 'the token of the emailed link' });

export function registerEmailRoutes(app: App, ctx: AuthContext): void {
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
      await confirmEmail(ctx, req, req.body.token);
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
      await resendVerification(ctx, req, req.principal!.id);
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
      await forgotPassword(ctx, req, req.body.email);
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
      await resetPasswordWithToken(ctx, req, req.body.token, req.body.newPassword);
      return { reset: true as const };
    },
  );
}
