/**
 * How an outbox write wakes its relay (wakeup.ts): a relay in the writer's process is woken by the writer's connection
 * once the transaction has ended, or by the writer once a statement on the relay's own pool returned, and the write
 * sends no NOTIFY; a relay in another process is woken by NOTIFY. Every
 * relay here polls once a minute, so only a wake-up delivers a message within the tests' few seconds. Each test first
 * sends one message and waits for it, so the relay has finished its first poll and sleeps when the message under test
 * is written.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { withTransaction } from '@exchange/db';
import { DEFAULT_EXCHANGE, createMessaging, enqueue, outboxChannel, silentLogger, type Messaging } from './index.ts';
import { SCHEMA, TestItem, setupEnv, waitFor, type TestEnv } from '../test/helpers.ts';

const WORKER = fileURLToPath(new URL('../test/fixtures/worker.ts', import.meta.url));
const POLL_MS = 60_000;

let env: TestEnv;
let listener: pg.Client;
/** NOTIFYs sent on the schema's relay channel since the test began. */
let notifications = 0;
const children: ChildProcess[] = [];
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  env = await setupEnv('msg_wakeup');
  listener = new pg.Client({ connectionString: env.db.url });
  await listener.connect();
  listener.on('notification', () => notifications++);
  await listener.query(`LISTEN "${outboxChannel(SCHEMA)}"`);
});
beforeEach(() => {
  notifications = 0;
});
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const f of cleanups.splice(0).reverse()) await f().catch(() => {});
});
afterAll(async () => {
  await listener?.end();
  await env?.drop();
});

function messaging(name: string, relay: boolean): Messaging {
  const m = createMessaging({
    url: env.vhost.url,
    service: 'svc',
    connectionName: `wakeup-${name}`,
    pool: env.pool,
    schema: SCHEMA,
    logger: silentLogger,
    relay: relay ? { pollIntervalMs: POLL_MS, markDelayMs: 0 } : false,
  });
  cleanups.push(() => m.close());
  return m;
}

/** Consume `queue` (declared as the worker fixture declares it, which a relay there may have done first). */
async function consumeInto(m: Messaging, queue: string): Promise<string[]> {
  await m.declareQueue({ name: queue, retry: { attempts: 2, backoffMs: [100] } });
  await m.start();
  const seen: string[] = [];
  await m.consume({ queue, handler: async (msg) => void seen.push(TestItem.validate(msg).id) });
  return seen;
}

const item = (seq: number) => TestItem.create({ seq, key: 'k' }, { producer: 'svc' });
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One message through, so the relay has polled since it started and sleeps for `POLL_MS` now. */
async function settle(queue: string, seen: string[]): Promise<void> {
  const first = item(0);
  await withTransaction(env.pool, (c) =>
    enqueue(c, { schema: SCHEMA, exchange: DEFAULT_EXCHANGE, routingKey: queue, message: first }),
  );
  await waitFor(() => seen.includes(first.id), { timeoutMs: 10_000, what: 'the first message' });
  await pause(200);
  notifications = 0;
}

/** A relay of this process on env.pool, leading and settled, and what a consumer of `queue` has seen. */
async function leadingRelay(name: string, queue: string): Promise<string[]> {
  const m = messaging(name, true);
  const seen = await consumeInto(m, queue);
  await waitFor(() => m.relay!.isLeader, { what: 'the relay to lead' });
  await settle(queue, seen);
  return seen;
}

it('wakes a relay of this process once the transaction commits, without NOTIFY', async () => {
  const queue = 'svc.wakeup-local';
  const seen = await leadingRelay('local', queue);

  const msg = item(1);
  await withTransaction(env.pool, async (c) => {
    await enqueue(c, { schema: SCHEMA, exchange: DEFAULT_EXCHANGE, routingKey: queue, message: msg });
    // A wake-up at the write rather than at the commit would poll now, find nothing, and sleep a minute.
    await pause(300);
  });
  await waitFor(() => seen.includes(msg.id), { timeoutMs: 5_000, what: 'the message, woken at commit' });
  await pause(100);
  expect(notifications).toBe(0);
});

it('wakes it after a statement that is its own transaction, and not for a rolled-back write', async () => {
  const queue = 'svc.wakeup-autocommit';
  const seen = await leadingRelay('autocommit', queue);

  const rolledBack = item(1);
  await expect(
    withTransaction(env.pool, async (c) => {
      await enqueue(c, { schema: SCHEMA, exchange: DEFAULT_EXCHANGE, routingKey: queue, message: rolledBack });
      throw new Error('rolled back');
    }),
  ).rejects.toThrow('rolled back');

  const msg = item(2);
  const client = await env.pool.connect();
  try {
    expect(client.getTransactionStatus()).toBe('I');
    await enqueue(client, { schema: SCHEMA, exchange: DEFAULT_EXCHANGE, routingKey: queue, message: msg });
  } finally {
    client.release();
  }
  await waitFor(() => seen.includes(msg.id), { timeoutMs: 5_000, what: 'the autocommitted message' });
  await pause(100);
  expect(seen).not.toContain(rolledBack.id);
  expect(notifications).toBe(0);
});

it("wakes it after a statement sent on its own pool, and NOTIFYs it for another pool's", async () => {
  const queue = 'svc.wakeup-pool';
  const seen = await leadingRelay('pool', queue); // the relay's pool is env.pool

  const own = item(1);
  await enqueue(env.pool, { schema: SCHEMA, exchange: DEFAULT_EXCHANGE, routingKey: queue, message: own });
  await waitFor(() => seen.includes(own.id), { timeoutMs: 5_000, what: "the message sent on the relay's pool" });
  await pause(100);
  expect(notifications).toBe(0);

  // Another pool on the same database: nothing tells the writer it is the relay's database, so it notifies.
  const other = new pg.Pool({ connectionString: env.db.url, max: 1 });
  cleanups.push(() => other.end());
  const msg = item(2);
  await enqueue(other, { schema: SCHEMA, exchange: DEFAULT_EXCHANGE, routingKey: queue, message: msg });
  await waitFor(() => seen.includes(msg.id), { timeoutMs: 5_000, what: 'the message sent on another pool' });
  expect(notifications).toBeGreaterThanOrEqual(1);
});

it('NOTIFYs a relay that runs in another process', async () => {
  const queue = 'svc.wakeup-remote';
  const child = spawn(process.execPath, [WORKER], {
    env: {
      ...process.env,
      AMQP_URL: env.vhost.url,
      DATABASE_URL: env.db.url,
      QUEUE: queue,
      ROLE: 'relay',
      MODE: 'plain',
      POLL_MS: String(POLL_MS),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const lines: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => lines.push(l));
  await waitFor(() => lines.includes('leading'), { timeoutMs: 30_000, what: 'the other process to lead' });

  const m = messaging('remote', false); // this process runs no relay
  const seen = await consumeInto(m, queue);
  await settle(queue, seen);

  const msg = item(1);
  await withTransaction(env.pool, (c) =>
    enqueue(c, { schema: SCHEMA, exchange: DEFAULT_EXCHANGE, routingKey: queue, message: msg }),
  );
  await waitFor(() => seen.includes(msg.id), { timeoutMs: 5_000, what: 'the message, woken by NOTIFY' });
  expect(notifications).toBeGreaterThanOrEqual(1);
});
