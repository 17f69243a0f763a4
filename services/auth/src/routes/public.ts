/** Routes without credentials: signing keys, registration, login, token refresh. */
import { errorResponses, Type, type App } from '@exchange/platform';
import { normaliseEmail, type AuthContext } from '../context.ts';
import { powChallenge } from '../login-security/login-guard.ts';
import { rotateRefreshToken } from '../sessions/service.ts';
import { login, preverifiedEmails, registerUser } from '../users/service.ts';
import { Email, Password, RecoveryCode, TokenPair, TotpCode, UserView } from './schemas.ts';

const tags = ['auth'];

export function registerPublicRoutes(app: App, ctx: AuthContext): void {
  const preverified = preverifiedEmails(ctx.config.EMAIL_PREVERIFIED);
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
      await registerUser(ctx, req, req.body, preverified);
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
}
