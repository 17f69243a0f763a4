import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type pg from 'pg';
import type { App } from './app.ts';
import { AppError, badRequest } from './errors.ts';

export interface IdempotencyOptions {
  pool: pg.Pool;
  /** The service's Postgres schema holding `idempotency_keys`. */
  schema: string;
  /** Who the key belongs to (keys are scoped per principal). Defaults to the verified principal's id. */
  principalOf?: (req: FastifyRequest) => string | undefined;
}

const KEY = /^[A-Za-z0-9_.:-]{1,128}$/;
const WRITE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

declare module 'fastify' {
  interface FastifyRequest {
    idempotency?: { principal: string; key: string; table: string; recorded?: boolean };
  }
}

/**
 * `Idempotency-Key` for writes: same key + same request → the stored response, replayed (header
 * `Idempotent-Replayed: true`); same key + another request → 422 IDEMPOTENCY_KEY_REUSED; same key while the first is
 * still running → 409 IDEMPOTENCY_IN_PROGRESS. 5xx responses are not stored, so the client may retry them.
 * Register after the auth plugin so the principal is known.
 */
export function registerIdempotency(app: App, opts: IdempotencyOptions): void {
  const table = `"${opts.schema}".idempotency_keys`;
  const principalOf =
    opts.principalOf ?? ((req: FastifyRequest) => (req as unknown as { principal?: { id?: string } }).principal?.id);

  app.addHook('preHandler', async (req: FastifyRequest, reply: FastifyReply) => {
    if (!WRITE.has(req.method)) return;
    const raw = req.headers['idempotency-key'];
    if (raw === undefined) return;
    const key = Array.isArray(raw) ? raw[0] : raw;
    if (!key || !KEY.test(key))
      throw badRequest('INVALID_IDEMPOTENCY_KEY', 'Idempotency-Key must be 1-128 of [A-Za-z0-9_.:-]');
    const principal = principalOf(req) ?? 'anonymous';
    const path = req.url.split('?')[0]!;
    const hash = createHash('sha256')
      .update(`${req.method}\n${req.url}\n${canonicalJson(req.body)}`)
      .digest('hex');
    const inserted = await opts.pool.query(
      `INSERT INTO ${table} (principal, key, method, path, request_hash) VALUES ($1,$2,$3,$4,$5)
       ON CONFLICT DO NOTHING RETURNING key`,
      [principal, key, req.method, path, hash],
    );
    if (inserted.rowCount === 1) {
      req.idempotency = { principal, key, table };
      return;
    }
    const { rows } = await opts.pool.query<{
      request_hash: string;
      status_code: number | null;
      response_body: string | null;
    }>(`SELECT request_hash, status_code, response_body FROM ${table} WHERE principal = $1 AND key = $2`, [
      principal,
      key,
    ]);
    const row = rows[0];
    if (!row) throw new AppError(409, 'IDEMPOTENCY_IN_PROGRESS', 'retry the request');
    if (row.request_hash !== hash) {
      throw new AppError(422, 'IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used with a different request');
    }
    if (row.status_code === null) {
      throw new AppError(
        409,
        'IDEMPOTENCY_IN_PROGRESS',
        'a request with this Idempotency-Key is still being processed',
      );
    }
    reply.header('idempotent-replayed', 'true').header('content-type', 'application/json; charset=utf-8');
    return reply.status(row.status_code).send(row.response_body ?? '');
  });

  app.addHook('onSend', async (req, reply, payload) => {
    const idem = req.idempotency;
    if (!idem || idem.recorded) return payload;
    if (reply.statusCode >= 500) {
      // Only a key whose effect did not commit may be retried; one recorded with its effect stays (see below).
      await opts.pool.query(`DELETE FROM ${table} WHERE principal = $1 AND key = $2 AND status_code IS NULL`, [
        idem.principal,
        idem.key,
      ]);
    } else {
      await opts.pool.query(
        `UPDATE ${table} SET status_code = $3, response_body = $4 WHERE principal = $1 AND key = $2`,
        [
          idem.principal,
          idem.key,
          reply.statusCode,
          typeof payload === 'string' ? payload : payload == null ? '' : String(payload),
        ],
      );
    }
    return payload;
  });
}

/**
 * Store the reply of an idempotent request inside the transaction that makes its effect, so the two commit together:
 * a failure after the commit (reply lost, 5xx on the way out) can no longer free the key for a retry that would
 * repeat the effect; the retry gets this reply. `body` must be what the route sends (its response schema).
 * A no-op for requests without `Idempotency-Key`.
 */
export async function recordIdempotentReply(
  client: Pick<pg.PoolClient, 'query'>,
  req: FastifyRequest,
  statusCode: number,
  body: unknown,
): Promise<void> {
  const idem = req.idempotency;
  if (!idem) return;
  await client.query(
    `UPDATE ${idem.table} SET status_code = $3, response_body = $4 WHERE principal = $1 AND key = $2`,
    [idem.principal, idem.key, statusCode, JSON.stringify(body)],
  );
  idem.recorded = true;
}

/** JSON with sorted keys, so the same body in another key order is the same request. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v ?? null);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
    .join(',')}}`;
}

/**
 * Delete keys older than `olderThanHours`, and keys stuck without a reply (the process died mid-request) older than
 * `stuckAfterMinutes`, which would otherwise answer 409 IDEMPOTENCY_IN_PROGRESS until then. A stuck key never has a
 * committed effect when the effect records its reply in its own transaction (`recordIdempotentReply`). Run on a
 * schedule by the service.
 */
export async function purgeIdempotencyKeys(
  pool: pg.Pool,
  schema: string,
  olderThanHours = 24,
  stuckAfterMinutes = 10,
): Promise<number> {
  const r = await pool.query(
    `DELETE FROM "${schema}".idempotency_keys
      WHERE created_at < now() - make_interval(hours => $1)
         OR (status_code IS NULL AND created_at < now() - make_interval(mins => $2))`,
    [olderThanHours, stuckAfterMinutes],
  );
  return r.rowCount ?? 0;
}
