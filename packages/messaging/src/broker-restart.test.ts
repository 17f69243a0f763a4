import { createTestDatabase, type TestDatabase } from '@exchange/db/testing';
import { migrate, withTransaction } from '@exchange/db';
import { EVENTS_EXCHANGE, createMessaging, silentLogger, type Messaging } from './index.ts';
import { MIGRATIONS, SCHEMA, TestItem, count, waitFor } from '../test/helpers.ts';
import { startPrivateBroker, type PrivateBroker } from './private-broker.ts';

let broker: PrivateBroker;
let db: TestDatabase;
let producer: Messaging;
let consumer: Messaging;
const QUEUE = 'svc.restart';
const N = 200;

beforeAll(async () => {
  [broker, db] = await Promise.all([startPrivateBroker(), createTestDatabase('msg_restart')]);
  await migrate(db.pool, { migrationsFolder: MIGRATIONS, schema: SCHEMA });
  const common = {
    url: broker.url,
    service: 'svc',
    pool: db.pool,
    schema: SCHEMA,
    logger: silentLogger,
    reconnect: { initialDelayMs: 100, maxDelayMs: 1_000 },
  };
  producer = createMessaging({ ...common, connectionName: 'restart-producer', relay: { pollIntervalMs: 100 } });
  consumer = createMessaging({ ...common, connectionName: 'restart-consumer', relay: false });
  for (const m of [producer, consumer]) {
    await m.declareQueue({ name: QUEUE, bindings: [{ exchange: EVENTS_EXCHANGE, routingKey: 'test.item' }] });
    await m.start();
  }
}, 180_000);

afterAll(async () => {
  await producer?.close();
  await consumer?.close();
  await broker?.close();
  await db?.drop();
}, 60_000);

describe('broker restart (stop_app / start_app on a private node)', () => {
  it('producer and consumer ride through a broker restart; every message applied once', async () => {
    const seen: number[] = [];
    await consumer.consume({
      queue: QUEUE,
      prefetch: 20,
      concurrency: 2,
      handler: async (msg, client) => {
        const m = TestItem.validate(msg);
        await client.query('INSERT INTO svc.effects (message_id, seq) VALUES ($1, $2)', [m.id, m.payload.seq]);
        seen.push(m.payload.seq);
      },
    });
    const producing = (async () => {
      for (let seq = 0; seq < N; seq++) {
        const msg = TestItem.create({ seq, key: 'k' }, { producer: 'svc' });
        // Enqueueing only needs Postgres: it goes on while the broker is down.
        await withTransaction(db.pool, (c) =>
          producer.enqueue(c, { exchange: EVENTS_EXCHANGE, routingKey: 'test.item', message: msg }),
        );
        await new Promise((r) => setTimeout(r, 10));
      }
    })();

    await waitFor(() => seen.length >= N / 4, { what: 'first quarter' });
    await broker.stopApp();
    await waitFor(async () => !(await consumer.health()).ok, { what: 'health reports the outage' });
    await new Promise((r) => setTimeout(r, 1_000));
    await broker.startApp();
    await producing;
    await waitFor(async () => (await producer.health()).ok && (await consumer.health()).ok, {
      timeoutMs: 30_000,
      what: 'healthy again',
    });
    await producer.relay!.drained(30_000);
    await waitFor(async () => (await count(db.pool, 'SELECT count(*) FROM svc.effects')) === N, {
      timeoutMs: 30_000,
      what: `all ${N} applied`,
    });
    expect(await count(db.pool, 'SELECT count(*) FROM svc.effects')).toBe(N);
    expect(await count(db.pool, 'SELECT count(*) FROM svc.dead_letters')).toBe(0);
    expect(new Set(seen).size).toBe(N);
  }, 120_000);
});
