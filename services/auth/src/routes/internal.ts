import { AppError, errorResponses, Type, type App } from '@exchange/platform';
import { requireInternalCaller } from '@exchange/auth-client';
import { verifySignedRequest } from '../api-keys/service.ts';
import type { AuthContext } from '../context.ts';
import { revocations } from '../sessions/service.ts';
import { contactOf, emailVerifiedOf } from '../users/repository.ts';
import { Scope } from './schemas.ts';

const tags = ['internal'];

export function registerInternalRoutes(app: App, ctx: AuthContext): void {
  // every service that verifies tokens or API keys through @exchange/auth-client
  const requireInternal = requireInternalCaller('wallet', 'order', 'payment-processor');
  app.get(
    '/internal/sessions/revoked',
    {
      onRequest: requireInternal,
      schema: {
        tags,
        summary:
          'Sessions revoked recently enough that some of their access tokens may be unexpired (polled by auth-client)',
        querystring: Type.Object({ since: Type.Optional(Type.Integer({ minimum: 0, description: 'epoch ms' })) }),
        response: {
          200: Type.Object({
            asOf: Type.Integer({ description: 'epoch ms (database clock); pass back as since' }),
            sessions: Type.Array(Type.Object({ sid: Type.String(), until: Type.Integer({ description: 'epoch s' }) })),
            revokedKids: Type.Array(Type.String(), {
              description:
                'signing keys revoked in an emergency: tokens they signed are refused (always the full list)',
            }),
          }),
          ...errorResponses(400, 401),
        },
      },
    },
    async (req) => revocations(ctx, req.query.since ?? 0),
  );

  const UserParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
  app.get(
    '/internal/users/:id/email-verified',
    {
      onRequest: requireInternal,
      schema: {
        tags,
        summary: 'Whether the user verified their email now (auth-client requireVerifiedEmail, when a token says not)',
        params: UserParams,
        response: {
          200: Type.Object({ emailVerified: Type.Boolean() }),
          ...errorResponses(400, 401, 404),
        },
      },
    },
    async (req) => {
      const verified = await emailVerifiedOf(ctx.pool, req.params.id);
      if (verified === undefined) throw new AppError(404, 'USER_NOT_FOUND', 'no such user');
      return { emailVerified: verified };
    },
  );

  app.get(
    '/internal/users/:id/contact',
    {
      onRequest: requireInternalCaller('notification'),
      schema: {
        tags,
        summary: 'Where to mail a user (the notification service, for events that carry only a user id)',
        params: UserParams,
        response: {
          200: Type.Object({
            userId: Type.String({ format: 'uuid' }),
            email: Type.String(),
            emailVerified: Type.Boolean(),
          }),
          ...errorResponses(400, 401, 404),
        },
      },
    },
    async (req) => {
      const u = await contactOf(ctx.pool, req.params.id);
      if (!u) throw new AppError(404, 'USER_NOT_FOUND', 'no such user');
      return { userId: u.id, email: u.email, emailVerified: u.verified };
    },
  );

  app.post(
    '/internal/api-keys/verify',
    {
      onRequest: requireInternal,
      schema: {
        tags,
        summary: 'Verify an API-key signed request (signature, ±30 s window, replay); used by auth-client',
        body: Type.Object(
          {
            apiKey: Type.String({ maxLength: 100 }),
            timestamp: Type.String({ maxLength: 20 }),
            signature: Type.String({ maxLength: 200 }),
            method: Type.String({ maxLength: 10 }),
            path: Type.String({ maxLength: 8192 }),
            bodyBase64: Type.String({ maxLength: 1_500_000 }),
            clientIp: Type.Optional(Type.String({ maxLength: 64, description: 'for the key’s IP allow-list' })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            userId: Type.String({ format: 'uuid' }),
            keyId: Type.String({ format: 'uuid' }),
            scopes: Type.Array(Scope),
            mfaEnabled: Type.Boolean(),
            emailVerified: Type.Boolean(),
          }),
          ...errorResponses(400, 401),
        },
      },
      bodyLimit: 2 * 1024 * 1024,
    },
    async (req) => verifySignedRequest(ctx, req, req.body),
  );
}
