import { ROOT_CONTEXT, SpanKind, SpanStatusCode, context, propagation, trace, type Span } from '@opentelemetry/api';
import { validateMessage, type Envelope } from '@exchange/contracts';
import type pg from 'pg';
import type { PgSchema } from 'drizzle-orm/pg-core';
import { PACK_CONTENT_TYPE, encodePack } from './pack.ts';
import type { ConfirmPublisher, PublishOptions, PublishResult } from './publisher.ts';
import { errorMessage, sleep, stderrLogger, type Logger } from './logger.ts';
import { messagingMetrics, type GaugeSource, type MessagingMetrics, type MetricsRegistry } from './metrics.ts';
import { INBOX_TABLE, MESSAGE_ATTEMPTS_TABLE, OUTBOX_TABLE, outboxChannel, qualify, schemaName } from './tables.ts';
import { registerActiveRelay, relayWakeup, sessionDatabase, type RelayWakeup } from './wakeup.ts';

/** Anything that runs a query: a pg PoolClient inside the service's transaction (or a Pool, outside one). */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

export interface EnqueueOptions {
  /** The service's Postgres schema (where its outbox table lives). */
  schema: string | PgSchema;
  exchange: string;
  routingKey: string;
  message: Envelope;
  /** Extra AMQP headers. Trace context (traceparent/tracestate) is added from the active OTel context. */
  headers?: Record<string, string>;
  /**
   * Per-key ordering across concurrent transactions: transactions enqueueing with the same key are serialised
   * (transaction-scoped advisory lock until commit), so outbox order = commit order for that key
   * (e.g. the market for `orders.<MARKET>`). Without it, messages are published in sequence order, which preserves
   * causal order (a message enqueued after another committed always comes after it).
   */
  orderingKey?: string;
  /** Skip contract validation (dead-letter replays of messages that were already published once). */
  skipValidation?: boolean;
  /**
   * A JSON path in the message (e.g. `['payload', 'acceptedAt']`) that the insert sets to the transaction's timestamp,
   * for a message that tells when its state change happened by the database's clock. The message is validated with
   * the value it was given, which must be a valid timestamp too.
   */
  stampTransactionTime?: string[];
}

/**
 * Write a message to the outbox. Call it with the client of the transaction that makes the state change, so the
 * message exists iff the change commits. Validates the message against its registered contract
 * (throws ContractValidationError). The relay is woken when the transaction ends: in this process when it runs here,
 * else by NOTIFY on commit (wakeup.ts).
 */
export async function enqueue(client: Queryable, opts: EnqueueOptions): Promise<{ sequence: string }> {
  return (await enqueueMany(client, [opts]))[0]!;
}

/**
 * `enqueue` for several messages of one schema in one transaction, in the given order: one advisory lock per distinct
 * ordering key (taken in sorted order, so two batches never deadlock on each other), the rows (sequences follow the
 * list order) and the relay's wake-up, all in one statement. Same guarantees as calling `enqueue` for each in turn.
 */
export async function enqueueMany(client: Queryable, items: EnqueueOptions[]): Promise<Array<{ sequence: string }>> {
  if (items.length === 0) return [];
  const rows = outboxRows(client, items);
  const { rows: out } = await client.query<{ sequence: string }>(
    outboxInsertSql(rows.schema, 0, rows.wakeup.notify),
    rows.values,
  );
  rows.wakeup.sent();
  return out.map((r) => ({ sequence: r.sequence })).sort((a, b) => (BigInt(a.sequence) < BigInt(b.sequence) ? -1 : 1));
}

/** A state change of the caller's (`UPDATE … RETURNING *`, say) that decides which of `enqueueGuarded`'s rows exist. */
export interface OutboxGuard {
  /** The data-modifying statement, with its own parameters `$1…$n`. It must return a column `id`. */
  sql: string;
  values: unknown[];
  /**
   * More writes of the caller's in the same statement: common table expressions (`name AS (…)`, comma-separated)
   * placed before the guard, whose parameters are among `values`. A data-modifying statement cannot hold a `WITH` of
   * its own with data-modifying parts, so these go at the statement's top level. They run whether or not the guard
   * reads them, against the statement's one snapshot.
   */
  with?: string;
  /** Per item, the `id` the guard must return for the item's row to be written. */
  dependsOn: string[];
}

/**
 * A state change and its messages in one statement, so one round trip instead of four (`BEGIN`, the change, the
 * outbox insert, `COMMIT`) when the client is outside a transaction: the statement is its own transaction. The guard
 * runs first, then the ordering keys' locks are taken (so the lock order is the same as that of a transaction making
 * the change and then calling `enqueueMany`), then item i's row is written if the guard returned `dependsOn[i]`, in
 * list order, and the relay is woken (wakeup.ts). Returns the guard's rows.
 */
export async function enqueueGuarded<R extends pg.QueryResultRow>(
  client: Queryable,
  items: EnqueueOptions[],
  guard: OutboxGuard,
): Promise<R[]> {
  if (items.length === 0) throw new Error('enqueueGuarded: no items');
  if (guard.dependsOn.length !== items.length) throw new Error('enqueueGuarded: one dependsOn per item');
  const rows = outboxRows(client, items, guard.dependsOn);
  const n = guard.values.length;
  const { rows: out } = await client.query<R>(
    outboxInsertSql(rows.schema, n, rows.wakeup.notify, guard.sql, guard.with),
    [...guard.values, ...rows.values],
  );
  rows.wakeup.sent();
  return out;
}

/**
 * The statement's parameters for `items`: the rows as one JSON document (`$1`), the sorted ordering-key locks (`$2`),
 * the NOTIFY channel (`$3`, only when the relay is not woken in this process: `wakeup`), and with a guard each row's
 * `dependsOn` id inside its row. One document rather than an array per column: pg encodes a `jsonb[]` parameter as an
 * array literal that escapes every message a second time, and PostgreSQL parses it twice (measured on the engine's
 * outbox, whose write had the same shape).
 */
function outboxRows(
  client: Queryable,
  items: EnqueueOptions[],
  dependsOn?: string[],
): { schema: string; values: unknown[]; wakeup: RelayWakeup } {
  const schema = schemaName(items[0]!.schema);
  if (items.some((i) => schemaName(i.schema) !== schema)) throw new Error('enqueueMany: one schema per call');
  const keys = [...new Set(items.flatMap((i) => (i.orderingKey ? [`outbox:${schema}:${i.orderingKey}`] : [])))].sort();
  const rows = items.map((opts, i) => {
    const message = opts.skipValidation ? opts.message : validateMessage(opts.message);
    const headers: Record<string, string> = { ...opts.headers };
    propagation.inject(context.active(), headers);
    return {
      message_id: message.id,
      type: message.type,
      exchange: opts.exchange,
      routing_key: opts.routingKey,
      message,
      headers,
      stamp: opts.stampTransactionTime ?? null,
      dep: dependsOn?.[i] ?? null,
    };
  });
  const wakeup = relayWakeup(client, schema);
  const values = [JSON.stringify(rows), keys];
  return { schema, values: wakeup.notify ? [...values, outboxChannel(schema)] : values, wakeup };
}

/**
 * One statement, one round trip, whatever the batch: the ordering keys' advisory locks (`locked`, in array order:
 * sorted by the caller), then the rows, then, with `notify`, the relay's wake-up NOTIFY (delivered at commit, like one
 * sent by its own statement). The rows wait for the locks: the insert's gating condition counts `locked`, which runs
 * every lock call before the first row (and its sequence number) is produced. Sequences follow the document's order.
 *
 * With a `guard` (parameters `$1…$base`), the guard runs before the locks (their gate counts its rows), a row is
 * written only if the guard returned its `dependsOn` id (the row's `dep`), and the statement returns the guard's
 * rows. A stamped message gets the transaction's timestamp (`now()`, the same the guard's `now()` wrote) at its path,
 * in the ISO form with milliseconds that `Date.prototype.toISOString` gives.
 */
function outboxInsertSql(schema: string, base: number, notify: boolean, guard?: string, ctes?: string): string {
  const $ = (i: number) => `$${base + i}`;
  return `WITH ${ctes ? `${ctes},` : ''} ${guard ? `guard AS (${guard}),` : ''}
          locked AS MATERIALIZED (
            SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest(${$(2)}::text[]) AS k
             ${guard ? 'WHERE (SELECT count(*) FROM guard) >= 0' : ''}),
          ins AS (
            INSERT INTO ${qualify(schema, OUTBOX_TABLE)} (message_id, type, exchange, routing_key, message, headers)
            SELECT m.message_id, m.type, m.exchange, m.routing_key,
                   CASE WHEN m.stamp IS NULL THEN m.message
                        ELSE jsonb_set(m.message, m.stamp,
                               to_jsonb(to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))) END,
                   m.headers
              FROM ROWS FROM (jsonb_to_recordset(${$(1)}::jsonb)
                     AS (message_id text, type text, exchange text, routing_key text, message jsonb, headers jsonb,
                         stamp text[], dep text)) WITH ORDINALITY
                   AS m(message_id, type, exchange, routing_key, message, headers, stamp, dep, n)
             WHERE (SELECT count(*) FROM locked) >= 0
                   ${guard ? 'AND m.dep IN (SELECT g.id::text FROM guard g)' : ''}
             ORDER BY m.n
            RETURNING sequence)
          ${
            guard
              ? notify
                ? `SELECT guard.* FROM guard CROSS JOIN (SELECT pg_notify(${$(3)}, '') WHERE (SELECT count(*) FROM ins) >= 0) AS notified`
                : 'SELECT guard.* FROM guard'
              : notify
                ? `SELECT ins.sequence FROM ins CROSS JOIN (SELECT pg_notify(${$(3)}, '')) AS notified`
                : 'SELECT ins.sequence FROM ins'
          }`;
}

export interface OutboxRow {
  sequence: string;
  message_id: string;
  exchange: string;
  routing_key: string;
  message: Envelope;
  headers: Record<string, string>;
  next_attempt_at: Date | null;
  publish_attempts: number;
}

/** Most messages per AMQP message by default (OutboxRelayOptions.pack). */
export const DEFAULT_PACK = 64;

/** The AMQP headers a row's message carries: its own (trace context) plus its type and version. */
function messageHeaders(r: OutboxRow): Record<string, unknown> {
  return { ...r.headers, 'x-message-type': r.message.type, 'x-message-version': r.message.version };
}

export interface OutboxRelayOptions {
  pool: pg.Pool;
  schema: string | PgSchema;
  publisher: ConfirmPublisher;
  /** Service name for metrics/logs. */
  service: string;
  logger?: Logger;
  registry?: MetricsRegistry;
  /** Rows per batch (default 200). */
  batchSize?: number;
  /** Poll even without NOTIFY (default 1000 ms): covers lost notifications and rows waiting for a retry. */
  pollIntervalMs?: number;
  /** How often a standby replica tries to become the active relay (default 2000 ms). */
  standbyRetryMs?: number;
  /** Delete sent rows older than this (default 7 days; 0 = keep). */
  retentionMs?: number;
  /**
   * Delete inbox rows older than this (default 30 days; 0 = keep). A redelivery older than that would be applied
   * again, so keep it far above any redelivery window (broker outage, dead-letter replay).
   */
  inboxRetentionMs?: number;
  /**
   * Most messages per AMQP message (default 64): rows of one batch for the same exchange and routing key travel as
   * one pack (pack.ts), which the inbox consumer takes apart again. 1 publishes every row as a message of its own.
   */
  pack?: number;
  /**
   * How long rows the broker confirmed may wait to be marked sent by the next poll (default 50 ms): when work keeps
   * coming, the mark rides on the poll that follows it (`pendingBatchSql`); when none comes within this time, the
   * rows are marked alone. A crash before the mark republishes them, as a crash between confirm and mark always
   * could; consumers dedupe by message id. 0 marks every batch at once.
   */
  markDelayMs?: number;
  /** Test hook, run after the broker confirmed a batch and before it is marked sent. */
  hooks?: { afterConfirm?(rows: OutboxRow[]): void | Promise<void> };
}

/**
 * The relay session's planner settings. Marking a row sent leaves its entry in the partial index of pending rows until
 * vacuum, and sent rows are kept for `retentionMs`, so autovacuum (at a fraction of the table's rows) comes later the
 * larger the table is. A plain index scan marks an entry dead when it finds the row gone, so the next poll skips it; a
 * bitmap scan never does, and each of its polls visits every row sent since the last vacuum again. The planner picks a
 * bitmap scan whenever the statistics expect many pending rows (taken during a burst, say), so the session rules
 * it out, and keeps index scans on whatever the database's defaults are. `pending-index.test.ts`.
 */
export async function prepareRelaySession(c: Queryable): Promise<void> {
  await c.query('SET enable_bitmapscan = off');
  await c.query('SET enable_indexscan = on');
}

/** Default OutboxRelayOptions.markDelayMs. */
const DEFAULT_MARK_DELAY_MS = 50;

/** Marks the rows whose sequences are `$1` sent; a row some other session marked already is left as it is. */
function markSentSql(table: string): string {
  return `UPDATE ${table} SET sent_at = now(), publish_attempts = publish_attempts + 1, last_error = NULL
          WHERE sequence = ANY($1::bigint[]) AND sent_at IS NULL`;
}

/**
 * The relay's poll: the next pending rows in sequence order. Rows of a key whose head is waiting for a retry
 * (unroutable) are left out, so they neither overtake it nor fill the batch and starve the other keys.
 *
 * With `markSent`, the same statement first marks the rows the broker confirmed since the last poll as sent (`$1`,
 * their sequences): one round trip and one commit where a mark and a poll took two each. The poll reads the snapshot
 * from before the mark, so it leaves those rows out itself.
 */
export function pendingBatchSql(schema: string | PgSchema, batchSize: number, markSent = false): string {
  const table = qualify(schema, OUTBOX_TABLE);
  return `WITH ${
    markSent
      ? `marked AS (${markSentSql(table)}),
       `
      : ''
  }blocked AS (
         SELECT exchange, routing_key, min(sequence) AS from_seq
           FROM ${table}
          WHERE sent_at IS NULL AND next_attempt_at > now()
          GROUP BY exchange, routing_key)
       SELECT o.sequence::text AS sequence, o.message_id, o.exchange, o.routing_key, o.message, o.headers,
              o.next_attempt_at, o.publish_attempts
         FROM ${table} o
        WHERE o.sent_at IS NULL${
          markSent
            ? `
          AND o.sequence <> ALL($1::bigint[])`
            : ''
        }
          AND NOT EXISTS (SELECT 1 FROM blocked b
                           WHERE b.exchange = o.exchange AND b.routing_key = o.routing_key AND o.sequence >= b.from_seq)
        ORDER BY o.sequence
        LIMIT ${batchSize}`;
}

/**
 * The relay's cleanup, one chunk of at most `chunk` rows per statement, each older than `$1` ms: sent outbox rows,
 * inbox rows, and handling starts (`message_attempts`) of messages applied elsewhere or dead-lettered meanwhile.
 * Each chunk is read from the index on its time column in that column's order. Without the `ORDER BY`, the generic
 * plan expects a third of the table to match and finds the `LIMIT` cheapest by a sequential scan once the table holds
 * many times the chunk in no particular time order, and each minute's pass then reads every row when none has expired
 * (seen with a million inbox rows; `cleanup-plan.test.ts`).
 */
export function cleanupSql(
  schema: string | PgSchema,
  chunk: number,
): { outbox: string; inbox: string; attempts: string } {
  const outbox = qualify(schema, OUTBOX_TABLE);
  const inbox = qualify(schema, INBOX_TABLE);
  const attempts = qualify(schema, MESSAGE_ATTEMPTS_TABLE);
  return {
    // `= ANY(ARRAY(subquery))`, not `IN (subquery)`: the planner turns IN into a hash semi join that reads the whole
    // table to find the chunk's rows; an array of keys is looked up in the primary key.
    outbox: `DELETE FROM ${outbox} WHERE sequence = ANY(ARRAY(SELECT sequence FROM ${outbox}
               WHERE sent_at < now() - make_interval(secs => $1::double precision / 1000)
               ORDER BY sent_at LIMIT ${chunk}))`,
    // these two by their physical address (a Tid Scan)
    inbox: `DELETE FROM ${inbox} WHERE ctid = ANY(ARRAY(SELECT ctid FROM ${inbox}
               WHERE processed_at < now() - make_interval(secs => $1::double precision / 1000)
               ORDER BY processed_at LIMIT ${chunk}))`,
    attempts: `DELETE FROM ${attempts} WHERE ctid = ANY(ARRAY(SELECT ctid FROM ${attempts}
               WHERE updated_at < now() - make_interval(secs => $1::double precision / 1000)
               ORDER BY updated_at LIMIT ${chunk}))`,
  };
}

/**
 * Publishes outbox rows in `sequence` order with publisher confirms and `mandatory`, marking them sent only after the
 * broker confirmed them. One active relay per schema across replicas (session advisory lock); the others stand by.
 * At-least-once: a crash between confirm and mark-sent republishes; consumers dedupe by message id (inbox).
 * Unroutable (returned) messages stay pending with backoff and are counted in `outbox_unroutable_total`; later rows
 * with the same exchange + routing key wait behind them so per-key order holds.
 */
export class OutboxRelay {
  private readonly opts: OutboxRelayOptions;
  private readonly logger: Logger;
  private readonly metrics: MessagingMetrics;
  private readonly source: GaugeSource;
  private stopped = true;
  private loop: Promise<void> | undefined;
  private abort = new AbortController();
  private wake: (() => void) | undefined;
  private leader = false;
  /** When the last cleanup pass finished everything it found (see maybeCleanup). */
  private lastCleanup = 0;
  /** Sequences of rows the broker confirmed that are not marked sent yet (markDelayMs). */
  private unmarked: string[] = [];
  /** Set by a wake-up (NOTIFY, or a writer in this process) since the last poll began. */
  private notified = false;
  private phase = 'stopped';
  private phaseSince = Date.now();
  private failures = 0;
  private readonly poke = (): void => {
    this.notified = true;
    this.wake?.();
  };

  constructor(opts: OutboxRelayOptions) {
    this.opts = opts;
    this.logger = opts.logger ?? stderrLogger;
    this.metrics = messagingMetrics(opts.registry);
    this.source = { outboxPending: () => this.pending().then((pending) => ({ service: opts.service, pending })) };
  }

  /** Whether this instance currently holds the relay lock. */
  get isLeader(): boolean {
    return this.leader;
  }

  /** What the relay loop is waiting on, since when, and its failures in a row: for a stall's diagnosis. */
  get activity(): { phase: string; forMs: number; failures: number; unmarked: number } {
    return {
      phase: this.phase,
      forMs: Date.now() - this.phaseSince,
      failures: this.failures,
      unmarked: this.unmarked.length,
    };
  }

  private at(phase: string): void {
    this.phase = phase;
    this.phaseSince = Date.now();
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.abort = new AbortController();
    this.metrics.sources.add(this.source);
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    this.wake?.();
    this.metrics.sources.delete(this.source);
    await this.loop;
  }

  /** Rows not yet sent. */
  async pending(): Promise<number> {
    const { rows } = await this.opts.pool.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM ${qualify(this.opts.schema, OUTBOX_TABLE)} WHERE sent_at IS NULL`,
    );
    return Number(rows[0]?.n ?? 0);
  }

  /** Resolve once no rows are pending (tests, graceful shutdown). */
  async drained(timeoutMs = 30_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while ((await this.pending()) > 0) {
      if (Date.now() > until) throw new Error(`outbox not drained after ${timeoutMs} ms`);
      this.wake?.();
      await sleep(50);
    }
  }

  private async run(): Promise<void> {
    const lockKey = `outbox-relay:${schemaName(this.opts.schema)}`;
    this.failures = 0;
    let unregister: (() => void) | undefined;
    while (!this.stopped) {
      let client: pg.PoolClient | undefined;
      let broken = false;
      try {
        this.at('connect');
        client = await this.opts.pool.connect();
        const c = client;
        const onError = () => {
          broken = true;
          this.wake?.();
        };
        c.on('error', onError);
        this.at('lock');
        const { rows } = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok', [
          lockKey,
        ]);
        if (!rows[0]?.ok) {
          c.removeListener('error', onError);
          c.release(broken);
          client = undefined;
          this.at('standby');
          await sleep(this.opts.standbyRetryMs ?? 2_000, this.abort.signal);
          continue;
        }
        // The leader's session is never idle longer than a poll interval while this process runs; if the process
        // freezes (its socket stays open), the server ends the session and a standby gets the lock.
        this.at('session');
        const idleLimitMs = Math.max(15_000, 3 * (this.opts.pollIntervalMs ?? 1_000));
        await c.query(`SELECT set_config('idle_session_timeout', $1, false)`, [`${idleLimitMs}ms`]);
        await prepareRelaySession(c);
        this.leader = true;
        this.logger.info({ service: this.opts.service }, 'outbox relay: active');
        c.on('notification', this.poke);
        await c.query(`LISTEN "${outboxChannel(this.opts.schema)}"`);
        // Writers in this process wake it themselves from now on, and send no NOTIFY (wakeup.ts). Registered after
        // LISTEN, so a write that notifies because it came before is heard.
        unregister = registerActiveRelay(this.opts.schema, {
          database: sessionDatabase(c)!,
          pool: this.opts.pool,
          poke: this.poke,
        });
        while (!this.stopped && !broken) {
          this.notified = false;
          this.at('poll');
          const { full } = await this.publishBatch(c);
          this.failures = 0;
          this.at('cleanup');
          await this.maybeCleanup(c);
          if (full || this.notified) continue;
          if (this.unmarked.length > 0) {
            // Confirmed rows wait a moment for the next poll to mark them; with no more work coming, alone.
            this.at('mark-delay');
            if (await this.sleep(this.markDelayMs)) continue;
            this.at('mark');
            await this.markSent(c);
            if (this.notified) continue;
          }
          this.at('idle');
          await this.sleep(this.opts.pollIntervalMs ?? 1_000);
        }
        if (!broken) await this.markSent(c);
      } catch (err) {
        broken = true;
        this.failures++;
        if (!this.stopped) {
          this.logger.error({ err, service: this.opts.service }, 'outbox relay: batch failed, retrying');
          this.at('backoff');
          await sleep(Math.min(100 * 2 ** Math.min(this.failures, 7), 10_000), this.abort.signal);
        }
      } finally {
        unregister?.();
        unregister = undefined;
        this.leader = false;
        this.wake = undefined;
        // Rows confirmed but not marked on a session that is gone are published again by the next leader.
        this.unmarked = [];
        if (client) {
          // Destroy the session rather than unlock: it drops LISTEN and the advisory lock in one go.
          client.release(true);
        }
      }
    }
    this.at('stopped');
  }

  /**
   * Publish the rows, one result per row. Rows for the same exchange and routing key go out as packs of up to `pack`
   * (sequence order within each, so order per key holds); a pack's result is each of its rows' result. A row alone
   * goes out as a plain message.
   */
  private async publishRows(rows: OutboxRow[], now: number): Promise<Array<PublishResult | Error>> {
    const max = Math.max(1, this.opts.pack ?? DEFAULT_PACK);
    const groups = new Map<string, OutboxRow[][]>();
    for (const r of rows) {
      const key = `${r.exchange}\u0000${r.routing_key}`;
      const chunks = groups.get(key) ?? [];
      const last = chunks[chunks.length - 1];
      if (last && last.length < max) last.push(r);
      else chunks.push([r]);
      groups.set(key, chunks);
    }
    const units = [...groups.values()].flat();
    // The broker publish span hangs off a pack's first row only; each row of a pack gets a producer span in its own
    // trace, so every order's trace still shows the hop.
    const rowSpans: Array<[OutboxRow, Span]> = [];
    for (const unit of units) {
      if (unit.length === 1) continue;
      for (const r of unit) {
        const span = trace.getTracer('@exchange/messaging').startSpan(
          `publish ${r.exchange || '<default>'}`,
          {
            kind: SpanKind.PRODUCER,
            attributes: {
              'messaging.system': 'rabbitmq',
              'messaging.destination.name': r.exchange,
              'messaging.rabbitmq.destination.routing_key': r.routing_key,
              'messaging.message.id': r.message.id,
              'messaging.batch.message_count': unit.length,
            },
          },
          propagation.extract(ROOT_CONTEXT, r.headers ?? {}),
        );
        rowSpans.push([r, span]);
      }
    }
    const published = await this.opts.publisher.publishMany(
      units.map((unit) => {
        const first = unit[0]!;
        const env = first.message;
        const timestamp = Math.floor(Date.parse(env.occurredAt) / 1000) || Math.floor(now / 1000);
        const parent = propagation.extract(ROOT_CONTEXT, first.headers ?? {});
        if (unit.length === 1) {
          const options: PublishOptions = {
            messageId: env.id,
            type: env.type,
            persistent: true,
            contentType: 'application/json',
            timestamp,
            appId: env.producer,
            headers: messageHeaders(first),
            ...(env.correlationId ? { correlationId: env.correlationId } : {}),
          };
          return {
            exchange: first.exchange,
            routingKey: first.routing_key,
            content: Buffer.from(JSON.stringify(env)),
            options,
            parent,
          };
        }
        const options: PublishOptions = {
          // unique among the relay's publishes in flight (returns are matched by it); never an inbox key
          messageId: `pack:${env.id}:${unit.length}`,
          type: 'pack',
          persistent: true,
          contentType: PACK_CONTENT_TYPE,
          timestamp,
          appId: env.producer,
          headers: { 'x-pack-size': unit.length },
        };
        const content = encodePack(unit.map((r) => ({ headers: messageHeaders(r), message: r.message })));
        return { exchange: first.exchange, routingKey: first.routing_key, content, options, parent };
      }),
    );
    const byRow = new Map<OutboxRow, PublishResult | Error>();
    units.forEach((unit, i) => {
      this.metrics.packSize.observe({ service: this.opts.service }, unit.length);
      for (const r of unit) byRow.set(r, published[i]!);
    });
    for (const [r, span] of rowSpans) {
      const res = byRow.get(r)!;
      if (res instanceof Error) span.setStatus({ code: SpanStatusCode.ERROR, message: res.message });
      else if (res.returned) span.setStatus({ code: SpanStatusCode.ERROR, message: 'unroutable' });
      span.end();
    }
    return rows.map((r) => byRow.get(r)!);
  }

  private get markDelayMs(): number {
    return this.opts.markDelayMs ?? DEFAULT_MARK_DELAY_MS;
  }

  /** Waits `ms` or until woken (a notification, stop, drained); true when woken. */
  private async sleep(ms: number): Promise<boolean> {
    let woken = false;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        woken = true;
        clearTimeout(t);
        resolve();
      };
    });
    this.wake = undefined;
    return woken;
  }

  /** Marks the confirmed rows not marked yet as sent, alone (no poll follows right away). */
  private async markSent(c: pg.PoolClient): Promise<void> {
    if (this.unmarked.length === 0) return;
    await c.query(markSentSql(qualify(this.opts.schema, OUTBOX_TABLE)), [this.unmarked]);
    this.unmarked = [];
  }

  /** One poll and its publishes; `full` when the poll returned a whole batch (more may be waiting). */
  private async publishBatch(c: pg.PoolClient): Promise<{ full: boolean }> {
    const batchSize = this.opts.batchSize ?? 200;
    const marks = this.unmarked;
    const { rows } = await c.query<OutboxRow>(
      pendingBatchSql(this.opts.schema, batchSize, marks.length > 0),
      marks.length > 0 ? [marks] : [],
    );
    this.unmarked = [];
    if (rows.length === 0) return { full: false };
    const now = Date.now();
    const batch = rows;

    this.at(`publish ${batch.length}`);
    const results = await this.publishRows(batch, now);
    const sent: OutboxRow[] = [];
    const failed: Array<{ row: OutboxRow; error: string }> = [];
    results.forEach((res, i) => {
      const row = batch[i]!;
      if (res instanceof Error) {
        failed.push({ row, error: errorMessage(res) });
      } else if (res.returned) {
        this.metrics.unroutable.inc({ service: this.opts.service, exchange: row.exchange });
        this.logger.warn(
          {
            service: this.opts.service,
            exchange: row.exchange,
            routingKey: row.routing_key,
            messageId: row.message_id,
          },
          'outbox relay: message unroutable (no queue bound), kept pending',
        );
        failed.push({ row, error: `unroutable: ${res.replyText ?? 'NO_ROUTE'}` });
      } else {
        sent.push(row);
      }
    });
    if (sent.length > 0) {
      await this.opts.hooks?.afterConfirm?.(sent);
      this.unmarked.push(...sent.map((r) => r.sequence));
      this.metrics.published.inc({ service: this.opts.service }, sent.length);
      if (this.markDelayMs <= 0) await this.markSent(c);
    }
    if (failed.length > 0) this.at(`record ${failed.length} failures`);
    for (const f of failed) {
      // Unroutable rows and rows naming a missing exchange wait with their own backoff (other keys go on);
      // connection trouble only records the error: the whole loop backs off and retries as soon as it is back.
      const perRow = f.error.startsWith('unroutable') || f.error.includes('NOT_FOUND');
      if (!perRow) {
        await c.query(
          `UPDATE ${qualify(this.opts.schema, OUTBOX_TABLE)} SET last_error = $2 WHERE sequence = $1::bigint`,
          [f.row.sequence, f.error.slice(0, 1000)],
        );
        continue;
      }
      const delayMs = Math.min(1_000 * 2 ** Math.min(f.row.publish_attempts, 6), 60_000);
      await c.query(
        `UPDATE ${qualify(this.opts.schema, OUTBOX_TABLE)}
            SET publish_attempts = publish_attempts + 1, last_error = $2,
                next_attempt_at = now() + make_interval(secs => $3::double precision / 1000)
          WHERE sequence = $1::bigint`,
        [f.row.sequence, f.error.slice(0, 1000), delayMs],
      );
    }
    const channelFailure = failed.find((f) => !f.error.startsWith('unroutable') && !f.error.includes('NOT_FOUND'));
    if (channelFailure) {
      // Connection/channel trouble: surface it so the loop backs off (the rows stay pending); what the broker did
      // confirm is marked first, while the session still can.
      await this.markSent(c);
      throw new Error(`publish failed: ${channelFailure.error}`);
    }
    return { full: rows.length === batchSize };
  }

  /**
   * Delete expired sent rows and inbox rows in chunks until none are left or the pass has used its time budget; a
   * pass that ran out of budget is continued after the next batch instead of a minute later. So cleanup keeps up with
   * whatever rate the relay sustains (a fixed amount per minute would let the tables grow without bound), while a
   * huge backlog never holds up publishing for more than the budget at a time.
   */
  private async maybeCleanup(c: pg.PoolClient): Promise<void> {
    if (Date.now() - this.lastCleanup < 60_000) return;
    const chunk = 10_000;
    const budgetEnd = Date.now() + 2_000;
    const retention = this.opts.retentionMs ?? 7 * 24 * 3600_000;
    const inboxRetention = this.opts.inboxRetentionMs ?? 30 * 24 * 3600_000;
    const sql = cleanupSql(this.opts.schema, chunk);
    const steps: Array<{ sql: string; retention: number; done: boolean }> = [
      { sql: sql.outbox, retention, done: retention <= 0 },
      { sql: sql.inbox, retention: inboxRetention, done: inboxRetention <= 0 },
      { sql: sql.attempts, retention: inboxRetention, done: inboxRetention <= 0 },
    ];
    while (steps.some((s) => !s.done) && Date.now() < budgetEnd) {
      for (const step of steps.filter((s) => !s.done)) {
        const r = await c.query(step.sql, [step.retention]);
        step.done = (r.rowCount ?? 0) < chunk;
      }
    }
    if (steps.every((s) => s.done)) this.lastCleanup = Date.now();
  }
}
