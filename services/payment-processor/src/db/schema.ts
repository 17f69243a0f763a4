import { sql } from 'drizzle-orm';
import { bigint, index, jsonb, numeric, pgSchema, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';
import { deadLetterTable, inboxTable, messageAttemptsTable, outboxTable } from '@exchange/messaging';

export const PAYMENT_SCHEMA = 'payment';
export const paymentSchema = pgSchema(PAYMENT_SCHEMA);

export const outbox = outboxTable(paymentSchema);
export const inbox = inboxTable(paymentSchema);
export const deadLetters = deadLetterTable(paymentSchema);
export const messageAttempts = messageAttemptsTable(paymentSchema);

/**
 * One row per market: the journal position. Every engine command locks it (SELECT … FOR UPDATE) in its transaction,
 * so two replicas can never append to one market's journal at once, and a replica notices that another advanced it.
 */
export const engineState = paymentSchema.table('engine_state', {
  market: text('market').primaryKey(),
  /** Journal sequence of the last applied command (0: none). */
  lastSeq: bigint('last_seq', { mode: 'number' }).notNull().default(0),
  /** The order book's event sequence after that command. */
  bookSeq: bigint('book_seq', { mode: 'number' }).notNull().default(0),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  /**
   * Id generation of the engine's ids (trade ids, message ids): a fresh random value every time an engine loads its
   * state from the database (start, takeover, recovery, and so after a restore or reset), journaled with each
   * command, so an id never names two different trades even when journal sequence numbers are reused. Null: legacy.
   */
  epoch: text('epoch'),
  /**
   * Set when the market is halted because a command keeps failing for a reason that is not its content: no replica
   * consumes the market until an admin resumes it (POST /api/v1/admin/engine/markets/:market/resume).
   */
  haltedReason: text('halted_reason'),
  haltedAt: timestamp('halted_at', { withTimezone: true }),
});

/** Append-only: every engine command with the events it produced, in application order (gapless seq per market). */
export const engineJournal = paymentSchema.table(
  'engine_journal',
  {
    market: text('market').notNull(),
    seq: bigint('seq', { mode: 'number' }).notNull(),
    messageId: text('message_id').notNull(),
    /** The command as the engine core applies it (kind, order payload, pre-cancel flag). */
    command: jsonb('command').notNull(),
    /** Order-book events of the command, exactly as the engine emitted them. */
    events: jsonb('events').notNull(),
    bookSeq: bigint('book_seq', { mode: 'number' }).notNull(),
    /** Replica that applied it. */
    appliedBy: text('applied_by').notNull(),
    appliedAt: timestamp('applied_at', { withTimezone: true }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.market, t.seq] }), index('engine_journal_message_idx').on(t.messageId)],
);

/** Engine state (order book + per-order fill totals) after journal command `seq`. */
export const engineSnapshots = paymentSchema.table(
  'engine_snapshots',
  {
    market: text('market').notNull(),
    seq: bigint('seq', { mode: 'number' }).notNull(),
    bookSeq: bigint('book_seq', { mode: 'number' }).notNull(),
    /** `CoreSnapshot` as JSON text (lz4-compressed where the server supports it): written and read whole, never queried. */
    state: text('state').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.market, t.seq] })],
);

/** Orders the engine has seen: dedupes place and cancel by order id (whatever the message id). */
export const engineOrders = paymentSchema.table('engine_orders', {
  orderId: text('order_id').primaryKey(),
  market: text('market').notNull(),
  userId: text('user_id').notNull(),
  /** Journal seq of its place command (null: a cancel arrived first). */
  placedSeq: bigint('placed_seq', { mode: 'number' }),
  /** Journal seq of its (first) cancel command. */
  cancelSeq: bigint('cancel_seq', { mode: 'number' }),
});

/** Payouts sent to the (simulated) rail; one per withdrawal, whatever the redeliveries. */
export const payouts = paymentSchema.table(
  'payouts',
  {
    withdrawalId: text('withdrawal_id').primaryKey(),
    userId: text('user_id').notNull(),
    asset: text('asset').notNull(),
    amount: numeric('amount', { precision: 38, scale: 0 }).notNull(),
    address: text('address').notNull(),
    status: text('status', { enum: ['completed', 'failed'] }).notNull(),
    railTxId: text('rail_tx_id'),
    failureReason: text('failure_reason'),
    requestMessageId: text('request_message_id').notNull(),
    requestedAt: timestamp('requested_at', { withTimezone: true }).notNull(),
    processedAt: timestamp('processed_at', { withTimezone: true })
      .notNull()
      .default(sql`now()`),
  },
  (t) => [index('payouts_processed_at_idx').on(t.processedAt)],
);
