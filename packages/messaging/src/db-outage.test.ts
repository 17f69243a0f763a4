import net from 'node:net';
import { createPool, withTransaction } from '@exchange/db';
import { Registry } from 'prom-client';
import { EVENTS_EXCHANGE, createMessaging, silentLogger, type Messaging } from './index.ts';
import { SCHEMA, TestItem, count, setupEnv, waitFor, type TestEnv } from '../test/helpers.ts';

// The consumer reaches Postgres through a TCP proxy the test can cut, like a database failover would.
let env: TestEnv;
let producer: Messaging;
let consumer: Messaging;
let proxy: net.Server;
let down = false;
const sockets = new Set<net.Socket>();
const registry = new Registry();
const QUEUE = 'svc.db-outage';

beforeAll(async () => {
  env = await setupEnv('msg_dbout');
  const target = new URL(env.db.url);
  proxy = net.createServer((client) => {
    if (down) return client.destroy();
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const proxied = new URL(env.db.url);
  proxied.port = String((proxy.address() as net.AddressInfo).port);
  const consumerPool = createPool({ connectionString: proxied.toString(), max: 4 });

  const common = { url: env.vhost.url, service: 'svc', schema: SCHEMA, logger: silentLogger };
  producer = createMessaging({ ...common, pool: env.pool, relay: { pollIntervalMs: 100 } });
  consumer = createMessaging({ ...common, pool: consumerPool, registry, relay: false });
  for (const m of [producer, consumer]) {
    await m.declareQueue({
      name: QUEUE,
      bindings: [{ exchange: EVENTS_EXCHANGE, routingKey: 'test.item' }],
      retry: { attempts: 1, backoffMs: [100] },
    });
    await m.start();
  }
  const closeConsumerPool = consumer.close.bind(consumer);
  consumer.close = async () => {
    await closeConsumerPool();
    await consumerPool.end().catch(() => {});
  };
});

afterAll(async () => {
  down = false;
  await consumer?.close();
  await producer?.close();
  for (const s of sockets) s.destroy();
  await new Promise((r) => proxy?.close(r));
  await env?.drop();
});

async function publish(from: number, n: number) {
  for (let seq = from; seq < from + n; seq++) {
    const msg = TestItem.create({ seq, key: 'k' }, { producer: 'svc' });
    await withTransaction(env.pool, (c) =>
      producer.enqueue(c, { exchange: EVENTS_EXCHANGE, routingKey: 'test.item', message: msg }),
    );
  }
}

describe('database outage under a consumer', () => {
  it('holds messages while its database is unreachable, without spending retries, and applies each once after', async () => {
    await consumer.consume({
      queue: QUEUE,
      handler: async (msg, client) => {
        const m = TestItem.validate(msg);
        await client.query('INSERT INTO svc.effects (message_id, seq) VALUES ($1, $2)', [m.id, m.payload.seq]);
        await new Promise((r) => setTimeout(r, 20));
      },
    });
    await publish(0, 20);
    await waitFor(async () => (await count(env.pool, 'SELECT count(*) FROM svc.effects')) >= 5, {
      what: 'first effects',
    });

    down = true;
    for (const s of sockets) s.destroy(); // cut every live connection mid-transaction
    await publish(20, 20);
    await new Promise((r) => setTimeout(r, 3_000));
    down = false;

    await waitFor(async () => (await count(env.pool, 'SELECT count(*) FROM svc.effects')) === 40, {
      timeoutMs: 30_000,
      what: 'all 40 effects',
    });
    expect(await count(env.pool, 'SELECT count(*) FROM svc.dead_letters')).toBe(0);
    const consumed = await registry.getSingleMetricAsString('messages_consumed_total');
    expect(consumed).not.toContain('outcome="retry"');
    expect(consumed).not.toContain('outcome="dead_letter"');
    expect(await count(env.pool, 'SELECT count(DISTINCT seq) FROM svc.effects')).toBe(40);
  });
});
