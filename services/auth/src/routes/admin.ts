import type { FastifyRequest } from 'fastify';
import { errorResponses, Type, type App } from '@exchange/platform';
import { requireFreshMfa, requireRole } from '@exchange/auth-client';
import { auditPage } from '../audit/repository.ts';
import { listBackups, parseRecipients, runBackup } from '../backups/service.ts';
import { userView, type AuthContext } from '../context.ts';
import { revokeSigningKey } from '../signing-keys/service.ts';
import { lockAccount, replaceRoles, searchUsers, unlockAccount } from '../users/service.ts';
import { bearer, Role, UserView } from './schemas.ts';

const tags = ['admin'];
const UserId = Type.Object({ id: Type.String({ format: 'uuid' }) });

/**
 * Who may do what:
 *   GET  users, GET audit, POST lock      → admin or support
 *   POST unlock, PUT roles, backups       → admin
 *   signing keys (list, emergency revoke) → admin
 * Every write also needs a fresh 2FA check (when the caller has 2FA on) and is audited.
 */
export function registerAdminRoutes(app: App, ctx: AuthContext): void {
  const staff = requireRole('admin', 'support');
  const admin = requireRole('admin');
  const fresh = requireFreshMfa(ctx.config.MFA_FRESH_SECONDS);

  const actor = (req: FastifyRequest) => req.principal!.id;

  app.get(
    '/api/v1/admin/users',
    {
      onRequest: staff,
      schema: {
        tags,
        summary: 'Find users by email (exact, or prefix with a trailing *)',
        security: bearer,
        querystring: Type.Object({
          email: Type.String({ minLength: 1, maxLength: 254 }),
          limit: Type.Integer({ minimum: 1, maximum: 100, default: 50 }),
        }),
        response: { 200: Type.Object({ users: Type.Array(UserView) }), ...errorResponses(400, 401, 403) },
      },
    },
    async (req) => ({ users: (await searchUsers(ctx, req, actor(req), req.query)).map(userView) }),
  );

  app.post(
    '/api/v1/admin/users/:id/lock',
    {
      onRequest: [staff, fresh],
      // The body is optional; validate an empty object when none was sent.
      preValidation: async (req) => {
        if (req.body === undefined || req.body === null) req.body = {};
      },
      schema: {
        tags,
        summary: 'Lock an account: logins, refreshes and API keys stop; every session and API key is revoked',
        security: bearer,
        params: UserId,
        body: Type.Object({ reason: Type.Optional(Type.String({ maxLength: 500 })) }, { additionalProperties: false }),
        response: { 200: UserView, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (req) => userView(await lockAccount(ctx, req, req.principal!, req.params.id, req.body.reason ?? null)),
  );

  app.post(
    '/api/v1/admin/users/:id/unlock',
    {
      onRequest: [admin, fresh],
      schema: {
        tags,
        summary: 'Unlock an account (operator lock and automatic login lockout)',
        security: bearer,
        params: UserId,
        response: { 200: UserView, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => userView(await unlockAccount(ctx, req, actor(req), req.params.id)),
  );

  app.put(
    '/api/v1/admin/users/:id/roles',
    {
      onRequest: [admin, fresh],
      schema: {
        tags,
        summary:
          "Replace a user's roles ('user' is always kept); the user's sessions are revoked so new roles apply at once",
        security: bearer,
        params: UserId,
        body: Type.Object(
          { roles: Type.Array(Role, { maxItems: 3, uniqueItems: true }) },
          { additionalProperties: false },
        ),
        response: { 200: UserView, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (req) => userView(await replaceRoles(ctx, req, actor(req), req.params.id, req.body.roles)),
  );

  const AuditItem = Type.Object({
    id: Type.Integer(),
    at: Type.String({ format: 'date-time' }),
    actorId: Type.Union([Type.String(), Type.Null()]),
    targetId: Type.Union([Type.String(), Type.Null()]),
    action: Type.String(),
    ip: Type.Union([Type.String(), Type.Null()]),
    userAgent: Type.Union([Type.String(), Type.Null()]),
    requestId: Type.Union([Type.String(), Type.Null()]),
    details: Type.Record(Type.String(), Type.Unknown()),
  });
  app.get(
    '/api/v1/admin/audit',
    {
      onRequest: staff,
      schema: {
        tags,
        summary: 'Audit trail, newest first; page with `before` = the previous page’s nextBefore',
        security: bearer,
        querystring: Type.Object({
          limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
          before: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })),
          actorId: Type.Optional(Type.String({ format: 'uuid' })),
          targetId: Type.Optional(Type.String({ format: 'uuid' })),
          action: Type.Optional(Type.String({ maxLength: 100 })),
        }),
        response: {
          200: Type.Object({ items: Type.Array(AuditItem), nextBefore: Type.Union([Type.Integer(), Type.Null()]) }),
          ...errorResponses(400, 401, 403),
        },
      },
    },
    async (req) => {
      const q = req.query;
      const rows = await auditPage(ctx.pool, q);
      const page = rows.slice(0, q.limit);
      return {
        items: page.map((r) => ({
          id: Number(r.id),
          at: r.at.toISOString(),
          actorId: r.actor_id,
          targetId: r.target_id,
          action: r.action,
          ip: r.ip,
          userAgent: r.user_agent,
          requestId: r.request_id,
          details: r.details,
        })),
        nextBefore: rows.length > q.limit ? Number(page[page.length - 1]!.id) : null,
      };
    },
  );

  const SigningKey = Type.Object({
    kid: Type.String(),
    createdAt: Type.String({ format: 'date-time' }),
    activatesAt: Type.String({ format: 'date-time' }),
    retiredAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    revokedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  });
  const iso = (d: Date | null) => (d ? d.toISOString() : null);
  app.get(
    '/api/v1/admin/signing-keys',
    {
      onRequest: admin,
      schema: {
        tags,
        summary: 'JWT signing keys still published or signing, and the recently revoked ones',
        security: bearer,
        response: {
          200: Type.Object({ activeKid: Type.Union([Type.String(), Type.Null()]), keys: Type.Array(SigningKey) }),
          ...errorResponses(401, 403),
        },
      },
    },
    async () => ({
      activeKid: (await ctx.keys.activeKid()) ?? null,
      keys: (await ctx.keys.list()).map((k) => ({
        kid: k.kid,
        createdAt: k.createdAt.toISOString(),
        activatesAt: k.activatesAt.toISOString(),
        retiredAt: iso(k.retiredAt),
        revokedAt: iso(k.revokedAt),
      })),
    }),
  );
  app.post(
    '/api/v1/admin/signing-keys/:kid/revoke',
    {
      onRequest: [admin, fresh],
      schema: {
        tags,
        summary:
          'Emergency revocation of a compromised signing key: dropped from the JWKS at once, its tokens refused by ' +
          'every service within the revocation poll (5 s); a revoked signing key is replaced by a new one at once',
        security: bearer,
        params: Type.Object({ kid: Type.String({ minLength: 1, maxLength: 128 }) }),
        body: Type.Object({ reason: Type.String({ minLength: 1, maxLength: 500 }) }, { additionalProperties: false }),
        response: {
          200: Type.Object({ kid: Type.String(), activeKid: Type.String(), replaced: Type.Boolean() }),
          ...errorResponses(400, 401, 403, 404),
        },
      },
    },
    async (req) => revokeSigningKey(ctx, req, actor(req), req.params.kid, req.body.reason),
  );

  const Backup = Type.Object({
    name: Type.String(),
    sizeBytes: Type.Integer(),
    createdAt: Type.String({ format: 'date-time' }),
    sha256: Type.String({ description: 'of the file as stored (encrypted)' }),
    encrypted: Type.Boolean({ description: 'age-encrypted (.dump.age); false only for files of older versions' }),
  });
  // a malformed key fails the start, not the first backup
  const recipients = parseRecipients(ctx.config.BACKUP_AGE_RECIPIENTS);
  app.get(
    '/api/v1/admin/backups',
    {
      onRequest: admin,
      schema: {
        tags,
        summary: 'Database backups in BACKUP_DIR',
        security: bearer,
        response: { 200: Type.Object({ backups: Type.Array(Backup) }), ...errorResponses(401, 403) },
      },
    },
    async () => ({ backups: await listBackups(ctx.config.BACKUP_DIR) }),
  );
  app.post(
    '/api/v1/admin/backups',
    {
      onRequest: [admin, fresh],
      schema: {
        tags,
        summary:
          'pg_dump --format=custom of the whole database, age-encrypted to BACKUP_AGE_RECIPIENTS as it streams, ' +
          'into BACKUP_DIR (503 BACKUP_ENCRYPTION_NOT_CONFIGURED without recipients: never a plaintext dump)',
        security: bearer,
        response: { 201: Backup, ...errorResponses(401, 403, 503) },
      },
    },
    async (req, reply) => reply.status(201).send(await runBackup(ctx, req, actor(req), recipients)),
  );
}
