import { withTransaction } from '@exchange/db';
import { COMMANDS_EXCHANGE, createMessaging, silentLogger, type Messaging } from './index.ts';
import { SCHEMA, TestItem, count, setupEnv, waitFor, type TestEnv } from '../test/helpers.ts';

let env: TestEnv;
const replicas: Messaging[] = [];
const QUEUE = 'orders.TEST-USD';
const N = 1000;

// Arrival order across both replicas (first-time applications only: duplicates are skipped by the inbox).
const applied: number[] = [];
const appliedBy: string[] = [];

async function replica(name: string): Promise<Messaging> {
  const m = createMessaging({
    url: env.vhost.url,
    service: 'svc',
    connectionName: `ordering-${name}`,
    pool: env.pool,
    schema: SCHEMA,
    logger: silentLogger,
    relay: { pollIntervalMs: 200, standbyRetryMs: 300, batchSize: 100 },
  });
  await m.declareQueue({
    name: QUEUE,
    bindings: [{ exchange: COMMANDS_EXCHANGE, routingKey: QUEUE }],
    singleActiveConsumer: true,
    retry: { attempts: 1, backoffMs: [100] },
  });
  await m.start();
  await m.consume({
    queue: QUEUE,
    prefetch: 50,
    concurrency: 1,
    handler: async (msg, client) => {
      const item = TestItem.validate(msg);
      await client.query('INSERT INTO svc.effects (message_id, seq) VALUES ($1, $2)', [item.id, item.payload.seq]);
      applied.push(item.payload.seq);
      appliedBy.push(name);
    },
  });
  replicas.push(m);
  return m;
}

beforeAll(async () => {
  env = await setupEnv('msg_order');
});

afterAll(async () => {
  for (const r of replicas) await r.close().catch(() => {});
  await env?.drop();
});

describe('ordering', () => {
  it(`publishes and consumes ${N} messages in order through a single-active-consumer queue, across a failover`, async () => {
    const a = await replica('a');
    const b = await replica('b');
    // One relay per schema across replicas: exactly one of them publishes.
    await waitFor(() => [a, b].filter((r) => r.relay!.isLeader).length === 1, { what: 'one active relay' });
    expect([a, b].filter((r) => r.relay!.isLeader)).toHaveLength(1);
    // and each says so in what its loop waits on (what a stall's diagnosis reads): the other one stands by
    const [leader, other] = a.relay!.isLeader ? [a, b] : [b, a];
    await waitFor(() => other.relay!.activity.phase === 'standby', { what: 'the other relay standing by' });
    await waitFor(() => leader.relay!.activity.phase === 'idle', { what: 'the active relay idle' });

    const enqueueing = (async () => {
      for (let seq = 0; seq < N; seq += 10) {
        // Ten per transaction, some transactions in parallel: the ordering key serialises them per market.
        await withTransaction(env.pool, async (c) => {
          for (let i = seq; i < seq + 10; i++) {
            const msg = TestItem.create({ seq: i, key: 'TEST-USD' }, { producer: 'svc' });
            await enqueue(c, msg);
          }
        });
      }
    })();
    const enqueue = (c: import('pg').PoolClient, msg: ReturnType<typeof TestItem.create>) =>
      a.enqueue(c, { exchange: COMMANDS_EXCHANGE, routingKey: QUEUE, message: msg, orderingKey: 'TEST-USD' });

    // Fail over half-way: the active replica (consumer and relay) shuts down; the other takes over both roles.
    await waitFor(() => applied.length >= N / 3, { what: 'first third' });
    const active = appliedBy[appliedBy.length - 1]!;
    const closed = replicas.find((r) => r.connection.name === `ordering-${active}`)!;
    await closed.close();
    expect(closed.relay!.activity.phase).toBe('stopped');
    await enqueueing;

    await waitFor(() => applied.length >= N, { timeoutMs: 45_000, what: `all ${N} messages` });
    await new Promise((r) => setTimeout(r, 300));
    expect(applied).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(new Set(appliedBy).size).toBe(2);
    expect(await count(env.pool, 'SELECT count(*) FROM svc.effects')).toBe(N);
    expect(await count(env.pool, 'SELECT count(*) FROM svc.outbox WHERE sent_at IS NULL')).toBe(0);
  });
});
