import { errorResponses, Type, type App } from '@exchange/platform';
import { requireAuth } from '@exchange/auth-client';
import type { AuthContext } from '../context.ts';
import { listActiveSessions } from '../sessions/repository.ts';
import { revokeOwnSession } from '../sessions/service.ts';
import { bearer } from './schemas.ts';

const Session = Type.Object({
  id: Type.String({ format: 'uuid' }),
  current: Type.Boolean(),
  createdAt: Type.String({ format: 'date-time' }),
  lastUsedAt: Type.String({ format: 'date-time' }),
  expiresAt: Type.String({ format: 'date-time' }),
  ip: Type.Union([Type.String(), Type.Null()]),
  userAgent: Type.Union([Type.String(), Type.Null()]),
  mfaAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

/** A user's own active sessions ("devices"), and revoking one of them. */
export function registerSessionRoutes(app: App, ctx: AuthContext): void {
  app.get(
    '/api/v1/auth/sessions',
    {
      onRequest: requireAuth,
      schema: {
        tags: ['auth'],
        summary: 'Your active sessions',
        security: bearer,
        response: { 200: Type.Object({ sessions: Type.Array(Session) }), ...errorResponses(401) },
      },
    },
    async (req) => {
      const rows = await listActiveSessions(ctx.pool, req.principal!.id);
      return {
        sessions: rows.map((r) => ({
          id: r.id,
          current: r.id === req.principal!.sessionId,
          createdAt: r.created_at.toISOString(),
          lastUsedAt: r.last_used_at.toISOString(),
          expiresAt: r.expires_at.toISOString(),
          ip: r.ip,
          userAgent: r.user_agent,
          mfaAt: r.mfa_at?.toISOString() ?? null,
        })),
      };
    },
  );

  app.delete(
    '/api/v1/auth/sessions/:id',
    {
      onRequest: requireAuth,
      schema: {
        tags: ['auth'],
        summary: 'Revoke one of your sessions (log out another device)',
        security: bearer,
        params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
        response: { 204: Type.Null(), ...errorResponses(400, 401, 404) },
      },
    },
    async (req, reply) => {
      await revokeOwnSession(ctx, req, req.principal!.id, req.params.id);
      return reply.status(204).send(null);
    },
  );
}
