import { randomBytes } from 'node:crypto';
import { conflict, errorResponses, notFound, Type, type App } from '@exchange/platform';
import { requireAuth, requireFreshMfa } from '@exchange/auth-client';
import { audit } from '../audit.ts';
import type { Ctx } from '../context.ts';
import { sha256hex } from '../crypto.ts';
import { bearer, Scope } from './schemas.ts';

const tags = ['api-keys'];
const MAX_KEYS = 20;

const ApiKeyView = Type.Object({
  id: Type.String({ format: 'uuid' }),
  keyPrefix: Type.String({ description: 'First characters of the key id' }),
  label: Type.String(),
  scopes: Type.Array(Scope),
  createdAt: Type.String({ format: 'date-time' }),
  lastUsedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

interface KeyRow {
  id: string;
  key_prefix: string;
  label: string;
  scopes: Array<'read' | 'trade' | 'withdraw'>;
  created_at: Date;
  last_used_at: Date | null;
}
const view = (r: KeyRow) => ({
  id: r.id,
  keyPrefix: r.key_prefix,
  label: r.label,
  scopes: r.scopes,
  createdAt: r.created_at.toISOString(),
  lastUsedAt: r.last_used_at?.toISOString() ?? null,
});

export function apiKeyRoutes(app: App, ctx: Ctx): void {
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
      const { rows } = await ctx.pool.query<KeyRow>(
        `SELECT id, key_prefix, label, scopes, created_at, last_used_at FROM auth.api_keys
          WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC`,
        [req.principal!.id],
      );
      return { apiKeys: rows.map(view) };
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
          'HMAC-SHA256(secret, timestamp + METHOD + path-with-query + raw body). Requests outside ±30 s or replayed are rejected.',
        security: bearer,
        body: Type.Object(
          {
            label: Type.String({ minLength: 1, maxLength: 100 }),
            scopes: Type.Array(Scope, { minItems: 1, maxItems: 3, uniqueItems: true }),
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
      const userId = req.principal!.id;
      const { rows: count } = await ctx.pool.query<{ n: string }>(
        'SELECT count(*) AS n FROM auth.api_keys WHERE user_id = $1 AND revoked_at IS NULL',
        [userId],
      );
      if (Number(count[0]!.n) >= MAX_KEYS) throw conflict('TOO_MANY_API_KEYS', `at most ${MAX_KEYS} active API keys`);
      const apiKey = `ak_${randomBytes(16).toString('hex')}`;
      const secret = randomBytes(32).toString('base64url');
      const keyIdHash = sha256hex(apiKey);
      const { rows } = await ctx.pool.query<KeyRow>(
        `INSERT INTO auth.api_keys (user_id, key_id_hash, key_prefix, secret_enc, scopes, label)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, key_prefix, label, scopes, created_at, last_used_at`,
        [userId, keyIdHash, apiKey.slice(0, 10), ctx.sealer.seal(secret, keyIdHash), req.body.scopes, req.body.label],
      );
      const row = rows[0]!;
      await audit(ctx.pool, req, {
        action: 'auth.api_key_created',
        actorId: userId,
        targetId: userId,
        details: { apiKeyId: row.id, scopes: req.body.scopes, label: req.body.label },
      });
      return reply.status(201).send({ ...view(row), apiKey, secret });
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
      const userId = req.principal!.id;
      const r = await ctx.pool.query(
        'UPDATE auth.api_keys SET revoked_at = now() WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL',
        [req.params.id, userId],
      );
      if (r.rowCount !== 1) throw notFound('API_KEY_NOT_FOUND', 'no such active API key');
      await audit(ctx.pool, req, {
        action: 'auth.api_key_revoked',
        actorId: userId,
        targetId: userId,
        details: { apiKeyId: req.params.id },
      });
      return reply.status(204).send(null);
    },
  );
}
