/** A signed-in user's own account: log out, change the password, who am I. */
import { errorResponses, Type, type App } from '@exchange/platform';
import { requireAuth, requireFreshMfa } from '@exchange/auth-client';
import { userView, type AuthContext } from '../context.ts';
import { logout } from '../sessions/service.ts';
import { changePassword, currentUser } from '../users/service.ts';
import { bearer, Password, UserView } from './schemas.ts';

const tags = ['auth'];

export function registerUserRoutes(app: App, ctx: AuthContext): void {
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
      await logout(ctx, req, req.principal!);
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
      await changePassword(ctx, req, req.principal!, req.body);
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
    async (req) => userView(await currentUser(ctx, req.principal!.id)),
  );
}
