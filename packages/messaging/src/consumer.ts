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
import type pg from 'pg';
import type { PgSchema } from 'drizzle-orm/pg-core';
import type { ConnectionResource, RabbitConnection } from './connection.ts';
import type { ConfirmPublisher } from './publisher.ts';
import { errorMessage, sleep, stderrLogger, type Logger } from './logger.ts';
import type { MessagingMetrics } from './metrics.ts';
import { DEAD_LETTER_TABLE, INBOX_TABLE, qualify } from './tables.ts';
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
  /** Deliveries of this copy before this one without a settle (consumer crash, lost connection). */
  deliveryCount: number;
  redelivered: boolean;
  headers: Record<string, unknown>;
  /** The consumer span (child of the producer's trace). */
  span: Span;
}

export type MessageHandler = (message: Envelope, client: pg.PoolClient, ctx: DeliveryContext) => Promise<void>;

export interface ConsumeOptions {
  queue: string;
  /** Unacked deliveries the broker may push ahead (default 10). */
  prefetch?: number;
  /** Handlers running at once (default 1: strictly in delivery order, required for per-market queues). */
  concurrency?: number;
  handler: MessageHandler;
  /** Defaults to the policy the queue was declared with (or DEFAULT_RETRY). */
  retry?: RetryPolicy;
  /** Defaults to the queue's declared delivery limit (or 10). */
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

const isPermanent = (err: unknown) => err instanceof PoisonError || err instanceof PermanentError;
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
    if (k === 'x-death' || k === 'x-delivery-count' || k.startsWith('x-first-death') || k.startsWith('x-last-death'))
      continue;
    out[k] = v;
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
        this.backlog.push({ msg, ch, gen });
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
    try {
      d.ch.ack(d.msg);
    } catch (err) {
      this.logger.warn({ err, queue: this.queue }, 'consumer: ack failed (channel closed); it will be redelivered');
    }
  }

  private nackRequeue(d: Delivery): void {
    if (d.gen !== this.gen) return;
    try {
      d.ch.nack(d.msg, false, true);
    } catch {
      // channel closed: redelivered anyway
    }
  }

  /**
   * Group commit (see ConsumeOptions.batch): validate, then one transaction for the whole batch — a multi-row inbox
   * insert tells the duplicates apart, the handler runs for each new message in delivery order — then ack them all.
   * Anything unusual (an invalid message, a redelivery close to the delivery limit, a failure) rolls the batch back
   * and hands its messages to the one-by-one path in the same order, which applies, retries or dead-letters each as
   * it always would; messages the batch applied are never applied again because nothing of the batch committed.
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
        // an earlier failure or a copy near its delivery limit takes the careful path
        if (attempt > 0 || deliveryCount >= this.deliveryLimit - 1) plain = false;
      } catch {
        plain = false;
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
    try {
      for (;;) {
        try {
          return await withTransaction(
            this.deps.pool,
            async (client) => {
              const params: string[] = [this.queue];
              const values = items.map((it) => {
                params.push(it.envelope.id, it.envelope.type);
                return `($1, $${params.length - 1}, $${params.length})`;
              });
              const ins = await client.query<{ message_id: string }>(
                `INSERT INTO ${qualify(this.deps.schema, INBOX_TABLE)} (queue, message_id, type)
                   VALUES ${values.join(', ')} ON CONFLICT DO NOTHING RETURNING message_id`,
                params,
              );
              const fresh = new Set(ins.rows.map((r) => r.message_id));
              const applied = new Set<string>();
              for (const it of items) {
                // a message id twice in one batch (a redelivered copy next to the original) is applied once
                if (!fresh.has(it.envelope.id) || applied.has(it.envelope.id)) continue;
                applied.add(it.envelope.id);
                await this.opts.handler(it.envelope, client, {
                  queue: this.queue,
                  attempt: it.attempt,
                  deliveryCount: it.deliveryCount,
                  redelivered: it.d.msg.fields.redelivered,
                  headers: (it.d.msg.properties.headers ?? {}) as Record<string, unknown>,
                  span,
                });
              }
              return applied;
            },
            this.opts.isolation ? { isolation: this.opts.isolation } : {},
          );
        } catch (err) {
          if (isDatabaseUnavailable(err) && items[0]!.d.gen === this.gen && !this.stopped) {
            this.logger.warn({ queue: this.queue, err, retryInMs: dbWait }, 'consumer: database unavailable, waiting');
            await sleep(dbWait, this.stopping.signal);
            dbWait = Math.min(dbWait * 2, 5_000);
            if (this.stopped) return undefined;
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

    // 1. Contract validation: an invalid message can never succeed, so it is dead-lettered at once.
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
    try {
      for (;;) {
        try {
          outcome = await this.attemptOnce(d, envelope, { ...x, attempt });
          break;
        } catch (err) {
          // Database unreachable: not the message's fault. Hold it (unacked, no attempt counted) and try again
          // until the database is back, the channel dies (redelivered) or the consumer stops.
          if (isDatabaseUnavailable(err) && d.gen === this.gen && !this.stopped) {
            this.logger.warn({ queue: this.queue, err, retryInMs: dbWait }, 'consumer: database unavailable, waiting');
            await sleep(dbWait, this.stopping.signal);
            dbWait = Math.min(dbWait * 2, 5_000);
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
          await sleep(retryDelay(this.retry, attempt), this.stopping.signal);
          if (this.stopped) throw new StoppedError();
        }
      }
    } catch (err) {
      span.recordException(err instanceof Error ? err : new Error(String(err)));
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(err) });
      if (d.gen !== this.gen) return; // its channel died meanwhile; redelivered, the inbox decides
      // Stopping mid-wait: the message goes back to the queue when the channel closes (no attempt spent).
      if (err instanceof StoppedError || (this.stopped && isDatabaseUnavailable(err))) return;
      const failures = attempt + 1;
      if (this.opts.retryMode !== 'inline' && !isPermanent(err) && failures <= this.retry.attempts) {
        await this.scheduleRetry(d, failures, err);
      } else {
        await this.deadLetterAndAck(d, {
          parsed: x.parsed,
          body: x.body,
          reason:
            err instanceof PoisonError
              ? err.message
              : err instanceof PermanentError
                ? `permanent failure: ${err.message}`
                : `handler failed ${failures} times: ${errorMessage(err)}`,
          attempts: failures,
        });
      }
      return;
    }
    this.deps.metrics.consumed.inc({ queue: this.queue, outcome });
    if (outcome === 'ok') await this.opts.hooks?.afterCommit?.(envelope);
    this.ack(d);
  }

  private attemptOnce(
    d: Delivery,
    envelope: Envelope,
    x: { attempt: number; deliveryCount: number; headers: Record<string, unknown>; span: Span },
  ): Promise<'ok' | 'duplicate'> {
    const { span } = x;
    return withTransaction(
      this.deps.pool,
      async (client) => {
        const ins = await client.query(
          `INSERT INTO ${qualify(this.deps.schema, INBOX_TABLE)} (queue, message_id, type)
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
          [this.queue, envelope.id, envelope.type],
        );
        if (ins.rowCount === 0) return 'duplicate' as const;
        if (x.deliveryCount >= this.deliveryLimit) {
          throw new PoisonError(
            `delivery limit exceeded: delivered ${x.deliveryCount + 1} times without being acknowledged ` +
              '(the consumer crashed or lost its connection while handling it)',
          );
        }
        await this.opts.handler(envelope, client, {
          queue: this.queue,
          attempt: x.attempt,
          deliveryCount: x.deliveryCount,
          redelivered: d.msg.fields.redelivered,
          headers: x.headers,
          span,
        });
        return 'ok' as const;
      },
      this.opts.isolation ? { isolation: this.opts.isolation } : {},
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
