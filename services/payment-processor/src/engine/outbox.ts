/**
 * Outbox rows for the engine's messages, written in as few statements as possible: one engine command's messages go
 * in one multi-row INSERT (combined with the journal write, see MarketEngine) and one NOTIFY. Same rows as
 * `@exchange/messaging`'s `enqueue` (the relay publishes them in `sequence` order); the messages were built and
 * validated by their contracts' `create()`. A command with many fills would otherwise pay two round trips per message.
 */
import { context, propagation } from '@opentelemetry/api';
import { OUTBOX_TABLE, outboxChannel } from '@exchange/messaging';
import type { PoolClient } from '@exchange/db';
import { PAYMENT_SCHEMA } from '../db/schema.ts';
import type { OutgoingMessage } from './messages.ts';

export const OUTBOX_CHANNEL = outboxChannel(PAYMENT_SCHEMA);

/**
 * `INSERT INTO payment.outbox … VALUES (…), (…) RETURNING 1` for `messages`, appending its parameters to `params`.
 * VALUES rows take their `sequence` in list order, so the relay publishes them in this order. Trace context of the
 * active span goes into the headers.
 */
export function outboxInsert(messages: OutgoingMessage[], params: unknown[]): string {
  const headers: Record<string, string> = {};
  propagation.inject(context.active(), headers);
  params.push(JSON.stringify(headers));
  const h = params.length;
  const rows: string[] = [];
  for (const m of messages) {
    const b = params.length;
    rows.push(`($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}, $${h})`);
    params.push(m.message.id, m.message.type, m.exchange, m.routingKey, JSON.stringify(m.message));
  }
  return `INSERT INTO "${PAYMENT_SCHEMA}"."${OUTBOX_TABLE}" (message_id, type, exchange, routing_key, message, headers)
          VALUES ${rows.join(', ')} RETURNING 1`;
}

/** Write `messages` to the outbox in the caller's transaction, in order, and wake the relay (on commit). */
export async function enqueueAll(client: PoolClient, messages: OutgoingMessage[]): Promise<void> {
  if (messages.length === 0) return;
  const params: unknown[] = [OUTBOX_CHANNEL];
  const insert = outboxInsert(messages, params);
  await client.query(`WITH o AS (${insert}) SELECT pg_notify($1, '') WHERE EXISTS (SELECT 1 FROM o)`, params);
}
