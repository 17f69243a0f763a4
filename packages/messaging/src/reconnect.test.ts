import { withTransaction } from '@exchange/db';
import { EVENTS_EXCHANGE, createMessaging, silentLogger, type Messaging } from './index.ts';
import { SCHEMA, TestItem, setupEnv, waitFor, type TestEnv } from '../test/helpers.ts';

let env: TestEnv;
let producer: Messaging;
let consumer: Messaging;
const QUEUE = 'svc.reconnect';
const N = 300;

beforeAll(async () => {
  env = await setupEnv('msg_reconnect');
  const common = { url: env.vhost.url, service: 'svc', pool: env.pool, schema: SCHEMA, logger: silentLogger };
  producer = createMessaging({ ...common, connectionName: 'reconnect-producer', relay: { pollIntervalMs: 100 } });
  consumer = createMessaging({ ...common, connectionName: 'reconnect-consumer', relay: false });
  for (const m of [producer, consumer]) {
    await m.declareQueue({
      name: QUEUE,
      bindings: [{ exchange: EVENTS_EXCHANGE, routingKey: 'test.item' }],
      retry: { attempts: 3, backoffMs: [100, 200, 400] },
    });
    await m.start();
  }
});

afterAll(async () => {
  await producer?.close();
  await consumer?.close();
  await env?.drop();
});

/**
 * Close `m`'s connection from the broker side and wait until `m` has connected again; the number of connections the
 * close found. The management API lists connections late (a closed one for a while, a new one only after a delay), so
 * a close that found only the stale entry of an earlier connection is repeated until `m` really lost its own.
 */
async function dropAndReconnect(m: Messaging, name: string): Promise<number> {
  const before = m.connection.connections;
  for (let attempt = 1; ; attempt++) {
    const closed = await env.vhost.closeConnections({ namePrefix: name });
    try {
      await waitFor(() => m.connection.connections > before && m.connection.connected, {
        timeoutMs: 3_000,
        what: `${name} to reconnect`,
      });
      return closed;
    } catch (err) {
      if (attempt >= 10) throw err;
    }
  }
}

describe('broker connection loss', () => {
  it('publisher and consumer recover after the broker closes their connections mid-stream; nothing lost or doubled', async () => {
    const seen: number[] = [];
    await consumer.consume({
      queue: QUEUE,
      prefetch: 20,
      concurrency: 4,
      handler: async (msg, client) => {
        const m = TestItem.validate(msg);
        await client.query('INSERT INTO svc.effects (message_id, seq) VALUES ($1, $2)', [m.id, m.payload.seq]);
        seen.push(m.payload.seq);
      },
    });

    const ids: string[] = [];
    const producing = (async () => {
      for (let seq = 0; seq < N; seq++) {
        const msg = TestItem.create({ seq, key: 'k' }, { producer: 'svc' });
        ids.push(msg.id);
        await withTransaction(env.pool, (c) =>
          producer.enqueue(c, { exchange: EVENTS_EXCHANGE, routingKey: 'test.item', message: msg }),
        );
        await new Promise((r) => setTimeout(r, 8));
      }
    })();

    // Twice while messages flow: the broker drops both processes' connections (as on a failover).
    for (const threshold of [N / 4, N / 2]) {
      await waitFor(() => seen.length >= threshold, { what: `${threshold} consumed` });
      const closed = await Promise.all([
        dropAndReconnect(producer, 'reconnect-producer'),
        dropAndReconnect(consumer, 'reconnect-consumer'),
      ]);
      expect(closed.every((n) => n >= 1)).toBe(true);
    }
    await producing;

    await producer.relay!.drained(30_000);
    await waitFor(() => new Set(seen).size >= N, { timeoutMs: 30_000, what: `all ${N} consumed` });
    await new Promise((r) => setTimeout(r, 500));
    expect(producer.connection.connections).toBeGreaterThanOrEqual(3);
    expect(consumer.connection.connections).toBeGreaterThanOrEqual(3);
    const { rows } = await env.pool.query<{ n: string; applied: string }>(
      'SELECT count(*)::text AS n, sum(applied)::text AS applied FROM svc.effects',
    );
    expect(rows[0]).toEqual({ n: String(N), applied: String(N) });
    expect(seen.length).toBe(N); // no handler ran twice for the same message
    expect((await producer.health()).ok).toBe(true);
    expect((await consumer.health()).ok).toBe(true);
  });
});
