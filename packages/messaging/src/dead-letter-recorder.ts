import { createHash } from 'node:crypto';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type pg from 'pg';
import type { PgSchema } from 'drizzle-orm/pg-core';
import type { ConnectionResource } from './connection.ts';
import { ATTEMPT_HEADER, DEAD_LETTER_REASON_HEADER, ORIGINAL_QUEUE_HEADER } from './consumer.ts';
import { errorMessage, sleep, type Logger } from './logger.ts';
import { unpack } from './pack.ts';
import type { MessagingMetrics } from './metrics.ts';
import { DEAD_LETTER_TABLE, qualify } from './tables.ts';
import { deadLetterQueueName } from './topology.ts';

interface RecorderDeps {
  pool: pg.Pool;
  schema: string | PgSchema;
  metrics: MessagingMetrics;
  logger: Logger;
}

interface XDeath {
  queue?: string;
  reason?: string;
  count?: number;
}

/**
 * Moves everything that lands in `<queue>.dlq` into the service's dead-letter table. The consumer records its own
 * dead letters there before copying them to the DLQ; RabbitMQ dead-letters on its own too (a quorum queue's delivery
 * limit), and those would otherwise sit in the DLQ unseen: no row for the dead-letter API, no `jobs_dead_letter_total`,
 * no alert. A message already in the table (the consumer's copy) is only acknowledged; a new one gets its row, is
 * counted and logged. The table is then the one list of dead letters; the DLQ stays empty.
 */
export class DeadLetterRecorder implements ConnectionResource {
  readonly name: string;
  private readonly queue: string;
  private readonly deps: RecorderDeps;
  private channel: Channel | undefined;

  constructor(queue: string, deps: RecorderDeps) {
    this.queue = queue;
    this.deps = deps;
    this.name = `dead-letter-recorder:${queue}`;
  }

  async open(conn: ChannelModel): Promise<void> {
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    await ch.prefetch(20);
    await ch.consume(deadLetterQueueName(this.queue), (msg) => {
      if (msg) void this.record(ch, msg);
    });
    this.channel = ch;
  }

  lost(): void {
    this.channel = undefined;
  }

  /**
   * Record what the broker dead-lettered: a pack (pack.ts) as one row per message in it, so each can be listed and
   * replayed by its own id (the inbox skips those the consumer had already applied).
   */
  private async record(ch: Channel, msg: ConsumeMessage): Promise<void> {
    const rows = unpack(msg).map((part) => this.row(part));
    for (;;) {
      try {
        for (const r of rows) {
          const { rowCount } = await this.deps.pool.query(
            `INSERT INTO ${qualify(this.deps.schema, DEAD_LETTER_TABLE)}
               (queue, message_id, type, message, body, headers, reason, attempts, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'dead')
             ON CONFLICT (queue, message_id) DO NOTHING`,
            r.values,
          );
          if (rowCount) {
            this.deps.metrics.deadLetters.inc({ queue: r.queue });
            this.deps.logger.error(
              { queue: r.queue, messageId: r.messageId, reason: r.reason },
              'messaging: dead letter recorded from the DLQ',
            );
          }
        }
        if (this.channel === ch) ch.ack(msg);
        return;
      } catch (err) {
        // Database away: keep the message (unacked) and try again; a lost channel requeues it by itself.
        this.deps.logger.warn(
          { err: errorMessage(err), queue: this.queue },
          'messaging: could not record a dead letter, retrying',
        );
        if (this.channel !== ch) return;
        await sleep(1_000);
      }
    }
  }

  private row(msg: ConsumeMessage): { queue: string; messageId: string; reason: string; values: unknown[] } {
    const headers = (msg.properties.headers ?? {}) as Record<string, unknown>;
    const death = (Array.isArray(headers['x-death']) ? headers['x-death'][0] : undefined) as XDeath | undefined;
    const body = msg.content.toString('utf8');
    let env: { id?: unknown; type?: unknown } | undefined;
    try {
      const parsed: unknown = JSON.parse(body);
      if (parsed && typeof parsed === 'object') env = parsed as { id?: unknown; type?: unknown };
    } catch {
      // not JSON: kept as the raw body
    }
    const messageId =
      (typeof env?.id === 'string' ? env.id : undefined) ??
      (msg.properties.messageId as string | undefined) ??
      `sha256:${createHash('sha256').update(msg.content).digest('hex')}`;
    const queue = (headers[ORIGINAL_QUEUE_HEADER] as string | undefined) ?? death?.queue ?? this.queue;
    const reason =
      (headers[DEAD_LETTER_REASON_HEADER] as string | undefined) ??
      `dead-lettered by the broker (${death?.reason ?? 'unknown reason'})`;
    const attempts = Number(headers[ATTEMPT_HEADER] ?? headers['x-delivery-count'] ?? death?.count ?? 0) || 0;
    return {
      queue,
      messageId,
      reason,
      values: [
        queue,
        messageId,
        typeof env?.type === 'string' ? env.type : null,
        env ? JSON.stringify(env) : null,
        env ? null : body,
        JSON.stringify(headers),
        reason.slice(0, 1000),
        attempts,
      ],
    };
  }
}
