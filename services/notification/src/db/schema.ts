import { sql } from 'drizzle-orm';
import { check, index, integer, pgSchema, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { deadLetterTable, inboxTable } from '@exchange/messaging';

export const notificationSchema = pgSchema('notification');
export const NOTIFICATION_SCHEMA = 'notification';

const ts = (name: string) => timestamp(name, { withTimezone: true });

/** Ids of the events already turned into mails (one mail per event id). */
export const inbox = inboxTable(notificationSchema);
/** Events that could not be turned into a mail after the retries (listable, replayable). */
export const deadLetters = deadLetterTable(notificationSchema);

/**
 * The durable send queue: one row per mail, written in the consumer's transaction with its inbox row. The sender
 * claims due rows (FOR UPDATE SKIP LOCKED), sends over SMTP and marks them sent; a failed attempt backs off
 * exponentially (next_attempt_at) until MAIL_MAX_ATTEMPTS, then the row is `failed` (alerted on, re-queueable).
 * The bodies (they hold the links) are cleared once the mail is sent.
 */
export const mails = notificationSchema.table(
  'mails',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    /** The event's message id: unique, so an event never makes two mails. */
    eventId: text('event_id').notNull(),
    eventType: text('event_type').notNull(),
    template: text('template').notNull(),
    userId: uuid('user_id'),
    toAddress: text('to_address').notNull(),
    subject: text('subject').notNull(),
    textBody: text('text_body'),
    htmlBody: text('html_body'),
    /** pending → sent | failed */
    status: text('status').notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: ts('next_attempt_at').notNull().defaultNow(),
    lastError: text('last_error'),
    /** Message-ID header (`<event id@MAIL_MESSAGE_ID_DOMAIN>`), stable across retries. */
    messageId: text('message_id').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
    sentAt: ts('sent_at'),
  },
  (t) => [
    uniqueIndex('mails_event_id_key').on(t.eventId),
    index('mails_due_idx')
      .on(t.nextAttemptAt)
      .where(sql`${t.status} = 'pending'`),
    index('mails_created_at_idx').on(t.createdAt),
    check('mails_status_check', sql`${t.status} IN ('pending', 'sent', 'failed')`),
  ],
);
