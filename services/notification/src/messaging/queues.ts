/** The notification service's queue, `notification.mails`, and its consumer (handler: mails.ts). */
import { AUTH_EVENTS } from '@exchange/contracts/auth';
import { WITHDRAWAL_EVENTS } from '@exchange/contracts/wallet';
import { EVENTS_EXCHANGE, type Consumer, type Messaging, type QueueSpec } from '@exchange/messaging';
import { mailsHandler, type HandlerOptions } from './mails.ts';

export const MAIL_QUEUE: QueueSpec = {
  name: 'notification.mails',
  bindings: [...AUTH_EVENTS, ...WITHDRAWAL_EVENTS].map((c) => ({ exchange: EVENTS_EXCHANGE, routingKey: c.type })),
  deliveryLimit: 10,
  // turning an event into a mail row only fails when the database or the auth service (address lookup) is away
  retry: { attempts: 8, backoffMs: [1_000, 5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 3_600_000] },
};

/**
 * Declare the queue and start its consumer (four events at a time). `overrides` lets tests shorten the retry
 * backoff.
 */
export async function startConsumers(
  messaging: Messaging,
  handler: HandlerOptions,
  overrides: Partial<Pick<QueueSpec, 'retry' | 'deliveryLimit'>> = {},
): Promise<Consumer> {
  const queue = { ...MAIL_QUEUE, ...overrides };
  await messaging.declareQueue(queue);
  return messaging.consume({
    queue: queue.name,
    handler: mailsHandler(handler),
    concurrency: 4,
    prefetch: 20,
  });
}
