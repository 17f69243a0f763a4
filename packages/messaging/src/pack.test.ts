/**
 * Packs (pack.ts): the relay sends the rows of a batch for one destination as one AMQP message, and the inbox
 * consumer takes it apart again, so each message inside is still applied exactly once, in order, and a message that
 * fails is retried and dead-lettered alone.
 */
import amqp from 'amqplib';
import client from 'prom-client';
import type pg from 'pg';
import { withTransaction } from '@exchange/db';
import {
  COMMANDS_EXCHANGE,
  PACK_CONTENT_TYPE,
  encodePack,
  createMessaging,
  envelopesOf,
  silentLogger,
  unpack,
  type Messaging,
} from './index.ts';
import { SCHEMA, TestItem, count, setupEnv, waitFor, type TestEnv } from '../test/helpers.ts';

let env: TestEnv;
const open: Messaging[] = [];

beforeAll(async () => {
  env = await setupEnv('msg_pack');
});

afterAll(async () => {
  for (const m of open) await m.close().catch(() => {});
  await env?.drop();
});

async function messaging(queues: string[], pack?: number, singleActiveConsumer = true): Promise<Messaging> {
  const m = createMessaging({
    url: env.vhost.url,
    service: 'svc',
    connectionName: `pack-${queues[0]}`,
    pool: env.pool,
    schema: SCHEMA,
    logger: silentLogger,
    registry: new client.Registry(),
    relay: { pollIntervalMs: 100, batchSize: 500, ...(pack ? { pack } : {}) },
  });
  for (const name of queues) {
    await m.declareQueue({
      name,
      bindings: [{ exchange: COMMANDS_EXCHANGE, routingKey: name }],
      singleActiveConsumer,
      retry: { attempts: 1, backoffMs: [50] },
    });
  }
  await m.start();
  open.push(m);
  return m;
}

/** Enqueue items for each queue in one transaction, interleaved (a, b, a, b, …) as a batch of the engine would. */
async function enqueue(m: Messaging, queues: string[], from: number, to: number) {
  const sent: Array<{ queue: string; id: string; seq: number }> = [];
  await withTransaction(env.pool, async (c) => {
    for (let seq = from; seq < to; seq++) {
      for (const queue of queues) {
        const message = TestItem.create({ seq, key: queue }, { producer: 'svc' });
        await m.enqueue(c, { exchange: COMMANDS_EXCHANGE, routingKey: queue, message });
        sent.push({ queue, id: message.id, seq });
      }
    }
  });
  return sent;
}

async function effect(client: pg.PoolClient, id: string, seq: number): Promise<void> {
  await client.query(
    `INSERT INTO svc.effects (message_id, seq) VALUES ($1, $2)
     ON CONFLICT (message_id) DO UPDATE SET applied = effects.applied + 1`,
    [id, seq],
  );
}

it('sends one destination’s rows of a batch as packs, in order, each message keeping its id, type and headers', async () => {
  const queues = ['pack.raw.a', 'pack.raw.b'];
  // not single-active-consumer: basic.get reads it raw
  const m = await messaging(queues, 16, false);
  const sent = await enqueue(m, queues, 0, 40);
  await m.relay!.drained();

  const conn = await amqp.connect(env.vhost.url);
  try {
    const ch = await conn.createChannel();
    for (const queue of queues) {
      const deliveries: amqp.GetMessage[] = [];
      for (let d = await ch.get(queue, { noAck: true }); d; d = await ch.get(queue, { noAck: true }))
        deliveries.push(d);
      // 40 messages in packs of at most 16: 3 AMQP messages, not 40
      expect(deliveries.map((d) => d.properties.contentType)).toEqual(Array(3).fill(PACK_CONTENT_TYPE));
      const envelopes = deliveries.flatMap((d) => envelopesOf(d));
      const parts = deliveries.flatMap((d) => unpack(d));
      expect(parts.map((p) => p.properties.messageId)).toEqual(envelopes.map((e) => e.id));
      expect(parts.every((p) => p.properties.contentType === 'application/json')).toBe(true);
      expect(parts.every((p) => p.properties.headers?.['x-message-type'] === 'test.item')).toBe(true);
      expect(envelopes.map((e) => e.id)).toEqual(sent.filter((s) => s.queue === queue).map((s) => s.id));
      expect(envelopes.map((e) => (e.payload as { seq: number }).seq)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    }
  } finally {
    await conn.close();
  }
  // the relay counts what it sent: 80 rows in 6 AMQP messages
  const metrics = await m.metrics.packSize.get();
  const sum = metrics.values.find((v) => v.metricName === 'outbox_pack_messages_sum')?.value;
  const n = metrics.values.find((v) => v.metricName === 'outbox_pack_messages_count')?.value;
  expect([sum, n]).toEqual([80, 6]);
  expect(await count(env.pool, 'SELECT count(*) FROM svc.outbox WHERE sent_at IS NULL')).toBe(0);
});

it('applies each message of a pack once and in order; one that fails is retried and dead-lettered alone', async () => {
  const queue = 'pack.consume';
  const m = await messaging([queue]);
  const poison = 17;
  const sent = await enqueue(m, [queue], 100, 150);
  const poisonId = sent.find((s) => s.seq === 100 + poison)!.id;
  await m.relay!.drained();

  const order: number[] = [];
  let poisonRuns = 0;
  await m.consume({
    queue,
    prefetch: 10,
    batch: 8,
    handler: async (msg, client) => {
      const { seq } = TestItem.validate(msg).payload;
      if (seq === 100 + poison) {
        poisonRuns++;
        throw new Error('this one fails every time');
      }
      await effect(client, msg.id, seq);
    },
    hooks: { afterCommit: (msg) => void order.push((msg.payload as { seq: number }).seq) },
  });
  await waitFor(async () => (await count(env.pool, 'SELECT count(*) FROM svc.dead_letters')) === 1, {
    what: 'the failing message dead-lettered',
  });
  await waitFor(() => order.length >= 49, { what: 'the other 49 applied' });

  expect(order).toEqual(sent.map((s) => s.seq).filter((s) => s !== 100 + poison));
  const { rows } = await env.pool.query<{ seq: number; applied: number }>(
    'SELECT seq, applied FROM svc.effects WHERE seq >= 100 AND seq < 150 ORDER BY seq',
  );
  expect(rows).toHaveLength(49);
  expect(rows.every((r) => r.applied === 1)).toBe(true);
  // dead-lettered alone: its own id and body, after its retry
  const dl = await env.pool.query<{ message_id: string; message: unknown; attempts: number }>(
    'SELECT message_id, message, attempts FROM svc.dead_letters',
  );
  expect(dl.rows).toEqual([expect.objectContaining({ message_id: poisonId, attempts: 2 })]);
  expect(dl.rows[0]!.message).toMatchObject({ id: poisonId, type: 'test.item' });
  expect(poisonRuns).toBeGreaterThanOrEqual(2);
  // the packs were all acked: nothing left in hand or in the queue
  await waitFor(async () => (await m.queueLengths()).find((q) => q.queue === queue)?.messages === 0, {
    what: 'queue empty',
  });
  await m.close();
  const conn = await amqp.connect(env.vhost.url);
  try {
    const ch = await conn.createChannel();
    expect((await ch.checkQueue(queue)).messageCount).toBe(0);
  } finally {
    await conn.close();
  }
});

it('a pack that comes again after a lost connection applies only what it had not applied', async () => {
  const queue = 'pack.redelivered';
  const m = await messaging([queue]);
  const sent = await enqueue(m, [queue], 200, 260);
  await m.relay!.drained();
  const applied: number[] = [];
  let gateOpen!: () => void;
  const gate = new Promise<void>((r) => (gateOpen = r));
  let cut = false;
  await m.consume({
    queue,
    prefetch: 10,
    batch: 5,
    handler: async (msg, client) => {
      const { seq } = TestItem.validate(msg).payload;
      await effect(client, msg.id, seq);
      // mid-pack, with earlier messages of the same pack committed but the pack not acked
      if (seq === 230 && !cut) {
        cut = true;
        await gate;
      }
    },
    hooks: { afterCommit: (msg) => void applied.push((msg.payload as { seq: number }).seq) },
  });
  await waitFor(() => cut, { what: 'the message in the middle of a pack in hand' });
  expect(applied.length).toBeGreaterThan(0);
  await env.vhost.closeConnections({ namePrefix: `pack-${queue}` });
  gateOpen();
  await waitFor(
    async () => (await count(env.pool, 'SELECT count(*) FROM svc.effects WHERE seq >= 200 AND seq < 260')) === 60,
    { what: 'all 60 applied', timeoutMs: 60_000 },
  );
  await waitFor(
    async () => (await count(env.pool, 'SELECT count(*) FROM svc.inbox WHERE queue = $1', [queue])) === 60,
    {
      what: 'all 60 in the inbox',
    },
  );
  const { rows } = await env.pool.query<{ applied: number }>(
    'SELECT applied FROM svc.effects WHERE seq >= 200 AND seq < 260',
  );
  expect(rows.filter((r) => r.applied !== 1)).toEqual([]);
  expect(sent).toHaveLength(60);
});

it('an undecodable pack is dead-lettered whole, not dropped', async () => {
  const queue = 'pack.garbage';
  const m = await messaging([queue]);
  await m.consume({ queue, handler: async () => {} });
  await m.publisher.publish('', queue, Buffer.from('{"pack":1,"messages":"nope"}'), {
    messageId: 'pack:garbage',
    persistent: true,
    contentType: PACK_CONTENT_TYPE,
  });
  const dl = await waitFor(
    async () =>
      (
        await env.pool.query<{ reason: string; message: unknown }>(
          "SELECT reason, message FROM svc.dead_letters WHERE message_id = 'pack:garbage'",
        )
      ).rows[0],
    { what: 'the pack dead-lettered' },
  );
  expect(dl.reason).toMatch(/^invalid message/);
  expect(dl.message).toEqual({ pack: 1, messages: 'nope' });
});

it('a pack the broker dead-letters itself is recorded as one dead letter per message, each replayable by its id', async () => {
  const queue = 'pack.broker-dlq';
  const m = await messaging([queue]);
  await m.consume({ queue, handler: async () => {} });
  const items = [0, 1, 2].map((seq) => TestItem.create({ seq, key: queue }, { producer: 'svc' }));
  // as RabbitMQ moves a message past its delivery limit: the whole AMQP message lands in the DLQ
  await m.publisher.publish('', `${queue}.dlq`, encodePack(items.map((message) => ({ headers: {}, message }))), {
    messageId: `pack:${items[0]!.id}:3`,
    persistent: true,
    contentType: PACK_CONTENT_TYPE,
    headers: { 'x-death': [{ queue, reason: 'delivery_limit', count: 1000 }] },
  });
  const rows = await waitFor(
    async () => {
      const { rows } = await env.pool.query<{ message_id: string; type: string; reason: string }>(
        'SELECT message_id, type, reason FROM svc.dead_letters WHERE queue = $1 ORDER BY id',
        [queue],
      );
      return rows.length === 3 && rows;
    },
    { what: 'three dead letters' },
  );
  expect(rows.map((r) => r.message_id)).toEqual(items.map((i) => i.id));
  expect(rows.every((r) => r.type === 'test.item' && r.reason === 'dead-lettered by the broker (delivery_limit)')).toBe(
    true,
  );
});
