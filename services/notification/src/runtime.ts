/**
 * Everything the service runs, wired: the mail consumer on `notification.mails` (messaging/) and the SMTP sender. main.ts and the
 * tests build it the same way (the tests with their own pool, vhost and SMTP server).
 */
import type pg from 'pg';
import { createMessaging, type Consumer, type Logger, type Messaging, type QueueSpec } from '@exchange/messaging';
import type { promClient } from '@exchange/platform';
import type { Contacts } from './contacts.ts';
import { createMailMetrics } from './metrics.ts';
import { startConsumers } from './messaging/queues.ts';
import { MailSender, type Transport } from './sender.ts';
import { NOTIFICATION_SCHEMA } from './db/schema.ts';

export interface RuntimeOptions {
  pool: pg.Pool;
  amqpUrl: string;
  registry: promClient.Registry;
  logger: Logger & { warn(o: object, m?: string): void };
  contacts: Contacts;
  transport: Transport;
  from: string;
  product: string;
  webUrl: string;
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  pollMs: number;
  concurrency?: number;
  retentionDays?: number;
  /** Tests shorten the consumer's retry backoff. */
  queueOverrides?: Partial<Pick<QueueSpec, 'retry' | 'deliveryLimit'>>;
}

export interface Runtime {
  messaging: Messaging;
  sender: MailSender;
  consumer?: Consumer;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createRuntime(o: RuntimeOptions): Runtime {
  const messaging = createMessaging({
    url: o.amqpUrl,
    service: 'notification',
    pool: o.pool,
    schema: NOTIFICATION_SCHEMA,
    registry: o.registry,
    logger: o.logger,
    relay: false, // it publishes nothing
  });
  const metrics = createMailMetrics(o.registry, o.pool);
  const sender = new MailSender({
    pool: o.pool,
    transport: o.transport,
    from: o.from,
    metrics,
    maxAttempts: o.maxAttempts,
    retryBaseMs: o.retryBaseMs,
    retryMaxMs: o.retryMaxMs,
    pollMs: o.pollMs,
    ...(o.concurrency ? { concurrency: o.concurrency } : {}),
    ...(o.retentionDays ? { retentionDays: o.retentionDays } : {}),
    log: o.logger,
  });
  const domain = /@([^>\s]+)>?\s*$/.exec(o.from)?.[1] ?? 'exchange.local';
  const rt: Runtime = {
    messaging,
    sender,
    async start() {
      rt.consumer = await startConsumers(
        messaging,
        { contacts: o.contacts, product: o.product, webUrl: o.webUrl, messageIdDomain: domain },
        o.queueOverrides,
      );
      await messaging.start({ waitForBroker: false });
      await sender.start();
    },
    async stop() {
      await rt.consumer?.stop();
      await sender.stop();
      await messaging.close();
    },
  };
  return rt;
}
