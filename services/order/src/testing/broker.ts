/**
 * Test wiring of the real broker: a fresh vhost, this service's messaging (outbox relay, `order.events` consumer,
 * stream feed) exactly as main.ts wires it, and an engine stand-in that receives the commands of a market queue and
 * publishes engine events the way the payment-processor does (exchange.events, `<type>.<MARKET>`).
 */
import amqp from 'amqplib';
import type { Envelope } from '@exchange/contracts';
import {
  envelopesOf,
  createMessaging,
  declareExchanges,
  EVENTS_EXCHANGE,
  COMMANDS_EXCHANGE,
  silentLogger,
  type Messaging,
} from '@exchange/messaging';
import { createTestVhost, type TestVhost } from '@exchange/messaging/testing';
import { ORDERS_SCHEMA } from '../db/schema.ts';
import { orderEventsHandler } from '../messaging/order-events.ts';
import { eventsConsumer, eventsQueue } from '../messaging/queues.ts';
import { StreamFeed } from '../stream.ts';
import type { Harness } from './harness.ts';
import type { App } from '@exchange/platform';
import { loadCatalog } from '@exchange/contracts/markets';

export interface Broker {
  vhost: TestVhost;
  messaging: Messaging;
  /** Publish an engine event (as the payment-processor would). */
  publish(message: Envelope): Promise<void>;
  /** Commands that reached `orders.<market>` so far (drains the queue). */
  commands(market: string): Promise<Envelope[]>;
  close(): Promise<void>;
}

export async function startBroker(
  app: App,
  pool: Harness['db']['pool'],
  opts: { vhost?: TestVhost; markets?: string[]; engineStandIn?: boolean; batch?: number } = {},
): Promise<Broker> {
  const vhost = opts.vhost ?? (await createTestVhost('order'));
  const catalog = loadCatalog(undefined);
  const messaging = createMessaging({
    url: vhost.url,
    service: 'order',
    pool,
    schema: ORDERS_SCHEMA,
    logger: silentLogger,
    relay: { pollIntervalMs: 200 },
  });
  await messaging.declareQueue(eventsQueue({ attempts: 2, backoffMs: [200] }));
  await messaging.connection.register(new StreamFeed(app.streamHub, catalog, silentLogger));
  await messaging.start();
  // batches as in production (CONSUMER_BATCH_SIZE), so the tests run the batch form too
  await messaging.consume(eventsConsumer(orderEventsHandler({ catalog, log: silentLogger }), opts.batch ?? 100));

  // Engine stand-in.
  const conn = await amqp.connect(vhost.url);
  const ch = await conn.createConfirmChannel();
  await declareExchanges(ch);
  for (const m of opts.engineStandIn === false ? [] : (opts.markets ?? ['BTC-USD'])) {
    await ch.assertQueue(`orders.${m}`, { durable: true });
    await ch.bindQueue(`orders.${m}`, COMMANDS_EXCHANGE, `orders.${m}`);
  }
  return {
    vhost,
    messaging,
    async publish(message) {
      const market = (message.payload as { market: string }).market;
      ch.publish(EVENTS_EXCHANGE, `${message.type}.${market}`, Buffer.from(JSON.stringify(message)), {
        messageId: message.id,
        persistent: true,
        contentType: 'application/json',
      });
      await ch.waitForConfirms();
    },
    async commands(market) {
      const out: Envelope[] = [];
      for (;;) {
        const msg = await ch.get(`orders.${market}`, { noAck: true });
        if (!msg) return out;
        out.push(...envelopesOf(msg));
      }
    },
    async close() {
      await ch.close().catch(() => {});
      await conn.close().catch(() => {});
      await messaging.close();
      if (!opts.vhost) await vhost.drop();
    },
  };
}

/** Poll until `fn` returns a truthy value (or throw after `timeoutMs`). */
export async function eventually<T>(fn: () => Promise<T | undefined | null | false>, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until)
      throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
