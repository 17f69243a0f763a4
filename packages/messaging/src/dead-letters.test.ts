import amqp from 'amqplib';
import { withTransaction } from '@exchange/db';
import Fastify from 'fastify';
import { Registry } from 'prom-client';
import { Type } from '@sinclair/typebox';
import { defineMessage } from '@exchange/contracts';
import {
  EVENTS_EXCHANGE,
  PermanentError,
  createMessaging,
  deadLetterRoutes,
  retryDeadLetter,
  dispatch,
  on,
  silentLogger,
  type Messaging,
} from './index.ts';
import { SCHEMA, TestItem, count, setupEnv, waitFor, type TestEnv } from '../test/helpers.ts';

let env: TestEnv;
let messaging: Messaging;
const registry = new Registry();
const QUEUE = 'svc.poison';

// Handler behaviour, steered per test.
const runs = new Map<string, number[]>();
let healed = false;

beforeAll(async () => {
  env = await setupEnv('msg_dead');
  messaging = createMessaging({
    url: env.vhost.url,
    service: 'svc',
    pool: env.pool,
    schema: SCHEMA,
    logger: silentLogger,
    registry,
    relay: { pollIntervalMs: 100 },
  });
  await messaging.declareQueue({
    name: QUEUE,
    bindings: [{ exchange: EVENTS_EXCHANGE, routingKey: 'test.item' }],
    retry: { attempts: 3, backoffMs: [300, 600, 1200] },
  });
  await messaging.start();
  await messaging.consume({
    queue: QUEUE,
    prefetch: 5,
    handler: async (msg, client) => {
      const m = TestItem.validate(msg);
      runs.set(m.id, [...(runs.get(m.id) ?? []), Date.now()]);
      await client.query('INSERT INTO svc.effects (message_id, seq) VALUES ($1, $2)', [m.id, m.payload.seq]);
      if (m.payload.key === 'poison' && !healed) throw new Error(`cannot process item ${m.payload.seq}`);
    },
  });
});

afterAll(async () => {
  await messaging?.close();
  await env?.drop();
});

async function publish(seq: number, key: string) {
  const msg = TestItem.create({ seq, key }, { producer: 'svc' });
  await withTransaction(env.pool, (c) =>
    messaging.enqueue(c, { exchange: EVENTS_EXCHANGE, routingKey: 'test.item', message: msg }),
  );
  return msg;
}

async function dlqDepth(): Promise<number> {
  const lengths = await messaging.queueLengths();
  return lengths.find((q) => q.queue === `${QUEUE}.dlq`)?.messages ?? -1;
}

describe('poison and invalid messages', () => {
  it('retries a failing message with growing backoff, then dead-letters it; the admin API replays it once', async () => {
    const poison = await publish(1, 'poison');
    const ok = await publish(2, 'fine');
    // The healthy message behind it is not blocked by the retries.
    await waitFor(
      async () => (await count(env.pool, 'SELECT count(*) FROM svc.effects WHERE message_id = $1', [ok.id])) === 1,
    );

    const row = await waitFor(
      async () => {
        const { rows } = await env.pool.query('SELECT * FROM svc.dead_letters WHERE message_id = $1', [poison.id]);
        return rows[0];
      },
      { what: 'dead-letter row' },
    );
    const times = runs.get(poison.id)!;
    expect(times).toHaveLength(4); // first run + 3 retries
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(gaps[0]).toBeGreaterThanOrEqual(280);
    expect(gaps[1]).toBeGreaterThanOrEqual(580);
    expect(gaps[2]).toBeGreaterThanOrEqual(1180);
    expect(gaps[1]!).toBeGreaterThan(gaps[0]!);
    expect(gaps[2]!).toBeGreaterThan(gaps[1]!);

    expect(row).toMatchObject({ queue: QUEUE, status: 'dead', attempts: 4, type: 'test.item' });
    expect(row.reason).toContain('cannot process item 1');
    expect(row.message).toMatchObject({ id: poison.id, payload: { seq: 1, key: 'poison' } });
    // No effect survived the failed attempts.
    expect(await count(env.pool, 'SELECT count(*) FROM svc.effects WHERE message_id = $1', [poison.id])).toBe(0);
    // The DLQ copy is moved into the table (already there): the queue drains, nothing is counted twice.
    await waitFor(async () => (await dlqDepth()) === 0, { what: 'DLQ drained' });
    expect(await registry.getSingleMetricAsString('jobs_dead_letter_total')).toContain(
      `jobs_dead_letter_total{queue="${QUEUE}"} 1`,
    );

    // Admin API: list, then retry (twice: idempotent).
    const app = Fastify();
    await app.register(deadLetterRoutes, { prefix: '/api/v1/admin/dead-letters/svc', pool: env.pool, schema: SCHEMA });
    const list = await app.inject({ method: 'GET', url: '/api/v1/admin/dead-letters/svc?limit=10' });
    expect(list.statusCode).toBe(200);
    const body = list.json();
    const item = body.items.find((i: { messageId: string }) => i.messageId === poison.id);
    expect(item).toMatchObject({ status: 'dead', attempts: 4, queue: QUEUE });

    healed = true;
    const first = await app.inject({ method: 'POST', url: `/api/v1/admin/dead-letters/svc/${item.id}/retry` });
    expect(first.statusCode).toBe(200);
    expect(first.json()).toMatchObject({ alreadyRetried: false, deadLetter: { status: 'retried', retryCount: 1 } });
    const second = await app.inject({ method: 'POST', url: `/api/v1/admin/dead-letters/svc/${item.id}/retry` });
    expect(second.json()).toMatchObject({ alreadyRetried: true, deadLetter: { retryCount: 1 } });

    await waitFor(
      async () => (await count(env.pool, 'SELECT count(*) FROM svc.effects WHERE message_id = $1', [poison.id])) === 1,
      {
        what: 'replayed message applied',
      },
    );
    await messaging.relay!.drained();
    await new Promise((r) => setTimeout(r, 300));
    expect(await count(env.pool, 'SELECT count(*) FROM svc.effects WHERE message_id = $1', [poison.id])).toBe(1);
    expect(runs.get(poison.id)).toHaveLength(5);

    const missing = await app.inject({ method: 'POST', url: '/api/v1/admin/dead-letters/svc/999999/retry' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('DEAD_LETTER_NOT_FOUND');
    await app.close();
  });

  it('dead-letters invalid messages with the reason and keeps consuming', async () => {
    const valid = TestItem.create({ seq: 10, key: 'fine' }, { producer: 'svc' });
    const invalid = { ...TestItem.create({ seq: 11, key: 'x' }, { producer: 'svc' }), payload: { seq: -5, key: 7 } };
    const unknown = { ...TestItem.create({ seq: 12, key: 'x' }, { producer: 'svc' }), type: 'test.unknown' };
    const send = (body: string, id: string) =>
      messaging.publisher.publish('', QUEUE, Buffer.from(body), { messageId: id, persistent: true });
    await send(JSON.stringify(invalid), invalid.id);
    await send('this is not json', 'not-json-1');
    await send(JSON.stringify(unknown), unknown.id);
    await send(JSON.stringify(valid), valid.id);

    await waitFor(
      async () => (await count(env.pool, 'SELECT count(*) FROM svc.effects WHERE message_id = $1', [valid.id])) === 1,
      {
        what: 'valid message after the invalid ones',
      },
    );
    const { rows } = await env.pool.query(
      'SELECT message_id, reason, body, attempts FROM svc.dead_letters WHERE message_id <> ALL($1) ORDER BY id',
      [[...runs.keys()]],
    );
    expect(rows).toHaveLength(3);
    expect(rows[0].message_id).toBe(invalid.id);
    expect(rows[0].reason).toMatch(/^invalid message: .*\/payload\/seq.*\/payload\/key/);
    expect(rows[1].reason).toMatch(/not JSON/);
    expect(rows[1].body).toBe('this is not json');
    expect(rows[2].reason).toContain('No contract registered for test.unknown v1');
    expect(runs.has(invalid.id)).toBe(false);
    await waitFor(async () => (await dlqDepth()) === 0, { what: 'DLQ drained' });
  });

  it('a message the broker dead-letters itself (delivery limit) is listed, counted and alerted on too', async () => {
    const LIMITED = 'svc.limited';
    await messaging.declareQueue({ name: LIMITED, bindings: [], brokerDeliveryLimit: 2 });
    await messaging.recordDeadLetters(LIMITED);
    const msg = TestItem.create({ seq: 99, key: 'limited' }, { producer: 'svc' });
    await messaging.publisher.publish('', LIMITED, Buffer.from(JSON.stringify(msg)), {
      messageId: msg.id,
      persistent: true,
    });
    // A client that is not our consumer keeps handing it back: the quorum queue's limit dead-letters it.
    const conn = await amqp.connect(env.vhost.url);
    try {
      const ch = await conn.createChannel();
      await ch.consume(LIMITED, (m) => m && ch.nack(m, false, true));
      const row = await waitFor(
        async () =>
          (
            await env.pool.query('SELECT * FROM svc.dead_letters WHERE queue = $1 AND message_id = $2', [
              LIMITED,
              msg.id,
            ])
          ).rows[0],
        { what: 'a dead-letter row for the broker-side dead letter' },
      );
      expect(row).toMatchObject({ status: 'dead', type: 'test.item' });
      expect(row.reason).toMatch(/dead-lettered by the broker \(delivery_limit\)/);
    } finally {
      await conn.close();
    }
    expect(await registry.getSingleMetricAsString('jobs_dead_letter_total')).toContain(
      `jobs_dead_letter_total{queue="${LIMITED}"} 1`,
    );
    const app = Fastify();
    await app.register(deadLetterRoutes, { prefix: '/dl', pool: env.pool, schema: SCHEMA });
    const list = await app.inject({ method: 'GET', url: `/dl?queue=${LIMITED}` });
    expect(list.json().items.map((i: { messageId: string }) => i.messageId)).toEqual([msg.id]);
    await app.close();
  });

  it('refuses to replay a dead letter whose JSON body is not a message envelope (no id to dedupe by)', async () => {
    await messaging.publisher.publish('', QUEUE, Buffer.from('{"hello":1}'), {
      messageId: 'bare-json-1',
      persistent: true,
    });
    let id = '';
    await waitFor(
      async () => {
        const { rows } = await env.pool.query("SELECT id::text FROM svc.dead_letters WHERE message_id = 'bare-json-1'");
        id = rows[0]?.id ?? '';
        return id !== '';
      },
      { what: 'dead letter of the bare JSON body' },
    );
    const r = await retryDeadLetter(env.pool, SCHEMA, id);
    expect(r.status).toBe('not_retryable');
    expect((r as { reason: string }).reason).toMatch(/not a message envelope/);
  });

  it('inline retry mode holds the queue, so nothing overtakes a failing message', async () => {
    const queue = 'svc.ordered';
    await messaging.declareQueue({
      name: queue,
      singleActiveConsumer: true,
      retry: { attempts: 2, backoffMs: [150, 300] },
    });
    const order: string[] = [];
    const consumer = await messaging.consume({
      queue,
      prefetch: 10,
      retryMode: 'inline',
      handler: async (msg) => {
        const m = TestItem.validate(msg);
        order.push(`${m.payload.key}@${Date.now()}`);
        if (m.payload.key === 'bad') throw new Error('still broken');
      },
    });
    const bad = TestItem.create({ seq: 20, key: 'bad' }, { producer: 'svc' });
    const good = TestItem.create({ seq: 21, key: 'good' }, { producer: 'svc' });
    await withTransaction(env.pool, async (c) => {
      await messaging.enqueue(c, { exchange: '', routingKey: queue, message: bad });
      await messaging.enqueue(c, { exchange: '', routingKey: queue, message: good });
    });
    await waitFor(() => order.some((o) => o.startsWith('good')), { what: 'good message' });
    expect(order.map((o) => o.split('@')[0])).toEqual(['bad', 'bad', 'bad', 'good']);
    const t = order.map((o) => Number(o.split('@')[1]));
    expect(t[1]! - t[0]!).toBeGreaterThanOrEqual(140);
    expect(t[2]! - t[1]!).toBeGreaterThanOrEqual(290);
    const { rows } = await env.pool.query('SELECT attempts, reason FROM svc.dead_letters WHERE queue = $1', [queue]);
    expect(rows).toEqual([{ attempts: 3, reason: 'handler failed 3 times: still broken' }]);
    await consumer.stop();
  });

  it('dispatch routes by contract; a PermanentError or an unhandled type is dead-lettered without retries', async () => {
    const queue = 'svc.dispatch';
    await messaging.declareQueue({ name: queue, retry: { attempts: 3, backoffMs: [100] } });
    const Other = defineMessage({ type: 'test.other', version: 1, payload: Type.Object({ note: Type.String() }) });
    const got: string[] = [];
    const consumer = await messaging.consume({
      queue,
      handler: dispatch([
        on(TestItem, async (msg) => {
          got.push(`item:${msg.payload.seq}`);
          if (msg.payload.key === 'reject') throw new PermanentError('item cannot exist');
        }),
      ]),
    });
    const ok = TestItem.create({ seq: 30, key: 'ok' }, { producer: 'svc' });
    const rejected = TestItem.create({ seq: 31, key: 'reject' }, { producer: 'svc' });
    const other = Other.create({ note: 'nobody handles me' }, { producer: 'svc' });
    await withTransaction(env.pool, async (c) => {
      for (const message of [ok, rejected, other])
        await messaging.enqueue(c, { exchange: '', routingKey: queue, message });
    });
    const rows = await waitFor(
      async () => {
        const r = await env.pool.query(
          'SELECT message_id, reason, attempts FROM svc.dead_letters WHERE queue = $1 ORDER BY id',
          [queue],
        );
        return r.rows.length === 2 ? r.rows : undefined;
      },
      { what: 'two dead letters' },
    );
    expect(rows).toEqual([
      { message_id: rejected.id, reason: 'permanent failure: item cannot exist', attempts: 1 },
      { message_id: other.id, reason: `permanent failure: no handler for test.other v1 on ${queue}`, attempts: 1 },
    ]);
    expect(got).toEqual(['item:30', 'item:31']);
    await consumer.stop();
  });
});
