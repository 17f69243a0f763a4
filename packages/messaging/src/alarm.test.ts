/**
 * A RabbitMQ memory alarm blocks every connection that publishes. Consumers must keep draining their queues through
 * it (acks are what frees the broker's memory), so they must not share a connection with publishers (the outbox
 * relay, retry and dead-letter copies). On a private node: alarming the shared broker would stop every other test.
 */
import { createTestDatabase, type TestDatabase } from '@exchange/db/testing';
import { migrate, withTransaction } from '@exchange/db';
import { EVENTS_EXCHANGE, createMessaging, silentLogger, type Messaging } from './index.ts';
import { MIGRATIONS, SCHEMA, TestItem, count, waitFor } from '../test/helpers.ts';
import { startPrivateBroker, type PrivateBroker } from './private-broker.ts';

let broker: PrivateBroker;
let db: TestDatabase;
let messaging: Messaging;
const QUEUE = 'svc.alarm';
const N = 200;

beforeAll(async () => {
  [broker, db] = await Promise.all([startPrivateBroker(), createTestDatabase('msg_alarm')]);
  await migrate(db.pool, { migrationsFolder: MIGRATIONS, schema: SCHEMA });
  messaging = createMessaging({
    url: broker.url,
    service: 'svc',
    pool: db.pool,
    schema: SCHEMA,
    logger: silentLogger,
    connectionName: 'alarm',
    relay: { pollIntervalMs: 100 },
  });
  await messaging.declareQueue({ name: QUEUE, bindings: [{ exchange: EVENTS_EXCHANGE, routingKey: 'test.item' }] });
  await messaging.start();
}, 180_000);

afterAll(async () => {
  await broker?.rabbitmqctl('set_vm_memory_high_watermark', '0.4').catch(() => {});
  await messaging?.close();
  await broker?.close();
  await db?.drop();
}, 60_000);

const enqueue = (seq: number) =>
  withTransaction(db.pool, (c) =>
    messaging.enqueue(c, {
      exchange: EVENTS_EXCHANGE,
      routingKey: 'test.item',
      message: TestItem.create({ seq, key: 'k' }, { producer: 'svc' }),
    }),
  );

it('under a memory alarm the consumers drain their queue while the outbox waits; it goes out once cleared', async () => {
  for (let seq = 0; seq < N; seq++) await enqueue(seq);
  await messaging.relay!.drained(30_000);

  await broker.rabbitmqctl('set_vm_memory_high_watermark', 'absolute', '1');
  // The relay publishes during the alarm: the broker blocks the connection it publishes on.
  await enqueue(N);
  await new Promise((r) => setTimeout(r, 2_000));
  expect(await messaging.relay!.pending()).toBe(1);

  await messaging.consume({
    queue: QUEUE,
    prefetch: 10,
    handler: async (msg, client) => {
      const m = TestItem.validate(msg);
      await client.query('INSERT INTO svc.effects (message_id, seq) VALUES ($1, $2)', [m.id, m.payload.seq]);
    },
  });
  await waitFor(async () => (await count(db.pool, 'SELECT count(*) FROM svc.effects')) === N, {
    timeoutMs: 30_000,
    what: `all ${N} queued messages consumed during the alarm`,
  });
  expect(await messaging.relay!.pending()).toBe(1);

  await broker.rabbitmqctl('set_vm_memory_high_watermark', '0.4');
  await messaging.relay!.drained(60_000);
  await waitFor(async () => (await count(db.pool, 'SELECT count(*) FROM svc.effects')) === N + 1, {
    timeoutMs: 30_000,
    what: 'the message held back by the alarm',
  });
  expect(await count(db.pool, 'SELECT count(*) FROM svc.dead_letters')).toBe(0);
}, 180_000);
