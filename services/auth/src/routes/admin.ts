import type { FastifyRequest } from 'fastify';
import { AppError, conflict, errorResponses, forbidden, notFound, Type, type App } from '@exchange/platform';
import { requireFreshMfa, requireRole, type Role as RoleT } from '@exchange/auth-client';
import { withTransaction } from '@exchange/db';
import { audit } from '../audit.ts';
import { createBackup, listBackups, parseRecipients, recordBackupRun } from '../backups.ts';
import { USER_COLUMNS, userView, type Ctx, type UserRow } from '../context.ts';
import { resetAccountThrottles } from '../login-guard.ts';
import { revokeUserSessions } from '../sessions.ts';
import { revokeUserApiKeys } from './apikeys.ts';
import { bearer, Role, UserView } from './schemas.ts';
import { AccountLockedV1 } from '@exchange/contracts/auth';
import { emit, requestContext } from '../email.ts';

const tags = ['admin'];
const UserId = Type.Object({ id: Type.String({ format: 'uuid' }) });

/**
 * Who may do what:
 *   GET  users, GET audit, POST lock      → admin or support
 *   POST unlock, PUT roles, backups       → admin
 *   signing keys (list, emergency revoke) → admin
 * Every write also needs a fresh 2FA check (when the caller has 2FA on) and is audited.
 */
export function adminRoutes(app: App, ctx: Ctx): void {
  const staff = requireRole('admin', 'support');
  const admin = requireRole('admin');
  const fresh = requireFreshMfa(ctx.config.MFA_FRESH_SECONDS);

  const target = async (id: string) => {
    const { rows } = await ctx.pool.query<UserRow>(`SELECT ${USER_COLUMNS} FROM auth.users WHERE id = $1`, [id]);
    if (!rows[0]) throw notFound('USER_NOT_FOUND', 'no such user');
    return rows[0];
  };
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
    async (req) => {
      const q = req.query.email.trim().toLowerCase();
      const prefix = q.endsWith('*');
      const pattern = prefix ? `${q.slice(0, -1).replace(/[\\%_]/g, (c) => `\\${c}`)}%` : q;
      const { rows } = await ctx.pool.query<UserRow>(
        `SELECT ${USER_COLUMNS} FROM auth.users WHERE ${prefix ? 'email LIKE $1' : 'email = $1'} ORDER BY email LIMIT $2`,
        [pattern, req.query.limit],
      );
      await audit(ctx.pool, req, { action: 'admin.users_search', actorId: actor(req), details: { email: q } });
      return { users: rows.map(userView) };
    },
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
    async (req) => {
      if (req.params.id === actor(req)) throw conflict('CANNOT_LOCK_SELF', 'you cannot lock your own account');
      const u = await target(req.params.id);
      if (!req.principal!.roles.includes('admin') && u.roles.some((r) => r !== 'user')) {
        throw forbidden('FORBIDDEN', 'support cannot lock staff accounts');
      }
      const reason = req.body.reason ?? null;
      const updated = await withTransaction(ctx.pool, async (c) => {
        const { rows } = await c.query<UserRow>(
          `UPDATE auth.users SET locked_at = coalesce(locked_at, now()), locked_reason = $2, updated_at = now()
            WHERE id = $1 RETURNING ${USER_COLUMNS}`,
          [u.id, reason],
        );
        const revoked = await revokeUserSessions(c, u.id, 'account_locked');
        const keys = await revokeUserApiKeys(c, u.id, 'account_locked');
        await audit(c, req, {
          action: 'admin.user_locked',
          actorId: actor(req),
          targetId: u.id,
          details: { reason, sessionsRevoked: revoked, apiKeysRevoked: keys },
        });
        if (u.locked_at === null) {
          await emit(c, AccountLockedV1, { userId: u.id, email: u.email, reason, context: requestContext(req) }, req);
        }
        return rows[0]!;
      });
      return userView(updated);
    },
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
    async (req) => {
      const u = await target(req.params.id);
      const updated = await withTransaction(ctx.pool, async (c) => {
        const { rows } = await c.query<UserRow>(
          `UPDATE auth.users SET locked_at = NULL, locked_reason = NULL, updated_at = now() WHERE id = $1 RETURNING ${USER_COLUMNS}`,
          [u.id],
        );
        await resetAccountThrottles(c, u.email, u.id);
        await audit(c, req, { action: 'admin.user_unlocked', actorId: actor(req), targetId: u.id });
        return rows[0]!;
      });
      return userView(updated);
    },
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
    async (req) => {
      if (req.params.id === actor(req))
        throw conflict('CANNOT_CHANGE_OWN_ROLES', 'another admin must change your roles');
      const u = await target(req.params.id);
      const roles: RoleT[] = ['user', ...req.body.roles.filter((r) => r !== 'user')];
      const updated = await withTransaction(ctx.pool, async (c) => {
        const { rows } = await c.query<UserRow>(
          `UPDATE auth.users SET roles = $2, updated_at = now() WHERE id = $1 RETURNING ${USER_COLUMNS}`,
          [u.id, roles],
        );
        await revokeUserSessions(c, u.id, 'roles_changed');
        await audit(c, req, {
          action: 'admin.roles_changed',
          actorId: actor(req),
          targetId: u.id,
          details: { from: u.roles, to: roles },
        });
        return rows[0]!;
      });
      return userView(updated);
    },
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
          before: Type.Optional(Type.Integer({ minimum: 1 })),
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
      const where: string[] = [];
      const args: unknown[] = [];
      const add = (sql: string, v: unknown) => {
        args.push(v);
        where.push(sql.replace('?', `$${args.length}`));
      };
      if (q.before !== undefined) add('id < ?', q.before);
      if (q.actorId) add('actor_id = ?', q.actorId);
      if (q.targetId) add('target_id = ?', q.targetId);
      if (q.action) add('action = ?', q.action);
      args.push(q.limit + 1);
      const { rows } = await ctx.pool.query<{
        id: string;
        at: Date;
        actor_id: string | null;
        target_id: string | null;
        action: string;
        ip: string | null;
        user_agent: string | null;
        request_id: string | null;
        details: Record<string, unknown>;
      }>(
        `SELECT id, at, actor_id, target_id, action, host(ip) AS ip, user_agent, request_id, details FROM auth.audit_log
          ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT $${args.length}`,
        args,
      );
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
    async (req) => {
      let r;
      try {
        r = await ctx.keys.revoke(req.params.kid);
      } catch (e) {
        if ((e as Error).name === 'SigningKeyNotFoundError')
          throw notFound('SIGNING_KEY_NOT_FOUND', 'no such signing key, or it is revoked already');
        throw e;
      }
      await audit(ctx.pool, req, {
        action: 'admin.signing_key_revoked',
        actorId: actor(req),
        details: { ...r, reason: req.body.reason },
      });
      return r;
    },
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
    async (req, reply) => {
      let b;
      const startedAt = new Date();
      if (!recipients.length) {
        await recordBackupRun(ctx.pool, {
          startedAt,
          status: 'failed',
          file: '',
          location: ctx.config.BACKUP_DIR,
          error: 'BACKUP_AGE_RECIPIENTS is not set',
        });
        throw new AppError(
          503,
          'BACKUP_ENCRYPTION_NOT_CONFIGURED',
          'backups are only written encrypted: set BACKUP_AGE_RECIPIENTS (age public keys) on the auth service',
        );
      }
      try {
        b = await createBackup({
          dir: ctx.config.BACKUP_DIR,
          databaseUrl: ctx.config.BACKUP_DATABASE_URL ?? ctx.config.DATABASE_URL,
          recipients,
          pgDump: ctx.config.PG_DUMP_PATH,
          age: ctx.config.AGE_PATH,
        });
      } catch (e) {
        req.log.error({ err: e }, 'backup failed');
        await recordBackupRun(ctx.pool, {
          startedAt,
          status: 'failed',
          file: '',
          location: ctx.config.BACKUP_DIR,
          error: (e as Error).message.slice(0, 500),
        });
        await audit(ctx.pool, req, { action: 'admin.backup_failed', actorId: actor(req) });
        throw new AppError(503, 'BACKUP_FAILED', 'the backup could not be created; see the service log');
      }
      await recordBackupRun(ctx.pool, {
        startedAt,
        status: 'succeeded',
        file: b.name,
        location: `${ctx.config.BACKUP_DIR}/${b.name}`,
        sizeBytes: b.sizeBytes,
      });
      await audit(ctx.pool, req, { action: 'admin.backup_created', actorId: actor(req), details: { ...b } });
      return reply.status(201).send(b);
    },
  );
}
