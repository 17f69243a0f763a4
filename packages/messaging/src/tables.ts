import { sql } from 'drizzle-orm';
import {
  bigserial,
  index,
  integer,
  jsonb,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  type PgSchema,
} from 'drizzle-orm/pg-core';

/*
 * Drizzle table factories. A service puts these in its drizzle schema file, e.g.
 *
 *   export const walletSchema = pgSchema('wallet');
 *   export const outbox = outboxTable(walletSchema);
 *   export const inbox = inboxTable(walletSchema);
 *   export const deadLetters = deadLetterTable(walletSchema);
 *
 * so `drizzle-kit generate` creates them in the service's own schema with its other migrations.
 * The runtime code in this package uses raw SQL against `"<schema>".outbox|inbox|dead_letters`; keep the
 * table names.
 */

export const OUTBOX_TABLE = 'outbox';
export const INBOX_TABLE = 'inbox';
export const DEAD_LETTER_TABLE = 'dead_letters';
export const MESSAGE_ATTEMPTS_TABLE = 'message_attempts';

/** Messages written in the same transaction as the state change; the relay publishes them in `sequence` order. */
export function outboxTable(schema: PgSchema) {
  return schema.table(
    OUTBOX_TABLE,
    {
      sequence: bigserial('sequence', { mode: 'bigint' }).primaryKey(),
      messageId: text('message_id').notNull(),
      type: text('type').notNull(),
      exchange: text('exchange').notNull(),
      routingKey: text('routing_key').notNull(),
      /** The full envelope. */
      message: jsonb('message').notNull(),
      /** AMQP headers: traceparent/tracestate and anything the producer adds. */
      headers: jsonb('headers')
        .notNull()
        .default(sql`'{}'::jsonb`),
      createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
      sentAt: timestamp('sent_at', { withTimezone: true }),
      publishAttempts: integer('publish_attempts').notNull().default(0),
      nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true }),
      lastError: text('last_error'),
    },
    (t) => [
      index('outbox_pending_idx')
        .on(t.sequence)
        .where(sql`${t.sentAt} is null`),
      index('outbox_sent_at_idx').on(t.sentAt),
    ],
  );
}

/** Ids of the messages a consumer has applied, written in the same transaction as their effect. */
export function inboxTable(schema: PgSchema) {
  return schema.table(
    INBOX_TABLE,
    {
      queue: text('queue').notNull(),
      messageId: text('message_id').notNull(),
      type: text('type').notNull(),
      processedAt: timestamp('processed_at', { withTimezone: true }).notNull().defaultNow(),
      /**
       * SHA-256 of the message's type, version and payload: a later message under the same id with other content
       * (an id reused after a restore) is told apart from a redelivery and dead-lettered, not dropped as a duplicate.
       * Null for rows written before the column existed.
       */
      digest: text('digest'),
    },
    (t) => [primaryKey({ columns: [t.queue, t.messageId] }), index('inbox_processed_at_idx').on(t.processedAt)],
  );
}

/**
 * Handling starts of redelivered messages that have not been applied yet, per message id: what poison detection
 * counts (a message that keeps crashing or failing its consumer), instead of the broker's delivery count, which also
 * counts every reconnect a message merely sat in the prefetch window for. Written outside the handler's transaction
 * (so a crash cannot roll it back), deleted with the message's effect; leftovers are purged by the relay's cleanup.
 */
export function messageAttemptsTable(schema: PgSchema) {
  return schema.table(
    MESSAGE_ATTEMPTS_TABLE,
    {
      queue: text('queue').notNull(),
      messageId: text('message_id').notNull(),
      starts: integer('starts').notNull().default(0),
      updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    },
    (t) => [primaryKey({ columns: [t.queue, t.messageId] }), index('message_attempts_updated_at_idx').on(t.updatedAt)],
  );
}

/** Messages that could not be processed (poison after N attempts, or invalid), listable and replayable. */
export function deadLetterTable(schema: PgSchema) {
  return schema.table(
    DEAD_LETTER_TABLE,
    {
      id: bigserial('id', { mode: 'bigint' }).primaryKey(),
      queue: text('queue').notNull(),
      messageId: text('message_id').notNull(),
      type: text('type'),
      /** The parsed envelope when the body was JSON; `body` keeps the raw text otherwise. */
      message: jsonb('message'),
      body: text('body'),
      headers: jsonb('headers')
        .notNull()
        .default(sql`'{}'::jsonb`),
      reason: text('reason').notNull(),
      attempts: integer('attempts').notNull(),
      /** `dead` (waiting for an operator) or `retried` (republished to its queue). */
      status: text('status').notNull().default('dead'),
      deadLetteredAt: timestamp('dead_lettered_at', { withTimezone: true }).notNull().defaultNow(),
      retriedAt: timestamp('retried_at', { withTimezone: true }),
      retryCount: integer('retry_count').notNull().default(0),
    },
    (t) => [
      uniqueIndex('dead_letters_queue_message_idx').on(t.queue, t.messageId),
      index('dead_letters_status_idx').on(t.status, t.id),
    ],
  );
}

/** Quote a schema name for raw SQL (validated: letters, digits, underscore). */
export function qualify(schema: string | PgSchema, table: string): string {
  const name = schemaName(schema);
  return `"${name}"."${table}"`;
}

export function schemaName(schema: string | PgSchema): string {
  const name = typeof schema === 'string' ? schema : schema.schemaName;
  if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name)) throw new Error(`invalid schema name "${name}"`);
  return name;
}

/** NOTIFY channel the outbox relay of a schema listens on. */
export const outboxChannel = (schema: string | PgSchema) => `outbox_${schemaName(schema)}`;
