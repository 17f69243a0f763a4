import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { Type } from '@sinclair/typebox';
import type pg from 'pg';
import type { App } from './app.ts';
import { notFound } from './errors.ts';
import { errorResponses } from './schemas.ts';

/**
 * Kill switches owned by this service, persisted in its schema (`feature_flags`), so a restart never silently flips
 * one back. Reads are cached for `cacheMs` (default 1 s); a change made on this instance is visible at once.
 */
export class FeatureFlags {
  private readonly pool: pg.Pool;
  private readonly table: string;
  readonly defaults: Record<string, boolean>;
  private cache = new Map<string, { enabled: boolean; at: number }>();
  private readonly cacheMs: number;

  constructor(opts: { pool: pg.Pool; schema: string; defaults: Record<string, boolean>; cacheMs?: number }) {
    this.pool = opts.pool;
    this.table = `"${opts.schema}".feature_flags`;
    this.defaults = opts.defaults;
    this.cacheMs = opts.cacheMs ?? 1000;
  }

  owns(name: string): boolean {
    return Object.hasOwn(this.defaults, name);
  }

  async isEnabled(name: string): Promise<boolean> {
    const hit = this.cache.get(name);
    if (hit && Date.now() - hit.at < this.cacheMs) return hit.enabled;
    const { rows } = await this.pool.query<{ enabled: boolean }>(`SELECT enabled FROM ${this.table} WHERE name = $1`, [
      name,
    ]);
    const enabled = rows[0]?.enabled ?? this.defaults[name] ?? false;
    this.cache.set(name, { enabled, at: Date.now() });
    return enabled;
  }

  async set(name: string, enabled: boolean, actor: string, reason?: string): Promise<void> {
    await this.pool.query(
      `INSERT INTO ${this.table} (name, enabled, reason, updated_by, updated_at) VALUES ($1,$2,$3,$4,now())
       ON CONFLICT (name) DO UPDATE SET enabled = EXCLUDED.enabled, reason = EXCLUDED.reason,
       updated_by = EXCLUDED.updated_by, updated_at = now()`,
      [name, enabled, reason ?? null, actor],
    );
    this.cache.set(name, { enabled, at: Date.now() });
  }

  async list(): Promise<
    Array<{ name: string; enabled: boolean; updatedBy: string | null; updatedAt: string | null; reason: string | null }>
  > {
    const { rows } = await this.pool.query<{
      name: string;
      enabled: boolean;
      updated_by: string | null;
      updated_at: Date;
      reason: string | null;
    }>(`SELECT name, enabled, updated_by, updated_at, reason FROM ${this.table}`);
    const byName = new Map(rows.map((r) => [r.name, r]));
    return Object.keys(this.defaults).map((name) => {
      const r = byName.get(name);
      return {
        name,
        enabled: r?.enabled ?? this.defaults[name]!,
        updatedBy: r?.updated_by ?? null,
        updatedAt: r ? r.updated_at.toISOString() : null,
        reason: r?.reason ?? null,
      };
    });
  }
}

const Flag = Type.Object({
  name: Type.String(),
  enabled: Type.Boolean(),
  updatedBy: Type.Union([Type.String(), Type.Null()]),
  updatedAt: Type.Union([Type.String(), Type.Null()]),
  reason: Type.Union([Type.String(), Type.Null()]),
});

/**
 * Admin routes for the flags this service owns:
 * GET /api/v1/admin/feature-flags, POST /api/v1/admin/feature-flags/:flag/enable|disable (body: { reason? }).
 * `authorize` must enforce the admin role; `actorOf` names who flipped it (kept on the row and logged).
 */
export function registerFeatureFlagRoutes(
  app: App,
  flags: FeatureFlags,
  opts: {
    authorize: onRequestAsyncHookHandler;
    actorOf: (req: FastifyRequest) => string;
    listRoute?: boolean;
    onChange?: (name: string, enabled: boolean, actor: string, req: FastifyRequest) => Promise<void>;
  },
): void {
  const tags = ['admin'];
  if (opts.listRoute !== false) {
    app.get(
      '/api/v1/admin/feature-flags',
      {
        onRequest: opts.authorize,
        schema: {
          tags,
          summary: 'List kill switches',
          security: [{ bearer: [] }],
          response: { 200: Type.Object({ flags: Type.Array(Flag) }), ...errorResponses(401, 403) },
        },
      },
      async () => ({ flags: await flags.list() }),
    );
  }
  for (const action of ['enable', 'disable'] as const) {
    app.post(
      `/api/v1/admin/feature-flags/:flag/${action}`,
      {
        onRequest: opts.authorize,
        // The body is optional; give validation an empty object when none was sent.
        preValidation: async (req) => {
          if (req.body === undefined || req.body === null) req.body = {};
        },
        schema: {
          tags,
          summary: `${action === 'enable' ? 'Enable' : 'Disable'} a kill switch`,
          security: [{ bearer: [] }],
          params: Type.Object({ flag: Type.String({ pattern: '^[a-z_]{1,40}$' }) }),
          body: Type.Object(
            { reason: Type.Optional(Type.String({ maxLength: 500 })) },
            { additionalProperties: false },
          ),
          response: { 200: Flag, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (req) => {
        const { flag } = req.params as { flag: string };
        if (!flags.owns(flag)) throw notFound('UNKNOWN_FLAG', `flag "${flag}" is not owned by ${app.serviceName}`);
        const actor = opts.actorOf(req);
        const enabled = action === 'enable';
        await flags.set(flag, enabled, actor, (req.body as { reason?: string } | undefined)?.reason);
        req.log.warn({ flag, enabled, actor }, 'feature flag changed');
        await opts.onChange?.(flag, enabled, actor, req);
        return (await flags.list()).find((f) => f.name === flag)!;
      },
    );
  }
}
