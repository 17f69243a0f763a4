import { AppError, errorResponses, Type, type App } from '@exchange/platform';
import { API_KEY_WINDOW_MS, apiKeySignature, requireInternalCaller, safeEqual } from '@exchange/auth-client';
import { audit } from '../audit.ts';
import type { Ctx } from '../context.ts';
import { sha256hex } from '../crypto.ts';
import { Scope } from './schemas.ts';

const tags = ['internal'];

export function internalRoutes(app: App, ctx: Ctx): void {
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
    async (req) => {
      const { rows } = await ctx.pool.query<{ sid: string; until: number; as_of: string }>(
        `SELECT id AS sid, (extract(epoch FROM revoked_at)::bigint + $2::int)::int AS until,
                (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS as_of
           FROM auth.sessions
          WHERE revoked_at > greatest(to_timestamp($1::bigint / 1000.0), now() - make_interval(secs => $2::int + 10))`,
        [req.query.since ?? 0, ctx.config.ACCESS_TOKEN_TTL_SECONDS],
      );
      let asOf = rows[0] ? Number(rows[0].as_of) : undefined;
      if (asOf === undefined) {
        const r = await ctx.pool.query<{ as_of: string }>(
          `SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS as_of`,
        );
        asOf = Number(r.rows[0]!.as_of);
      }
      return {
        asOf,
        sessions: rows.map((r) => ({ sid: r.sid, until: r.until })),
        revokedKids: await ctx.keys.revokedKids(),
      };
    },
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
      const { rows } = await ctx.pool.query<{ verified: boolean }>(
        'SELECT email_verified_at IS NOT NULL AS verified FROM auth.users WHERE id = $1',
        [req.params.id],
      );
      if (!rows[0]) throw new AppError(404, 'USER_NOT_FOUND', 'no such user');
      return { emailVerified: rows[0].verified };
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
      const { rows } = await ctx.pool.query<{ id: string; email: string; verified: boolean }>(
        'SELECT id, email, email_verified_at IS NOT NULL AS verified FROM auth.users WHERE id = $1',
        [req.params.id],
      );
      const u = rows[0];
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
    async (req) => {
      const b = req.body;
      const reject = (code: string, message: string) => {
        ctx.metrics.apiKeyVerifications.inc({ result: code.toLowerCase() });
        return new AppError(401, code, message);
      };
      const keyIdHash = sha256hex(b.apiKey);
      const { rows } = await ctx.pool.query<{
        id: string;
        user_id: string;
        secret_enc: string;
        scopes: Array<'read' | 'trade' | 'withdraw'>;
        locked: boolean;
        mfa: boolean;
        verified: boolean;
        stale: boolean;
        ip_allowed: boolean;
      }>(
        `SELECT k.id, k.user_id, k.secret_enc, k.scopes, u.locked_at IS NOT NULL AS locked, u.totp_enabled_at IS NOT NULL AS mfa,
                u.email_verified_at IS NOT NULL AS verified,
                (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute') AS stale,
                (k.allowed_ips IS NULL OR
                  (auth.inet_or_null($2) IS NOT NULL AND auth.inet_or_null($2) <<= ANY (k.allowed_ips))) AS ip_allowed
           FROM auth.api_keys k JOIN auth.users u ON u.id = k.user_id
          WHERE k.key_id_hash = $1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())`,
        [keyIdHash, b.clientIp ?? null],
      );
      const key = rows[0];
      if (!key || key.locked)
        throw reject('INVALID_API_KEY', 'API key not recognised, revoked, expired, or its account is locked');
      if (!key.ip_allowed) throw reject('API_KEY_IP_NOT_ALLOWED', 'this API key is not allowed from this IP address');
      if (!/^\d{1,16}$/.test(b.timestamp) || Math.abs(Date.now() - Number(b.timestamp)) > API_KEY_WINDOW_MS) {
        throw reject(
          'API_TIMESTAMP_OUT_OF_WINDOW',
          'X-API-Timestamp (epoch ms) must be within 30 s of the server clock',
        );
      }
      const secret = ctx.sealer.open(key.secret_enc, keyIdHash);
      const expected = apiKeySignature(secret, {
        timestamp: b.timestamp,
        method: b.method,
        path: b.path,
        body: Buffer.from(b.bodyBase64, 'base64'),
      });
      if (!safeEqual(expected, b.signature.toLowerCase()))
        throw reject('INVALID_API_SIGNATURE', 'signature does not match');
      // Replay: each signature is accepted once while its timestamp is inside the window (+ margin).
      const fresh = await ctx.pool.query(
        `INSERT INTO auth.api_key_signatures (signature_hash, expires_at)
         VALUES ($1, now() + make_interval(secs => $2)) ON CONFLICT DO NOTHING`,
        [sha256hex(`${keyIdHash}:${expected}`), (2 * API_KEY_WINDOW_MS) / 1000 + 5],
      );
      if (fresh.rowCount !== 1) {
        ctx.metrics.securityEvents.inc({ event: 'api_signature_replay' });
        await audit(ctx.pool, req, {
          action: 'security.api_signature_replay',
          targetId: key.user_id,
          details: { apiKeyId: key.id, method: b.method, path: b.path.slice(0, 200) },
        });
        throw reject('API_SIGNATURE_REPLAYED', 'this signed request was already used');
      }
      if (key.stale) await ctx.pool.query('UPDATE auth.api_keys SET last_used_at = now() WHERE id = $1', [key.id]);
      ctx.metrics.apiKeyVerifications.inc({ result: 'ok' });
      return {
        userId: key.user_id,
        keyId: key.id,
        scopes: key.scopes,
        mfaEnabled: key.mfa,
        emailVerified: key.verified,
      };
    },
  );
}
