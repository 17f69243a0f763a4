import { errorResponses, Type, type App } from '@exchange/platform';
import { requireAuth, requireFreshMfa } from '@exchange/auth-client';
import { activeKeysOf, type KeyRow } from '../api-keys/repository.ts';
import { createApiKey, MAX_KEY_LIFETIME_DAYS, revokeApiKey } from '../api-keys/service.ts';
import { securityLogOf } from '../audit/repository.ts';
import type { AuthContext } from '../context.ts';
import { bearer, Scope } from './schemas.ts';

const tags = ['api-keys'];

const ApiKeyView = Type.Object({
  id: Type.String({ format: 'uuid' }),
  keyPrefix: Type.String({ description: 'First characters of the key id' }),
  label: Type.String(),
  scopes: Type.Array(Scope),
  createdAt: Type.String({ format: 'date-time' }),
  lastUsedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  expiresAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  allowedIps: Type.Union([Type.Array(Type.String()), Type.Null()]),
});

const view = (r: KeyRow) => ({
  id: r.id,
  keyPrefix: r.key_prefix,
  label: r.label,
  scopes: r.scopes,
  createdAt: r.created_at.toISOString(),
  lastUsedAt: r.last_used_at?.toISOString() ?? null,
  expiresAt: r.expires_at?.toISOString() ?? null,
  allowedIps: r.allowed_ips,
});

export function registerApiKeyRoutes(app: App, ctx: AuthContext): void {
  app.get(
    '/api/v1/auth/api-keys',
    {
      onRequest: requireAuth,
      schema: {
        tags,
        summary: 'List your active API keys (secrets are never shown again)',
        security: bearer,
        response: { 200: Type.Object({ apiKeys: Type.Array(ApiKeyView) }), ...errorResponses(401) },
      },
    },
    async (req) => {
      return { apiKeys: (await activeKeysOf(ctx.pool, req.principal!.id)).map(view) };
    },
  );

  app.post(
    '/api/v1/auth/api-keys',
    {
      onRequest: [requireAuth, requireFreshMfa(ctx.config.MFA_FRESH_SECONDS)],
      schema: {
        tags,
        summary: 'Create an API key (needs a fresh 2FA check when 2FA is on); the secret is returned once',
        description:
          'Sign requests with headers X-API-Key (apiKey), X-API-Timestamp (epoch ms) and X-API-Signature = hex ' +
          'HMAC-SHA256(secret, timestamp + METHOD + path-with-query + raw body). Requests outside ±30 s or replayed are rejected. ' +
          'A `withdraw` key needs 2FA enrolled, a fresh 2FA check and an IP allow-list. Keys stop working at ' +
          '`expiresAt`, and all of a user’s keys are revoked by a password change, turning 2FA off, or an operator lock.',
        security: bearer,
        body: Type.Object(
          {
            label: Type.String({ minLength: 1, maxLength: 100 }),
            scopes: Type.Array(Scope, { minItems: 1, maxItems: 3, uniqueItems: true }),
            allowedIps: Type.Optional(
              Type.Array(Type.String({ maxLength: 49 }), {
                minItems: 1,
                maxItems: 20,
                uniqueItems: true,
                description: 'IP addresses or CIDR blocks the key may be used from (required for withdraw scope)',
              }),
            ),
            expiresAt: Type.Optional(
              Type.String({ format: 'date-time', description: `at most ${MAX_KEY_LIFETIME_DAYS} days ahead` }),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Intersect([ApiKeyView, Type.Object({ apiKey: Type.String(), secret: Type.String() })]),
          ...errorResponses(400, 401, 403, 409),
        },
      },
    },
    async (req, reply) => {
      const { row, apiKey, secret } = await createApiKey(ctx, req, req.principal!, req.body);
      return reply.status(201).send({ ...view(row), apiKey, secret });
    },
  );

  app.get(
    '/api/v1/auth/security-log',
    {
      onRequest: requireAuth,
      schema: {
        tags,
        summary: 'Your security log: logins, failed logins, 2FA and password changes, API keys created and revoked',
        security: bearer,
        querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 100, default: 50 }) }),
        response: {
          200: Type.Object({
            events: Type.Array(
              Type.Object({
                at: Type.String({ format: 'date-time' }),
                action: Type.String(),
                ip: Type.Union([Type.String(), Type.Null()]),
                userAgent: Type.Union([Type.String(), Type.Null()]),
                details: Type.Record(Type.String(), Type.Unknown()),
              }),
            ),
          }),
          ...errorResponses(401),
        },
      },
    },
    async (req) => {
      const rows = await securityLogOf(ctx.pool, req.principal!.id, req.query.limit);
      return {
        events: rows.map((r) => ({
          at: r.at.toISOString(),
          action: r.action,
          ip: r.ip,
          userAgent: r.user_agent,
          details: r.details,
        })),
      };
    },
  );

  app.delete(
    '/api/v1/auth/api-keys/:id',
    {
      onRequest: requireAuth,
      schema: {
        tags,
        summary: 'Revoke an API key',
        security: bearer,
        params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
        response: { 204: Type.Null(), ...errorResponses(400, 401, 404) },
      },
    },
    async (req, reply) => {
      await revokeApiKey(ctx, req, req.principal!.id, req.params.id);
      return reply.status(204).send(null);
    },
  );
}
