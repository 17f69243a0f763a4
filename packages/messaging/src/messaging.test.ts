import amqp from 'amqplib';
import { withTransaction } from '@exchange/db';
import { Registry } from 'prom-client';
import { COMMANDS_EXCHANGE, EVENTS_EXCHANGE, createMessaging, silentLogger, type Messaging } from './index.ts';
import { SCHEMA, TestItem, count, setupEnv, waitFor, type TestEnv } from '../test/helpers.ts';

let env: TestEnv;
let messaging: Messaging;
const registry = new Registry();

beforeAll(async () => {
  env = await setupEnv('msg_basic');
  messaging = createMessaging({
    url: env.vhost.url,
    service: 'svc',
    pool: env.pool,
    schema: SCHEMA,
    logger: silentLogger,
    registry,
    relay: { pollIntervalMs: 200 },
  });
  await messaging.declareQueue({
    name: 'svc.items',
    bindings: [{ exchange: EVENTS_EXCHANGE, routingKey: 'test.#' }],
    retry: { attempts: 2, backoffMs: [100, 200] },
  });
  await messaging.start();
});

afterAll(async () => {
  await messaging?.close();
  await env?.drop();
});

describe('messaging basics', () => {
  it('relays an enqueued message to a consumer that applies it once', async () => {
    const seen: string[] = [];
    const consumer = await messaging.consume({
      queue: 'svc.items',
      handler: async (msg, client) => {
        const m = TestItem.validate(msg);
        await client.query('INSERT INTO svc.effects (message_id, seq) VALUES ($1, $2)', [m.id, m.payload.seq]);
        seen.push(m.id);
      },
    });
    const msg = TestItem.create({ seq: 1, key: 'a' }, { producer: 'svc', correlationId: 'corr-1' });
    await withTransaction(env.pool, (c) =>
      messaging.enqueue(c, { exchange: EVENTS_EXCHANGE, routingKey: 'test.item', message: msg }),
    );
    await waitFor(() => seen.length === 1, { what: 'delivery' });
    expect(seen).toEqual([msg.id]);
    await waitFor(async () => (await count(env.pool, 'SELECT count(*) FROM svc.outbox WHERE sent_at IS NULL')) === 0);
    await waitFor(
      async () => (await count(env.pool, 'SELECT count(*) FROM svc.inbox WHERE message_id = $1', [msg.id])) === 1,
    );
    expect(await count(env.pool, 'SELECT count(*) FROM svc.effects')).toBe(1);
    await consumer.stop();
  });

  it('rejects an invalid message at enqueue time', async () => {
    const bad = { ...TestItem.create({ seq: 1, key: 'a' }, { producer: 'svc' }), payload: { seq: 'x' } };
    await expect(
      withTransaction(env.pool, (c) =>
        messaging.enqueue(c, { exchange: EVENTS_EXCHANGE, routingKey: 'test.item', message: bad }),
      ),
    ).rejects.toThrow(/\/payload\/seq/);
  });

  it('reports health and metrics', async () => {
    const h = await messaging.health();
    expect(h.ok).toBe(true);
    expect(h.latencyMs).toBeGreaterThanOrEqual(0);
    const text = await registry.metrics();
    expect(text).toMatch(/jobs_queue_length\{queue="svc.items"\} \d+/);
    expect(text).toMatch(/jobs_queue_length\{queue="svc.items.dlq"\} \d+/);
    expect(text).toMatch(/outbox_pending\{service="svc"\} 0/);
    expect(text).toContain('jobs_dead_letter_total');
  });

  it('keeps unroutable messages pending', async () => {
    const msg = TestItem.create({ seq: 2, key: 'b' }, { producer: 'svc' });
    await withTransaction(env.pool, (c) =>
      messaging.enqueue(c, { exchange: COMMANDS_EXCHANGE, routingKey: 'nobody.listens', message: msg }),
    );
    await waitFor(async () => {
      const { rows } = await env.pool.query('SELECT last_error, sent_at FROM svc.outbox WHERE message_id = $1', [
        msg.id,
      ]);
      return rows[0]?.last_error?.startsWith('unroutable') && rows[0].sent_at === null;
    });
    expect(await registry.getSingleMetricAsString('outbox_unroutable_total')).toMatch(
      /exchange="exchange.commands"\} [1-9]/,
    );
    await env.pool.query('DELETE FROM svc.outbox WHERE message_id = $1', [msg.id]);
  });

  it('publishes an event nobody subscribes to (kept in events.unrouted) instead of holding the outbox', async () => {
    const msg = TestItem.create({ seq: 3, key: 'nobody' }, { producer: 'svc' });
    await withTransaction(env.pool, (c) =>
      messaging.enqueue(c, { exchange: EVENTS_EXCHANGE, routingKey: 'zz.nobody.subscribes', message: msg }),
    );
    await waitFor(async () => {
      const { rows } = await env.pool.query('SELECT sent_at FROM svc.outbox WHERE message_id = $1', [msg.id]);
      return rows[0]?.sent_at != null;
    });
    const conn = await amqp.connect(env.vhost.url);
    const ch = await conn.createChannel();
    const ids: string[] = [];
    for (let m = await ch.get('events.unrouted'); m; m = await ch.get('events.unrouted'))
      ids.push(String(m.properties.messageId));
    await conn.close();
    expect(ids).toContain(msg.id);
  });

  it('holds later messages of an unroutable routing key behind it while other keys flow, then delivers in order', async () => {
    const key = 'late.binding';
    const first = TestItem.create({ seq: 100, key }, { producer: 'svc' });
    const second = TestItem.create({ seq: 101, key }, { producer: 'svc' });
    const other = TestItem.create({ seq: 102, key: 'other' }, { producer: 'svc' });
    await withTransaction(env.pool, async (c) => {
      await messaging.enqueue(c, { exchange: COMMANDS_EXCHANGE, routingKey: key, message: first });
      await messaging.enqueue(c, { exchange: COMMANDS_EXCHANGE, routingKey: key, message: second });
      await messaging.enqueue(c, { exchange: EVENTS_EXCHANGE, routingKey: 'test.item', message: other });
    });
    const seen: number[] = [];
    const handler = async (msg: unknown) => {
      seen.push(TestItem.validate(msg).payload.seq);
    };
    const items = await messaging.consume({ queue: 'svc.items', handler });
    await waitFor(() => seen.includes(102), { what: 'other key delivered' });
    expect(seen).toEqual([102]);
    // The consumer's queue appears only now (e.g. its service started later): the held messages follow, in order.
    await messaging.declareQueue({ name: 'svc.late', bindings: [{ exchange: COMMANDS_EXCHANGE, routingKey: key }] });
    const late = await messaging.consume({ queue: 'svc.late', handler });
    await waitFor(() => seen.length === 3, { timeoutMs: 30_000, what: 'held messages delivered' });
    expect(seen).toEqual([102, 100, 101]);
    await items.stop();
    await late.stop();
  });

  it('a row naming a missing exchange waits with backoff while other messages flow', async () => {
    const ghost = TestItem.create({ seq: 200, key: 'ghost' }, { producer: 'svc' });
    const live = TestItem.create({ seq: 201, key: 'live' }, { producer: 'svc' });
    await withTransaction(env.pool, async (c) => {
      await messaging.enqueue(c, { exchange: 'no.such.exchange', routingKey: 'x', message: ghost });
    });
    await waitFor(async () => {
      const { rows } = await env.pool.query('SELECT last_error FROM svc.outbox WHERE message_id = $1', [ghost.id]);
      return rows[0]?.last_error?.includes('NOT_FOUND');
    });
    const seen: number[] = [];
    const consumer = await messaging.consume({
      queue: 'svc.items',
      handler: async (msg) => {
        seen.push(TestItem.validate(msg).payload.seq);
      },
    });
    await withTransaction(env.pool, (c) =>
      messaging.enqueue(c, { exchange: EVENTS_EXCHANGE, routingKey: 'test.item', message: live }),
    );
    await waitFor(() => seen.includes(201), { what: 'live message' });
    const { rows } = await env.pool.query('SELECT sent_at, publish_attempts FROM svc.outbox WHERE message_id = $1', [
      ghost.id,
    ]);
    expect(rows[0].sent_at).toBeNull();
    expect(rows[0].publish_attempts).toBeGreaterThanOrEqual(1);
    await env.pool.query('DELETE FROM svc.outbox WHERE message_id = $1', [ghost.id]);
    await consumer.stop();
  });
});
