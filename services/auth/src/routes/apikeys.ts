import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { badRequest, conflict, errorResponses, forbidden, notFound, Type, type App } from '@exchange/platform';
import { requireAuth, requireFreshMfa } from '@exchange/auth-client';
import { audit, type Queryable } from '../audit.ts';
import type { Ctx } from '../context.ts';
import { sha256hex } from '../crypto.ts';
import { bearer, Scope } from './schemas.ts';
import { ApiKeyCreatedV1 } from '@exchange/contracts/auth';
import { emit, requestContext } from '../email.ts';

const tags = ['api-keys'];
const MAX_KEYS = 20;

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

interface KeyRow {
  id: string;
  key_prefix: string;
  label: string;
  scopes: Array<'read' | 'trade' | 'withdraw'>;
  created_at: Date;
  last_used_at: Date | null;
  expires_at: Date | null;
  allowed_ips: string[] | null;
}
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
const KEY_COLUMNS =
  'id, key_prefix, label, scopes, created_at, last_used_at, expires_at, allowed_ips::text[] AS allowed_ips';
const MAX_KEY_LIFETIME_DAYS = 365;

/** An IPv4/IPv6 address or CIDR block. */
function isCidr(v: string): boolean {
  const [addr, prefix, extra] = v.split('/');
  const family = isIP(addr ?? '');
  if (!family || extra !== undefined) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

/**
 * Every active key of a user stops working (password change, 2FA reset, operator lock): a key must not outlive the
 * credentials that created it.
 */
export async function revokeUserApiKeys(db: Queryable, userId: string, reason: string): Promise<number> {
  const r = await db.query(
    `UPDATE auth.api_keys SET revoked_at = now(), revoked_reason = $2 WHERE user_id = $1 AND revoked_at IS NULL`,
    [userId, reason],
  );
  return r.rowCount ?? 0;
}

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
        `SELECT ${KEY_COLUMNS} FROM auth.api_keys
          WHERE user_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
          ORDER BY created_at DESC`,
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
      const userId = req.principal!.id;
      const { scopes, allowedIps, expiresAt } = req.body;
      const owner = await ctx.pool.query<{ email: string; verified: boolean }>(
        'SELECT email, email_verified_at IS NOT NULL AS verified FROM auth.users WHERE id = $1',
        [userId],
      );
      if (scopes.includes('withdraw')) {
        // requireFreshMfa lets users without 2FA through; a key that can move money out must not be made so.
        if (!req.principal!.mfaEnabled)
          throw forbidden('MFA_ENROLMENT_REQUIRED', 'a withdraw-scoped key needs 2FA enrolled and a fresh 2FA check');
        if (!allowedIps) throw badRequest('IP_ALLOWLIST_REQUIRED', 'a withdraw-scoped key needs allowedIps');
        if (owner.rows[0]?.verified !== true) {
          throw forbidden('EMAIL_NOT_VERIFIED', 'a withdraw-scoped key needs a verified email address');
        }
      }
      const badIp = allowedIps?.find((v) => !isCidr(v));
      if (badIp !== undefined) throw badRequest('INVALID_IP', `not an IP address or CIDR block: ${badIp}`);
      if (expiresAt !== undefined) {
        const at = Date.parse(expiresAt);
        if (!(at > Date.now()) || at > Date.now() + MAX_KEY_LIFETIME_DAYS * 86_400_000)
          throw badRequest('INVALID_EXPIRY', `expiresAt must be in the next ${MAX_KEY_LIFETIME_DAYS} days`);
      }
      const { rows: count } = await ctx.pool.query<{ n: string }>(
        'SELECT count(*) AS n FROM auth.api_keys WHERE user_id = $1 AND revoked_at IS NULL',
        [userId],
      );
      if (Number(count[0]!.n) >= MAX_KEYS) throw conflict('TOO_MANY_API_KEYS', `at most ${MAX_KEYS} active API keys`);
      const apiKey = `ak_${randomBytes(16).toString('hex')}`;
      const secret = randomBytes(32).toString('base64url');
      const keyIdHash = sha256hex(apiKey);
      const { rows } = await ctx.pool.query<KeyRow>(
        `INSERT INTO auth.api_keys (user_id, key_id_hash, key_prefix, secret_enc, scopes, label, allowed_ips, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7::cidr[], $8) RETURNING ${KEY_COLUMNS}`,
        [
          userId,
          keyIdHash,
          apiKey.slice(0, 10),
          ctx.sealer.seal(secret, keyIdHash),
          scopes,
          req.body.label,
          allowedIps ?? null,
          expiresAt ?? null,
        ],
      );
      const row = rows[0]!;
      // shown in the owner's security log (GET /api/v1/auth/security-log) and mailed to the owner
      await emit(
        ctx.pool,
        ApiKeyCreatedV1,
        {
          userId,
          email: owner.rows[0]!.email,
          apiKeyId: row.id,
          label: req.body.label,
          scopes,
          context: requestContext(req),
        },
        req,
      );
      await audit(ctx.pool, req, {
        action: 'auth.api_key_created',
        actorId: userId,
        targetId: userId,
        details: {
          apiKeyId: row.id,
          scopes,
          label: req.body.label,
          allowedIps: row.allowed_ips,
          expiresAt: expiresAt ?? null,
        },
      });
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
      const { rows } = await ctx.pool.query<{
        at: Date;
        action: string;
        ip: string | null;
        user_agent: string | null;
        details: Record<string, unknown>;
      }>(
        `SELECT at, action, host(ip) AS ip, user_agent, details FROM auth.audit_log
          WHERE target_id = $1 AND (action LIKE 'auth.%' OR action LIKE 'admin.user_%' OR action LIKE 'security.%')
          ORDER BY id DESC LIMIT $2`,
        [req.principal!.id, req.query.limit],
      );
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
      const userId = req.principal!.id;
      const r = await ctx.pool.query(
        `UPDATE auth.api_keys SET revoked_at = now(), revoked_reason = 'user' WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL`,
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
