import type { Envelope } from '@exchange/contracts';
import type { Message } from 'amqplib';

/**
 * A pack: several messages for the same exchange and routing key in one AMQP message, so the broker stores,
 * replicates and delivers one message instead of many. Each message inside keeps its own id, type, headers and
 * trace context, and consumers handle each one as if it had come alone (inbox, retries, dead letters): the pack is
 * only how they travel. The relay packs the rows of one batch per destination (in sequence order, so order per
 * routing key holds); the consumer acks the AMQP message once every message in it is settled.
 */
export const PACK_CONTENT_TYPE = 'application/vnd.exchange.pack+json';

/** One message of a pack: its envelope and the AMQP headers it would have had alone. */
export interface PackedMessage {
  headers: Record<string, unknown>;
  message: Envelope;
}

export function encodePack(items: PackedMessage[]): Buffer {
  return Buffer.from(JSON.stringify({ pack: 1, messages: items }));
}

/**
 * The messages a delivery carries: one for a plain message, each of a pack's in order. A pack whose body does not
 * decode is returned as it came, so the consumer dead-letters it as an invalid message instead of losing it.
 */
export function unpack<M extends Message>(msg: M): M[] {
  if (msg.properties.contentType !== PACK_CONTENT_TYPE) return [msg];
  let items: PackedMessage[];
  try {
    const body = JSON.parse(msg.content.toString('utf8')) as { pack?: unknown; messages?: unknown };
    if (body.pack !== 1 || !Array.isArray(body.messages) || body.messages.length === 0) return [msg];
    items = body.messages as PackedMessage[];
    if (!items.every((i) => i && typeof i === 'object' && i.message && typeof i.message === 'object')) return [msg];
  } catch {
    return [msg];
  }
  return items.map((i) => {
    const id = typeof i.message.id === 'string' ? i.message.id : undefined;
    const type = typeof i.message.type === 'string' ? i.message.type : undefined;
    return {
      fields: msg.fields,
      content: Buffer.from(JSON.stringify(i.message)),
      properties: {
        ...msg.properties,
        contentType: 'application/json',
        messageId: id,
        type,
        correlationId: i.message.correlationId,
        // what the broker added to the pack (x-delivery-count, x-death) holds for each message in it
        headers: { ...brokerHeaders(msg.properties.headers), ...i.headers },
      },
    } as M;
  });
}

/** Headers the broker adds to a message it delivers again or dead-letters (its bookkeeping, not the producer's). */
export function isBrokerHeader(key: string): boolean {
  return (
    key === 'x-death' || key === 'x-delivery-count' || key.startsWith('x-first-death') || key.startsWith('x-last-death')
  );
}

function brokerHeaders(headers: Record<string, unknown> | undefined): Record<string, unknown> {
  return Object.fromEntries(Object.entries(headers ?? {}).filter(([k]) => isBrokerHeader(k)));
}

/** The envelopes of a delivery (a pack's in order), for consumers that read the bus without the inbox consumer. */
export function envelopesOf(msg: Message): Envelope[] {
  return unpack(msg).map((m) => JSON.parse(m.content.toString('utf8')) as Envelope);
}
