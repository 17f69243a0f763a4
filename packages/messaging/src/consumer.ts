import { createHash } from 'node:crypto';
import {
  INVALID_SPAN_CONTEXT,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  propagation,
  trace,
  type Span,
} from '@opentelemetry/api';
import { ContractValidationError, validateMessage, type Envelope, type MessageContract } from '@exchange/contracts';
import type { Static, TSchema } from '@sinclair/typebox';
import type { Isolation } from '@exchange/db';
import { withTransaction } from '@exchange/db';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import pg from 'pg';
import type { PgSchema } from 'drizzle-orm/pg-core';
import type { ConnectionResource, RabbitConnection } from './connection.ts';
import { isBrokerHeader, unpack } from './pack.ts';
import type { ConfirmPublisher } from './publisher.ts';
import { errorMessage, sleep, stderrLogger, type Logger } from './logger.ts';
import type { MessagingMetrics } from './metrics.ts';
import { DEAD_LETTER_TABLE, INBOX_TABLE, MESSAGE_ATTEMPTS_TABLE, qualify } from './tables.ts';
import {
  DEFAULT_DELIVERY_LIMIT,
  DEFAULT_EXCHANGE,
  DEFAULT_RETRY,
  deadLetterQueueName,
  retryDelay,
  retryQueueName,
  type RetryPolicy,
} from './topology.ts';

/** AMQP header carrying how many times the handler has failed for this message so far. */
export const ATTEMPT_HEADER = 'x-attempt';
export const LAST_ERROR_HEADER = 'x-last-error';
export const DEAD_LETTER_REASON_HEADER = 'x-dead-letter-reason';
export const ORIGINAL_QUEUE_HEADER = 'x-original-queue';

export interface DeliveryContext {
  queue: string;
  /** Handler failures before this run (0 on the first). */
  attempt: number;
  /** The broker's count of earlier deliveries without a settle (informational: reconnects count too). */
  deliveryCount: number;
  redelivered: boolean;
  headers: Record<string, unknown>;
  /** The consumer span (child of the producer's trace). */
  span: Span;
}

export type MessageHandler = (message: Envelope, client: pg.PoolClient, ctx: DeliveryContext) => Promise<void>;

/** What a batch handler is told: the queue and the batch's consumer span. */
export interface BatchContext {
  queue: string;
  span: Span;
}

export type BatchHandler = (messages: Envelope[], client: pg.PoolClient, ctx: BatchContext) => Promise<void>;

export interface ConsumeOptions {
  queue: string;
  /** Unacked deliveries the broker may push ahead (default 10). */
  prefetch?: number;
  /** Handlers running at once (default 1: strictly in delivery order, required for per-market queues). */
  concurrency?: number;
  handler: MessageHandler;
  /** Defaults to the policy the queue was declared with (or DEFAULT_RETRY). */
  retry?: RetryPolicy;
  /**
   * How many times a message may be handled again after a redelivery without being applied (consumer crashes or
   * connection losses while it was in hand) before it is poison. Counted per message id in the database
   * (`message_attempts`), only for messages whose handling actually started, so a reconnect does not count against
   * the messages merely waiting in the prefetch window. Defaults to the queue's declared delivery limit (or 10).
   */
  deliveryLimit?: number;
  isolation?: Isolation;
  /**
   * `queue` (default): a failed message goes to `<queue>.retry.<n>` and later messages are processed meanwhile.
   * `inline`: retried in place after the backoff delay while holding the queue (with concurrency 1 nothing
   * overtakes it), for queues where order matters more than throughput (per-market command queues).
   * Both dead-letter after `retry.attempts` retries.
   */
  retryMode?: 'queue' | 'inline';
  /**
   * Group commit (default 1: one transaction per message). With `batch` > 1 and concurrency 1, the deliveries already
   * waiting (up to `batch`, never waiting for more) are applied in one transaction — inbox rows and handler effects of
   * each, in delivery order — and acked after its commit. A batch that fails in any way is rolled back whole and its
   * messages are then applied one by one (the usual per-message retry and dead-letter rules), so a batch never changes
   * what a message does, only how many commits it shares. Handlers must keep all their effects in the transaction.
   */
  batch?: number;
  /**
   * With `batch` > 1: a batch's new messages (delivery order, each id once) go to this one call instead of to
   * `handler` one at a time, so the handler can write the whole batch with set-based statements. Same transaction
   * and rules: a throw rolls the batch back and its messages are then applied one by one through `handler`, so the
   * two must have the same effect.
   */
  batchHandler?: BatchHandler;
  /**
   * Errors that say nothing about the message (the database or a dependency is unavailable, a timeout, a
   * serialization failure …): waited out with backoff (up to 5 s) for as long as they last, holding the message,
   * never counted as an attempt. Default: `isDatabaseUnavailable`.
   */
  transient?: (err: unknown) => boolean;
  /**
   * Instead of dead-lettering a message that failed past its retries or keeps crashing its consumer: halt. The
   * consumer stops for good, the message stays at the head of its queue (unacked, returned when the channel
   * closes), and this is called with the reason. For queues whose messages must never be skipped (per-market
   * engine commands). Permanent errors (PermanentError, invalid messages) are still dead-lettered.
   */
  onExhausted?: (info: { envelope: Envelope; reason: string; error: unknown }) => Promise<void>;
  /**
   * A message that fails contract validation but carries an id: the handler may turn it into an outcome (e.g. the
   * engine rejects an invalid order and releases its hold) in the usual transaction with the inbox row, and returns
   * true; false dead-letters it as usual.
   */
  onInvalid?: (parsed: unknown, reason: string, client: pg.PoolClient) => Promise<boolean>;
  /** Test hook, run after the transaction committed and before the ack. */
  hooks?: { afterCommit?(message: Envelope): void | Promise<void> };
}

export interface ConsumerDeps {
  connection: RabbitConnection;
  publisher: ConfirmPublisher;
  pool: pg.Pool;
  schema: string | PgSchema;
  metrics: MessagingMetrics;
  logger?: Logger;
}

class PoisonError extends Error {}
class InvalidHandled extends Error {}

/** A message id already applied with different content (not a redelivery): dead-lettered, and counted. */
export class IdConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IdConflictError';
  }
}

/**
 * Throw from a handler when retrying cannot help (the message contradicts the state for good, an unknown
 * variant, …): the message is dead-lettered at once with this error's message as the reason.
 */
export class PermanentError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentError';
  }
}

const isPermanent = (err: unknown) =>
  err instanceof PoisonError || err instanceof PermanentError || err instanceof IdConflictError;

/** What the inbox keeps of a message's content: SHA-256 of its type, version and payload. */
export function messageDigest(envelope: Envelope): string {
  return createHash('sha256')
    .update(`${envelope.type}@v${envelope.version}\n${JSON.stringify(envelope.payload)}`)
    .digest('hex');
}
class StoppedError extends Error {}

const PG_UNAVAILABLE = new Set(['57P01', '57P02', '57P03', '53300']);
const NET_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** Errors meaning "the database cannot be reached right now" (as opposed to the handler failing). */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (code.startsWith('08') || PG_UNAVAILABLE.has(code) || NET_ERRORS.has(code))) {
    return true;
  }
  const msg = errorMessage(err);
  return (
    /Connection terminated|timeout exceeded when trying to connect|connection error|Client was closed/i.test(msg) ||
    (err instanceof AggregateError && err.errors.some(isDatabaseUnavailable))
  );
}

interface Delivery {
  msg: ConsumeMessage;
  ch: Channel;
  gen: number;
  /** Its handling start after a redelivery is recorded in `message_attempts` (delete the row with its effect). */
  counted?: boolean;
  /** The AMQP message it came in when it came in a pack (`msg` is then its own part). */
  pack?: Pack;
}

/** A pack in hand: acked once each message in it is settled, requeued whole if one of them must be. */
interface Pack {
  msg: ConsumeMessage;
  open: number;
  settled: boolean;
}

const tracer = () => trace.getTracer('@exchange/messaging');

/** The producer's trace context from AMQP headers (values may arrive as Buffers). */
function extractContext(headers: Record<string, unknown> | undefined) {
  return propagation.extract(ROOT_CONTEXT, headers ?? {}, {
    get: (carrier, key) => {
      const v = (carrier as Record<string, unknown>)[key];
      return typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('utf8') : undefined;
    },
    keys: (carrier) => Object.keys(carrier as object),
  });
}

/** Strip broker bookkeeping headers before republishing a copy (retry queue, DLQ). */
function cleanHeaders(headers: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (!isBrokerHeader(k)) out[k] = v;
  }
  return out;
}

function headerInt(headers: Record<string, unknown> | undefined, name: string): number {
  const v = headers?.[name];
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : 0;
  return Number.isFinite(n) ? n : 0;
}

/**
 * An inbox consumer: validate → (transaction: inbox insert, handler) → commit → ack.
 * Duplicates (already in the inbox) are acked and skipped; handler errors go to the retry queues with backoff,
 * then to the DLQ and the dead-letter table; invalid messages are dead-lettered at once. Resumes after reconnects.
 */
export class Consumer implements ConnectionResource {
  readonly name: string;
  readonly queue: string;
  private readonly opts: ConsumeOptions;
  private readonly deps: ConsumerDeps;
  private readonly logger: Logger;
  private readonly retry: RetryPolicy;
  private readonly deliveryLimit: number;
  private ch: Channel | undefined;
  private gen = 0;
  private backlog: Delivery[] = [];
  private active = 0;
  private stopped = false;
  private idle: Array<() => void> = [];
  /** Aborted on stop: ends in-place waits (inline retry backoff, database outage) early. */
  private readonly stopping = new AbortController();
  /**
   * Aborted when the channel is lost: a handler of the dead channel that is waiting (inline retry backoff, a transient
   * failure) gives up at once. Its message is redelivered on the new channel, and until it returns it counts as
   * running, which holds back every delivery of the new channel (concurrency 1): without this a reconnect could
   * stall the queue for the rest of a backoff (up to a minute).
   */
  private channelLost = new AbortController();

  /** Ends a wait on stop or when the channel the delivery came on is gone. */
  private waitSignal(): AbortSignal {
    return AbortSignal.any([this.stopping.signal, this.channelLost.signal]);
  }

  constructor(opts: ConsumeOptions, deps: ConsumerDeps, declared?: { retry?: RetryPolicy; deliveryLimit?: number }) {
    this.opts = opts;
    this.deps = deps;
    this.queue = opts.queue;
    this.name = `consumer:${opts.queue}`;
    this.logger = deps.logger ?? stderrLogger;
    this.retry = opts.retry ?? declared?.retry ?? DEFAULT_RETRY;
    this.deliveryLimit = opts.deliveryLimit ?? declared?.deliveryLimit ?? DEFAULT_DELIVERY_LIMIT;
  }

  async open(conn: ChannelModel): Promise<void> {
    if (this.stopped) return;
    const gen = ++this.gen;
    this.channelLost.abort();
    this.channelLost = new AbortController();
    this.backlog = []; // deliveries of a dead channel come again
    const ch = await conn.createChannel();
    ch.on('error', (err: Error) => this.logger.warn({ err, queue: this.queue }, 'consumer: channel error'));
    ch.on('close', () => {
      if (this.ch !== ch) return;
      this.ch = undefined;
      if (!this.stopped && this.deps.connection.connected) {
        // The channel died on its own (channel error) while the connection lives: reopen just this consumer.
        setTimeout(() => void this.reopen(), 1_000).unref();
      }
    });
    await ch.prefetch(this.opts.prefetch ?? 10);
    this.ch = ch;
    await ch.consume(
      this.queue,
      (msg) => {
        if (!msg) {
          // Cancelled by the broker (queue deleted, node down): resubscribe.
          this.logger.warn({ queue: this.queue }, 'consumer: cancelled by broker, resubscribing');
          if (this.ch === ch) {
            this.ch = undefined;
            void ch.close().catch(() => {});
            setTimeout(() => void this.reopen(), 1_000).unref();
          }
          return;
        }
        if (this.stopped) return; // shutting down: it goes back to the queue when the channel closes
        const messages = unpack(msg);
        if (messages.length === 1 && messages[0] === msg) this.backlog.push({ msg, ch, gen });
        else {
          const pack: Pack = { msg, open: messages.length, settled: false };
          for (const m of messages) this.backlog.push({ msg: m, ch, gen, pack });
        }
        this.pump();
      },
      { noAck: false },
    );
  }

  private async reopen(): Promise<void> {
    if (this.stopped || this.ch) return;
    try {
      const conn = this.deps.connection.current();
      if (conn) await this.open(conn);
    } catch (err) {
      this.logger.warn({ err, queue: this.queue }, 'consumer: reopen failed, recycling the connection');
      this.deps.connection.recycle(`consumer ${this.queue} could not reopen`);
    }
  }

  lost(): void {
    this.ch = undefined;
    this.backlog = [];
    this.channelLost.abort();
  }

  /** Stop taking deliveries, wait for running handlers, close the channel (unacked messages go back). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    this.deps.connection.unregister(this);
    const ch = this.ch;
    this.ch = undefined;
    this.backlog = [];
    // No basic.cancel first: with single-active-consumer the next consumer would start on newer messages while
    // ours are still unacked. Closing the channel removes the consumer and returns its unacked messages at once,
    // and the broker redelivers returned messages first.
    if (this.active > 0) await new Promise<void>((r) => this.idle.push(r));
    if (ch) await ch.close().catch(() => {});
  }

  private pump(): void {
    const limit = this.opts.concurrency ?? 1;
    const batch = limit === 1 ? (this.opts.batch ?? 1) : 1;
    if (batch > 1 && this.active === 0 && this.backlog.length > 1) {
      const ds = this.backlog.splice(0, batch);
      this.active++;
      void this.handleBatch(ds)
        .catch((err: unknown) => {
          this.logger.error({ err, queue: this.queue }, 'consumer: unexpected error handling a batch; requeueing');
          for (const d of ds) this.nackRequeue(d);
        })
        .finally(() => {
          this.active--;
          if (this.active === 0) for (const r of this.idle.splice(0)) r();
          this.pump();
        });
      return;
    }
    while (this.active < limit && this.backlog.length > 0) {
      const d = this.backlog.shift()!;
      this.active++;
      void this.handle(d)
        .catch((err: unknown) => {
          // Not expected (every path settles the message itself); never leave it unacked for good.
          this.logger.error({ err, queue: this.queue }, 'consumer: unexpected error handling a delivery; requeueing');
          this.nackRequeue(d);
        })
        .finally(() => {
          this.active--;
          if (this.active === 0) for (const r of this.idle.splice(0)) r();
          this.pump();
        });
    }
  }

  private ack(d: Delivery): void {
    if (d.gen !== this.gen) return; // its channel is gone; the broker redelivers it and the inbox dedupes
    const pack = d.pack;
    if (pack) {
      if (pack.settled || --pack.open > 0) return;
      pack.settled = true;
    }
    try {
      d.ch.ack(pack ? pack.msg : d.msg);
    } catch (err) {
      this.logger.warn({ err, queue: this.queue }, 'consumer: ack failed (channel closed); it will be redelivered');
    }
  }

  private nackRequeue(d: Delivery): void {
    if (d.gen !== this.gen) return;
    // A pack comes back whole: the messages of it already applied are then duplicates for the inbox.
    if (d.pack) {
      if (d.pack.settled) return;
      d.pack.settled = true;
    }
    try {
      d.ch.nack(d.pack ? d.pack.msg : d.msg, false, true);
    } catch {
      // channel closed: redelivered anyway
    }
  }

  /**
   * Group commit (see ConsumeOptions.batch): validate, then one transaction for the whole batch — a multi-row inbox
   * insert tells the duplicates apart, the handler runs for each new message in delivery order — then ack them all.
   * Anything unusual (an invalid message, a message that earlier failed or crashed its consumer, an id reused with
   * other content, a failure) rolls the batch back and hands its messages to the one-by-one path in the same order,
   * which applies, retries or dead-letters each as it always would; messages the batch applied are never applied
   * again because nothing of the batch committed.
   */
  private async handleBatch(ds: Delivery[]): Promise<void> {
    const gen = ds[0]!.gen;
    const live = ds.filter((d) => d.gen === this.gen);
    const items: Array<{ d: Delivery; envelope: Envelope; attempt: number; deliveryCount: number }> = [];
    let plain = live.length === ds.length && gen === this.gen;
    for (const d of live) {
      if (!plain) break;
      const headers = (d.msg.properties.headers ?? {}) as Record<string, unknown>;
      const attempt = headerInt(headers, ATTEMPT_HEADER);
      const deliveryCount = headerInt(headers, 'x-delivery-count');
      try {
        const envelope = validateMessage(JSON.parse(d.msg.content.toString('utf8')));
        items.push({ d, envelope, attempt, deliveryCount });
        // an earlier failure takes the careful path
        if (attempt > 0) plain = false;
      } catch {
        plain = false;
      }
    }
    if (plain) {
      // Redelivered messages: record that their handling starts again (one statement for all of them); one that
      // has crashed or lost its consumer too often takes the careful path, which dead-letters or halts it.
      const again = items.filter((it) => it.d.msg.fields.redelivered && !it.d.counted);
      if (again.length > 0) {
        try {
          const starts = await this.countStarts(again.map((it) => it.envelope.id));
          for (const it of again) it.d.counted = true;
          if ([...starts.values()].some((n) => n > this.deliveryLimit)) plain = false;
        } catch {
          plain = false; // the one-by-one path waits for the database
        }
      }
    }
    if (plain) {
      const applied = await this.applyBatch(items);
      if (applied) {
        for (const it of items) {
          const outcome = applied.has(it.envelope.id) ? 'ok' : 'duplicate';
          this.deps.metrics.consumed.inc({ queue: this.queue, outcome });
          if (outcome === 'ok') await this.opts.hooks?.afterCommit?.(it.envelope);
        }
        for (const it of items) this.ack(it.d);
        return;
      }
    }
    for (const d of live) {
      if (this.stopped || d.gen !== this.gen) return; // the rest is redelivered
      await this.handle(d);
    }
  }

  private isTransient(err: unknown): boolean {
    return isDatabaseUnavailable(err) || (this.opts.transient?.(err) ?? false);
  }

  /**
   * Count a handling start of each redelivered message id not applied yet (autocommit, so a crash cannot undo it);
   * returns the starts so far per id (ids already in the inbox are left out: their redelivery is a duplicate).
   */
  private async countStarts(ids: string[]): Promise<Map<string, number>> {
    const attempts = qualify(this.deps.schema, MESSAGE_ATTEMPTS_TABLE);
    const inbox = qualify(this.deps.schema, INBOX_TABLE);
    const { rows } = await this.deps.pool.query<{ message_id: string; starts: number }>(
      `INSERT INTO ${attempts} AS a (queue, message_id, starts)
         SELECT $1, id, 1 FROM unnest($2::text[]) AS id
          WHERE NOT EXISTS (SELECT 1 FROM ${inbox} i WHERE i.queue = $1 AND i.message_id = id)
       ON CONFLICT (queue, message_id) DO UPDATE SET starts = a.starts + 1, updated_at = now()
       RETURNING message_id, starts`,
      [this.queue, [...new Set(ids)]],
    );
    return new Map(rows.map((r) => [r.message_id, r.starts]));
  }

  /** Inside the transaction that applies them: the counted starts are done with. */
  private async clearStarts(client: pg.PoolClient, ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await client.query(
      `DELETE FROM ${qualify(this.deps.schema, MESSAGE_ATTEMPTS_TABLE)} WHERE queue = $1 AND message_id = ANY($2::text[])`,
      [this.queue, ids],
    );
  }

  /** Throws IdConflictError when an id the inbox already has was applied with different content. */
  private async checkDuplicates(client: pg.PoolClient, dups: Envelope[]): Promise<void> {
    if (dups.length === 0) return;
    const { rows } = await client.query<{ message_id: string; digest: string | null }>(
      `SELECT message_id, digest FROM ${qualify(this.deps.schema, INBOX_TABLE)}
        WHERE queue = $1 AND message_id = ANY($2::text[])`,
      [this.queue, dups.map((e) => e.id)],
    );
    const have = new Map(rows.map((r) => [r.message_id, r.digest]));
    for (const e of dups) {
      const digest = have.get(e.id);
      if (digest && digest !== messageDigest(e)) {
        throw new IdConflictError(
          `message id ${e.id} was already applied with different content (an id reused, e.g. after a restore): ` +
            'not a duplicate',
        );
      }
    }
  }

  /**
   * The inbox rows of a batch, as the opening statement of its transaction: sent with `BEGIN`, one round trip less
   * per batch. Without parameters, so the values are inlined as escaped literals.
   */
  private inboxInsert(items: Array<{ envelope: Envelope }>): string {
    const queue = pg.escapeLiteral(this.queue);
    const values = items.map(
      ({ envelope: e }) =>
        `(${queue}, ${pg.escapeLiteral(e.id)}, ${pg.escapeLiteral(e.type)}, ${pg.escapeLiteral(messageDigest(e))})`,
    );
    return `INSERT INTO ${qualify(this.deps.schema, INBOX_TABLE)} (queue, message_id, type, digest)
              VALUES ${values.join(', ')} ON CONFLICT DO NOTHING RETURNING message_id`;
  }

  /** The batch's transaction; the ids it applied, or undefined when it rolled back (the caller goes one by one). */
  private async applyBatch(
    items: Array<{ d: Delivery; envelope: Envelope; attempt: number; deliveryCount: number }>,
  ): Promise<Set<string> | undefined> {
    const span = tracer().startSpan(`${this.queue} process batch`, {
      kind: SpanKind.CONSUMER,
      attributes: {
        'messaging.system': 'rabbitmq',
        'messaging.operation.type': 'process',
        'messaging.destination.name': this.queue,
        'messaging.batch.message_count': items.length,
      },
      links: items.map((it) => ({
        context: trace.getSpanContext(extractContext(it.d.msg.properties.headers)) ?? INVALID_SPAN_CONTEXT,
      })),
    });
    let dbWait = 200;
    const signal = this.waitSignal();
    try {
      for (;;) {
        try {
          return await withTransaction(
            this.deps.pool,
            async (client, ins) => {
              const fresh = new Set(ins!.rows.map((r: { message_id: string }) => r.message_id));
              await this.checkDuplicates(
                client,
                items.filter((it) => !fresh.has(it.envelope.id)).map((it) => it.envelope),
              );
              // a message id twice in one batch (a redelivered copy next to the original) is applied once
              const applied = new Set<string>();
              const todo = items.filter((it) => {
                if (!fresh.has(it.envelope.id) || applied.has(it.envelope.id)) return false;
                applied.add(it.envelope.id);
                return true;
              });
              if (this.opts.batchHandler && todo.length) {
                await this.opts.batchHandler(
                  todo.map((it) => it.envelope),
                  client,
                  { queue: this.queue, span },
                );
              }
              for (const it of this.opts.batchHandler ? [] : todo) {
                await this.opts.handler(it.envelope, client, {
                  queue: this.queue,
                  attempt: it.attempt,
                  deliveryCount: it.deliveryCount,
                  redelivered: it.d.msg.fields.redelivered,
                  headers: (it.d.msg.properties.headers ?? {}) as Record<string, unknown>,
                  span,
                });
              }
              await this.clearStarts(
                client,
                items.filter((it) => it.d.counted).map((it) => it.envelope.id),
              );
              return applied;
            },
            { ...(this.opts.isolation ? { isolation: this.opts.isolation } : {}), opening: this.inboxInsert(items) },
          );
        } catch (err) {
          if (this.isTransient(err) && items[0]!.d.gen === this.gen && !this.stopped) {
            this.deps.metrics.consumed.inc({ queue: this.queue, outcome: 'transient' });
            this.logger.warn({ queue: this.queue, err, retryInMs: dbWait }, 'consumer: transient failure, waiting');
            await sleep(dbWait, signal);
            dbWait = Math.min(dbWait * 2, 5_000);
            // stopped, or its channel is gone (the batch is redelivered): no point going on
            if (signal.aborted || this.stopped || items[0]!.d.gen !== this.gen) return undefined;
            continue;
          }
          this.deps.metrics.consumed.inc({ queue: this.queue, outcome: 'batch_split' });
          this.logger.debug?.(
            { queue: this.queue, err, size: items.length },
            'consumer: batch rolled back; applying its messages one by one',
          );
          return undefined;
        }
      }
    } finally {
      span.end();
    }
  }

  private async handle(d: Delivery): Promise<void> {
    if (d.gen !== this.gen) return; // from a channel that has since died
    const { msg } = d;
    const headers = (msg.properties.headers ?? {}) as Record<string, unknown>;
    const body = msg.content.toString('utf8');
    const attempt = headerInt(headers, ATTEMPT_HEADER);
    const deliveryCount = headerInt(headers, 'x-delivery-count');

    // 1. Contract validation: an invalid message can never succeed, so it is dead-lettered at once (or turned into
    //    an outcome by onInvalid).
    let parsed: unknown;
    let envelope: Envelope;
    try {
      parsed = JSON.parse(body);
      envelope = validateMessage(parsed);
    } catch (err) {
      const reason =
        err instanceof ContractValidationError
          ? `invalid message: ${err.reasons.join('; ')}`
          : `invalid message: body is not JSON (${errorMessage(err)})`;
      if (this.opts.onInvalid && (await this.handleInvalid(d, parsed, reason))) return;
      this.deps.metrics.consumed.inc({ queue: this.queue, outcome: 'invalid' });
      await this.deadLetterAndAck(d, { parsed, body, reason, attempts: attempt });
      return;
    }

    const parent = extractContext(headers);
    await tracer().startActiveSpan(
      `${this.queue} process`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          'messaging.system': 'rabbitmq',
          'messaging.operation.type': 'process',
          'messaging.destination.name': this.queue,
          'messaging.message.id': envelope.id,
          'messaging.message.type': envelope.type,
          'messaging.message.attempt': attempt,
          ...(envelope.correlationId ? { 'messaging.message.conversation_id': envelope.correlationId } : {}),
        },
      },
      parent,
      async (span) => {
        try {
          await this.process(d, envelope, { parsed, body, attempt, deliveryCount, headers, span });
        } finally {
          span.end();
        }
      },
    );
  }

  /**
   * An invalid message with an id, offered to onInvalid in a transaction with its inbox row; true when it was
   * applied (or already had been) and acked. Transient failures are waited out.
   */
  private async handleInvalid(d: Delivery, parsed: unknown, reason: string): Promise<boolean> {
    const id = parsed && typeof parsed === 'object' ? (parsed as { id?: unknown }).id : undefined;
    const type = parsed && typeof parsed === 'object' ? (parsed as { type?: unknown }).type : undefined;
    if (typeof id !== 'string' || id.length === 0 || id.length > 200) return false;
    let wait = 200;
    const signal = this.waitSignal();
    for (;;) {
      if (d.gen !== this.gen || this.stopped) return true; // redelivered; decided then
      try {
        await withTransaction(this.deps.pool, async (client) => {
          const ins = await client.query(
            `INSERT INTO ${qualify(this.deps.schema, INBOX_TABLE)} (queue, message_id, type)
               VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
            [this.queue, id, typeof type === 'string' ? type.slice(0, 200) : 'invalid'],
          );
          if (ins.rowCount === 0) return;
          if (!(await this.opts.onInvalid!(parsed, reason, client))) throw new InvalidHandled();
        });
        this.deps.metrics.consumed.inc({ queue: this.queue, outcome: 'rejected' });
        this.logger.warn({ queue: this.queue, messageId: id, reason }, 'consumer: invalid message rejected by handler');
        this.ack(d);
        return true;
      } catch (err) {
        if (err instanceof InvalidHandled) return false;
        if (this.isTransient(err) && !this.stopped) {
          await sleep(wait, signal);
          wait = Math.min(wait * 2, 5_000);
          if (signal.aborted) return true; // stopped, or its channel is gone: redelivered, decided then
          continue;
        }
        this.logger.error({ err, queue: this.queue, messageId: id }, 'consumer: onInvalid failed; dead-lettering');
        return false;
      }
    }
  }

  private async process(
    d: Delivery,
    envelope: Envelope,
    x: {
      parsed: unknown;
      body: string;
      attempt: number;
      deliveryCount: number;
      headers: Record<string, unknown>;
      span: Span;
    },
  ): Promise<void> {
    const { span } = x;
    let outcome: 'ok' | 'duplicate';
    let attempt = x.attempt;
    let dbWait = 200;
    const signal = this.waitSignal();
    try {
      for (;;) {
        try {
          if (d.msg.fields.redelivered && !d.counted) {
            // Handling starts again after a redelivery: count it (see ConsumeOptions.deliveryLimit).
            const starts = (await this.countStarts([envelope.id])).get(envelope.id) ?? 0;
            d.counted = true;
            if (starts > this.deliveryLimit) {
              throw new PoisonError(
                `delivery limit exceeded: handled ${starts} times after redeliveries without being applied ` +
                  '(the consumer crashed or lost its connection while handling it)',
              );
            }
          }
          outcome = await this.attemptOnce(d, envelope, { ...x, attempt });
          break;
        } catch (err) {
          // Transient (the database is unreachable, a timeout …): not the message's fault. Hold it (unacked, no
          // attempt counted) and try again until it works, the channel dies (redelivered) or the consumer stops.
          if (this.isTransient(err) && d.gen === this.gen && !this.stopped) {
            this.deps.metrics.consumed.inc({ queue: this.queue, outcome: 'transient' });
            this.logger.warn(
              { queue: this.queue, messageId: envelope.id, err, retryInMs: dbWait },
              'consumer: transient failure, waiting',
            );
            await sleep(dbWait, signal);
            dbWait = Math.min(dbWait * 2, 5_000);
            if (signal.aborted || d.gen !== this.gen) throw new StoppedError(); // stopped, or redelivered on a new channel
            continue;
          }
          // Inline mode: retry right here (the message stays unacked and holds the queue, so order is kept).
          if (this.opts.retryMode !== 'inline' || isPermanent(err) || attempt + 1 > this.retry.attempts) {
            throw err;
          }
          if (d.gen !== this.gen || this.stopped) throw new StoppedError(); // it will be redelivered
          attempt++;
          this.deps.metrics.consumed.inc({ queue: this.queue, outcome: 'retry' });
          this.logger.warn(
            { queue: this.queue, messageId: envelope.id, attempt, err },
            'consumer: handler failed, retrying in place',
          );
          await sleep(retryDelay(this.retry, attempt), signal);
          if (signal.aborted || this.stopped || d.gen !== this.gen) throw new StoppedError(); // redelivered later
        }
      }
    } catch (err) {
      span.recordException(err instanceof Error ? err : new Error(String(err)));
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(err) });
      if (d.gen !== this.gen) return; // its channel died meanwhile; redelivered, the inbox decides
      // Stopping mid-wait: the message goes back to the queue when the channel closes (no attempt spent).
      if (err instanceof StoppedError || (this.stopped && this.isTransient(err))) return;
      const failures = attempt + 1;
      if (err instanceof IdConflictError) this.deps.metrics.idConflicts.inc({ queue: this.queue });
      if (this.opts.retryMode !== 'inline' && !isPermanent(err) && failures <= this.retry.attempts) {
        await this.scheduleRetry(d, failures, err);
        return;
      }
      const reason =
        err instanceof PoisonError || err instanceof IdConflictError
          ? err.message
          : err instanceof PermanentError
            ? `permanent failure: ${err.message}`
            : `handler failed ${failures} times: ${errorMessage(err)}`;
      if (this.opts.onExhausted && (err instanceof PoisonError || !isPermanent(err))) {
        await this.halt(envelope, reason, err);
        return;
      }
      await this.deadLetterAndAck(d, { parsed: x.parsed, body: x.body, reason, attempts: failures });
      return;
    }
    this.deps.metrics.consumed.inc({ queue: this.queue, outcome });
    if (outcome === 'ok') await this.opts.hooks?.afterCommit?.(envelope);
    this.ack(d);
  }

  /**
   * Stop for good without settling the message in hand: closing the channel returns it (and everything prefetched)
   * to the head of the queue for whoever resumes the queue. See ConsumeOptions.onExhausted.
   */
  private async halt(envelope: Envelope, reason: string, err: unknown): Promise<void> {
    this.deps.metrics.consumed.inc({ queue: this.queue, outcome: 'halted' });
    this.logger.error({ queue: this.queue, messageId: envelope.id, reason, err }, 'consumer: HALTED on a message');
    this.stopped = true;
    this.stopping.abort();
    this.deps.connection.unregister(this);
    const ch = this.ch;
    this.ch = undefined;
    this.backlog = [];
    if (ch) await ch.close().catch(() => {});
    try {
      await this.opts.onExhausted!({ envelope, reason, error: err });
    } catch (e) {
      this.logger.error({ err: e, queue: this.queue }, 'consumer: onExhausted failed');
    }
  }

  private attemptOnce(
    d: Delivery,
    envelope: Envelope,
    x: { attempt: number; deliveryCount: number; headers: Record<string, unknown>; span: Span },
  ): Promise<'ok' | 'duplicate'> {
    const { span } = x;
    return withTransaction(
      this.deps.pool,
      async (client, ins) => {
        if (ins!.rowCount === 0) {
          await this.checkDuplicates(client, [envelope]);
          return 'duplicate' as const;
        }
        await this.opts.handler(envelope, client, {
          queue: this.queue,
          attempt: x.attempt,
          deliveryCount: x.deliveryCount,
          redelivered: d.msg.fields.redelivered,
          headers: x.headers,
          span,
        });
        if (d.counted) await this.clearStarts(client, [envelope.id]);
        return 'ok' as const;
      },
      { ...(this.opts.isolation ? { isolation: this.opts.isolation } : {}), opening: this.inboxInsert([{ envelope }]) },
    );
  }

  private async scheduleRetry(d: Delivery, failures: number, err: unknown): Promise<void> {
    const { msg } = d;
    const target = retryQueueName(this.queue, failures);
    try {
      const res = await this.deps.publisher.publish(DEFAULT_EXCHANGE, target, msg.content, {
        ...msg.properties,
        messageId: (msg.properties.messageId as string | undefined) ?? `retry-${failures}`,
        persistent: true,
        headers: {
          ...cleanHeaders(msg.properties.headers as Record<string, unknown>),
          [ATTEMPT_HEADER]: failures,
          [LAST_ERROR_HEADER]: errorMessage(err).slice(0, 500),
        },
      });
      if (res.returned) throw new Error(`retry queue ${target} does not exist`);
      this.deps.metrics.consumed.inc({ queue: this.queue, outcome: 'retry' });
      this.logger.warn(
        { queue: this.queue, messageId: msg.properties.messageId as string | undefined, attempt: failures, err },
        'consumer: handler failed, retry scheduled',
      );
      this.ack(d);
    } catch (pubErr) {
      this.logger.error({ err: pubErr, queue: this.queue }, 'consumer: could not schedule a retry; requeueing');
      await sleep(1_000);
      this.nackRequeue(d);
    }
  }

  /** Record in the dead-letter table, copy to `<queue>.dlq`, then ack. */
  private async deadLetterAndAck(
    d: Delivery,
    x: { parsed: unknown; body: string; reason: string; attempts: number },
  ): Promise<void> {
    const { msg } = d;
    const env = x.parsed && typeof x.parsed === 'object' ? (x.parsed as Partial<Envelope>) : undefined;
    const messageId =
      (typeof env?.id === 'string' ? env.id : undefined) ??
      (msg.properties.messageId as string | undefined) ??
      `sha256:${createHash('sha256').update(msg.content).digest('hex')}`;
    const headers = cleanHeaders(msg.properties.headers as Record<string, unknown>);
    try {
      await this.deps.pool.query(
        `INSERT INTO ${qualify(this.deps.schema, DEAD_LETTER_TABLE)}
           (queue, message_id, type, message, body, headers, reason, attempts, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'dead')
         ON CONFLICT (queue, message_id) DO UPDATE
           SET status = 'dead', reason = EXCLUDED.reason, attempts = EXCLUDED.attempts, message = EXCLUDED.message,
               body = EXCLUDED.body, headers = EXCLUDED.headers, dead_lettered_at = now()`,
        [
          this.queue,
          messageId,
          typeof env?.type === 'string' ? env.type : null,
          env ? JSON.stringify(env) : null,
          env ? null : x.body,
          JSON.stringify(headers),
          x.reason,
          x.attempts,
        ],
      );
      if (d.counted) {
        await this.deps.pool.query(
          `DELETE FROM ${qualify(this.deps.schema, MESSAGE_ATTEMPTS_TABLE)} WHERE queue = $1 AND message_id = $2`,
          [this.queue, messageId],
        );
      }
      const res = await this.deps.publisher.publish(DEFAULT_EXCHANGE, deadLetterQueueName(this.queue), msg.content, {
        ...msg.properties,
        messageId,
        persistent: true,
        headers: {
          ...headers,
          [DEAD_LETTER_REASON_HEADER]: x.reason.slice(0, 1000),
          [ATTEMPT_HEADER]: x.attempts,
          [ORIGINAL_QUEUE_HEADER]: this.queue,
        },
      });
      if (res.returned) {
        this.logger.warn({ queue: this.queue }, 'consumer: DLQ missing; the dead letter is in the table only');
      }
      this.deps.metrics.deadLetters.inc({ queue: this.queue });
      this.deps.metrics.consumed.inc({ queue: this.queue, outcome: 'dead_letter' });
      this.logger.error({ queue: this.queue, messageId, reason: x.reason }, 'consumer: message dead-lettered');
      this.ack(d);
    } catch (err) {
      if (isDatabaseUnavailable(err) && d.gen === this.gen && !this.stopped) {
        this.logger.warn({ err, queue: this.queue }, 'consumer: database unavailable while dead-lettering, waiting');
        await sleep(1_000);
        return this.deadLetterAndAck(d, x);
      }
      this.logger.error({ err, queue: this.queue }, 'consumer: could not dead-letter; requeueing');
      await sleep(1_000);
      this.nackRequeue(d);
    }
  }
}

/**
 * A handler that dispatches by contract: `dispatch([[OrderPlacedV1, onPlaced], [OrderCancelledV1, onCancelled]])`.
 * Each handler gets its message typed. A message of another type is dead-lettered (PermanentError) unless
 * `otherwise` handles it.
 */
export function dispatch(
  routes: ReadonlyArray<
    readonly [MessageContract<TSchema>, (message: never, client: pg.PoolClient, ctx: DeliveryContext) => Promise<void>]
  >,
  otherwise?: MessageHandler,
): MessageHandler {
  const byKey = new Map<string, (message: never, client: pg.PoolClient, ctx: DeliveryContext) => Promise<void>>();
  for (const [contract, handler] of routes) byKey.set(contract.key, handler);
  return async (message, client, ctx) => {
    const handler = byKey.get(`${message.type}@v${message.version}`);
    if (handler) return handler(message as never, client, ctx);
    if (otherwise) return otherwise(message, client, ctx);
    throw new PermanentError(`no handler for ${message.type} v${message.version} on ${ctx.queue}`);
  };
}

/** Typed route entry for `dispatch`: `on(OrderPlacedV1, async (msg, client) => …)` (msg is typed). */
export function on<T extends TSchema>(
  contract: MessageContract<T>,
  handler: (message: Envelope<Static<T>>, client: pg.PoolClient, ctx: DeliveryContext) => Promise<void>,
): readonly [MessageContract<TSchema>, (message: never, client: pg.PoolClient, ctx: DeliveryContext) => Promise<void>] {
  return [
    contract as unknown as MessageContract<TSchema>,
    handler as (message: never, client: pg.PoolClient, ctx: DeliveryContext) => Promise<void>,
  ] as const;
}
