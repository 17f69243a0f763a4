import { Type, type Static } from '@sinclair/typebox';
import { RowIdString, type Envelope } from '@exchange/contracts';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type pg from 'pg';
import type { PgSchema } from 'drizzle-orm/pg-core';
import { enqueue } from './outbox.ts';
import { withTransaction } from '@exchange/db';
import { DEAD_LETTER_TABLE, qualify } from './tables.ts';
import { ATTEMPT_HEADER, DEAD_LETTER_REASON_HEADER, LAST_ERROR_HEADER, ORIGINAL_QUEUE_HEADER } from './consumer.ts';
import { DEFAULT_EXCHANGE } from './topology.ts';

export const DeadLetterSchema = Type.Object(
  {
    id: Type.String({ description: 'Dead-letter row id (bigint as a string)' }),
    queue: Type.String(),
    messageId: Type.String(),
    type: Type.Union([Type.String(), Type.Null()]),
    message: Type.Union([Type.Unknown(), Type.Null()], { description: 'The envelope when the body was JSON' }),
    body: Type.Union([Type.String(), Type.Null()], { description: 'Raw body when it was not JSON' }),
    headers: Type.Record(Type.String(), Type.Unknown()),
    reason: Type.String(),
    attempts: Type.Integer(),
    status: Type.Union([Type.Literal('dead'), Type.Literal('retried')]),
    deadLetteredAt: Type.String(),
    retriedAt: Type.Union([Type.String(), Type.Null()]),
    retryCount: Type.Integer(),
  },
  { $id: 'DeadLetter' },
);
export type DeadLetter = Static<typeof DeadLetterSchema>;

interface Row {
  id: string;
  queue: string;
  message_id: string;
  type: string | null;
  message: unknown;
  body: string | null;
  headers: Record<string, unknown>;
  reason: string;
  attempts: number;
  status: 'dead' | 'retried';
  dead_lettered_at: Date;
  retried_at: Date | null;
  retry_count: number;
}

const COLUMNS = `id::text AS id, queue, message_id, type, message, body, headers, reason, attempts, status,
  dead_lettered_at, retried_at, retry_count`;

function toDeadLetter(r: Row): DeadLetter {
  return {
    id: r.id,
    queue: r.queue,
    messageId: r.message_id,
    type: r.type,
    message: r.message ?? null,
    body: r.body,
    headers: r.headers ?? {},
    reason: r.reason,
    attempts: r.attempts,
    status: r.status,
    deadLetteredAt: r.dead_lettered_at.toISOString(),
    retriedAt: r.retried_at ? r.retried_at.toISOString() : null,
    retryCount: r.retry_count,
  };
}

export interface ListDeadLettersOptions {
  /** Page size (default 50, max 500). */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
  status?: 'dead' | 'retried';
  queue?: string;
}

/** Newest first, keyset-paginated. */
export async function listDeadLetters(
  pool: pg.Pool,
  schema: string | PgSchema,
  opts: ListDeadLettersOptions = {},
): Promise<{ items: DeadLetter[]; nextCursor: string | null }> {
  const limit = Math.max(1, Math.min(opts.limit ?? 50, 500));
  const where: string[] = [];
  const values: unknown[] = [];
  if (opts.cursor) {
    if (!/^\d+$/.test(opts.cursor)) throw new Error('invalid cursor');
    values.push(opts.cursor);
    where.push(`id < $${values.length}::bigint`);
  }
  if (opts.status) {
    values.push(opts.status);
    where.push(`status = $${values.length}`);
  }
  if (opts.queue) {
    values.push(opts.queue);
    where.push(`queue = $${values.length}`);
  }
  values.push(limit + 1);
  const { rows } = await pool.query<Row>(
    `SELECT ${COLUMNS} FROM ${qualify(schema, DEAD_LETTER_TABLE)}
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY id DESC LIMIT $${values.length}`,
    values,
  );
  const page = rows.slice(0, limit);
  return { items: page.map(toDeadLetter), nextCursor: rows.length > limit ? page[page.length - 1]!.id : null };
}

export async function getDeadLetter(
  pool: pg.Pool,
  schema: string | PgSchema,
  id: string,
): Promise<DeadLetter | undefined> {
  if (!/^\d+$/.test(id)) return undefined;
  const { rows } = await pool.query<Row>(
    `SELECT ${COLUMNS} FROM ${qualify(schema, DEAD_LETTER_TABLE)} WHERE id = $1::bigint`,
    [id],
  );
  return rows[0] ? toDeadLetter(rows[0]) : undefined;
}

export type RetryDeadLetterResult =
  | { status: 'retried'; deadLetter: DeadLetter }
  | { status: 'already_retried'; deadLetter: DeadLetter }
  | { status: 'not_retryable'; deadLetter: DeadLetter; reason: string }
  | { status: 'not_found' };

/**
 * Republish a dead letter's original message to its queue (through the outbox, so it is sent with confirms even if
 * the broker is down right now) and mark the row retried — in one transaction, so a retry happens at most once per
 * dead-lettering: retrying an already retried row is a no-op (`already_retried`). The message keeps its id; it was
 * never recorded in the inbox (its handler never committed), so the consumer processes it afresh with a reset
 * attempt count.
 */
export async function retryDeadLetter(
  pool: pg.Pool,
  schema: string | PgSchema,
  id: string,
): Promise<RetryDeadLetterResult> {
  if (!/^\d+$/.test(id)) return { status: 'not_found' };
  return withTransaction(pool, async (client) => {
    const { rows } = await client.query<Row>(
      `SELECT ${COLUMNS} FROM ${qualify(schema, DEAD_LETTER_TABLE)} WHERE id = $1::bigint FOR UPDATE`,
      [id],
    );
    const row = rows[0];
    if (!row) return { status: 'not_found' as const };
    if (row.status === 'retried') return { status: 'already_retried' as const, deadLetter: toDeadLetter(row) };
    if (!row.message || typeof row.message !== 'object') {
      return {
        status: 'not_retryable' as const,
        deadLetter: toDeadLetter(row),
        reason: 'the body was not JSON; it cannot be republished as a message',
      };
    }
    const m = row.message as Partial<Envelope>;
    if (typeof m.id !== 'string' || typeof m.type !== 'string' || typeof m.version !== 'number') {
      // JSON, but no envelope: there is no message id to dedupe it by downstream, so it must not be replayed.
      return {
        status: 'not_retryable' as const,
        deadLetter: toDeadLetter(row),
        reason: 'the body is not a message envelope (id, type, version); it cannot be republished',
      };
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(row.headers ?? {})) {
      if ([ATTEMPT_HEADER, LAST_ERROR_HEADER, DEAD_LETTER_REASON_HEADER, ORIGINAL_QUEUE_HEADER].includes(k)) continue;
      if (k === 'x-message-type' || k === 'x-message-version') continue;
      if (typeof v === 'string') headers[k] = v;
    }
    headers['x-replayed-from-dead-letter'] = row.id;
    await enqueue(client, {
      schema,
      exchange: DEFAULT_EXCHANGE,
      routingKey: row.queue,
      message: row.message as Envelope,
      headers,
      skipValidation: true,
    });
    const upd = await client.query<Row>(
      `UPDATE ${qualify(schema, DEAD_LETTER_TABLE)}
          SET status = 'retried', retried_at = now(), retry_count = retry_count + 1
        WHERE id = $1::bigint RETURNING ${COLUMNS}`,
      [id],
    );
    return { status: 'retried' as const, deadLetter: toDeadLetter(upd.rows[0]!) };
  });
}

export interface DeadLetterRoutesOptions {
  pool: pg.Pool;
  schema: string | PgSchema;
}

const ErrorSchema = Type.Object({
  error: Type.Object({ code: Type.String(), message: Type.String(), requestId: Type.String() }),
});

const ListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
  cursor: Type.Optional(RowIdString()),
  status: Type.Optional(Type.Union([Type.Literal('dead'), Type.Literal('retried')])),
  queue: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
});
const IdParams = Type.Object({ id: RowIdString() });

/**
 * Fastify plugin: `GET /` (list, newest first, `?limit&cursor&status&queue`), `GET /:id`, `POST /:id/retry`.
 * Mount it under `/api/v1/admin/dead-letters/<service>`; the service adds authentication/authorisation (admin only)
 * with a hook in the encapsulating context.
 */
export const deadLetterRoutes: FastifyPluginAsync<DeadLetterRoutesOptions> = async (
  app: FastifyInstance,
  opts: DeadLetterRoutesOptions,
) => {
  const { pool, schema } = opts;
  const error = (requestId: string, code: string, message: string) => ({ error: { code, message, requestId } });

  // '' (not '/') so the list is `<prefix>` exactly, without a second `<prefix>/` route in the OpenAPI document
  app.get(
    '',
    {
      schema: {
        tags: ['admin'],
        summary: 'List dead letters (newest first)',
        querystring: ListQuery,
        response: {
          200: Type.Object({
            items: Type.Array(DeadLetterSchema),
            nextCursor: Type.Union([Type.String(), Type.Null()]),
          }),
        },
      },
    },
    async (req) => {
      const q = req.query as Static<typeof ListQuery>;
      return listDeadLetters(pool, schema, q);
    },
  );

  app.get(
    '/:id',
    {
      schema: {
        tags: ['admin'],
        summary: 'One dead letter',
        params: IdParams,
        response: { 200: DeadLetterSchema, 404: ErrorSchema },
      },
    },
    async (req, reply) => {
      const { id } = req.params as Static<typeof IdParams>;
      const dl = await getDeadLetter(pool, schema, id);
      if (!dl) return reply.code(404).send(error(req.id, 'DEAD_LETTER_NOT_FOUND', `dead letter ${id} not found`));
      return dl;
    },
  );

  app.post(
    '/:id/retry',
    {
      schema: {
        tags: ['admin'],
        summary: 'Republish a dead letter to its queue (idempotent)',
        params: IdParams,
        response: {
          200: Type.Object({ deadLetter: DeadLetterSchema, alreadyRetried: Type.Boolean() }),
          404: ErrorSchema,
          409: ErrorSchema,
        },
      },
    },
    async (req, reply) => {
      const { id } = req.params as Static<typeof IdParams>;
      const res = await retryDeadLetter(pool, schema, id);
      switch (res.status) {
        case 'not_found':
          return reply.code(404).send(error(req.id, 'DEAD_LETTER_NOT_FOUND', `dead letter ${id} not found`));
        case 'not_retryable':
          return reply.code(409).send(error(req.id, 'DEAD_LETTER_NOT_RETRYABLE', res.reason));
        case 'already_retried':
          return { deadLetter: res.deadLetter, alreadyRetried: true };
        case 'retried':
          return { deadLetter: res.deadLetter, alreadyRetried: false };
      }
    },
  );
};
