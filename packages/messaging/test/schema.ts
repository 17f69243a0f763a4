// Drizzle schema of the messaging tests: the three messaging tables in a service-like schema, exactly as a service
// declares them. `migrations/` is generated from this file by drizzle-kit (see drizzle.config.ts).
import { pgSchema, text, integer } from 'drizzle-orm/pg-core';
import { deadLetterTable, inboxTable, messageAttemptsTable, outboxTable } from '../src/tables.ts';

export const svc = pgSchema('svc');
export const outbox = outboxTable(svc);
export const inbox = inboxTable(svc);
export const deadLetters = deadLetterTable(svc);
export const messageAttempts = messageAttemptsTable(svc);

/** The "state" the test handlers change, so exactly-once effects can be asserted. */
export const effects = svc.table('effects', {
  messageId: text('message_id').primaryKey(),
  seq: integer('seq').notNull(),
  applied: integer('applied').notNull().default(1),
});
