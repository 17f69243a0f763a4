import type { ConsumeOptions, QueueSpec } from '@exchange/messaging';
import { EVENTS_EXCHANGE } from '@exchange/messaging';
import type { orderEventsHandler } from './order-events.ts';

/** The order service's queue: the engine's events, applied to the read models (order-events.ts). */
export const EVENTS_QUEUE = 'order.events';
export const EVENT_BINDINGS = [
  'engine.order-updated.#',
  'engine.order-amended.#',
  'engine.trade-executed.#',
  'market.book-snapshot.#',
];

/** The queue as declared (single active consumer: events of a market are applied in order). */
export function eventsQueue(retry: QueueSpec['retry']): QueueSpec {
  return {
    name: EVENTS_QUEUE,
    bindings: EVENT_BINDINGS.map((routingKey) => ({ exchange: EVENTS_EXCHANGE, routingKey })),
    singleActiveConsumer: true,
    retry,
  };
}

/** How `order.events` is consumed: `batch` events per transaction at most (group commit). */
export function eventsConsumer(handle: ReturnType<typeof orderEventsHandler>, batch: number): ConsumeOptions {
  return {
    queue: EVENTS_QUEUE,
    batch,
    // room for a full batch waiting behind the one in hand
    prefetch: Math.max(10, 2 * batch),
    handler: async (message, client) => {
      await handle(message, client);
    },
    batchHandler: handle.batch,
  };
}
