import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { withTransaction } from '@exchange/db';
import { Registry } from 'prom-client';
import { DEFAULT_EXCHANGE, createMessaging, silentLogger, type Consumer, type Messaging } from './index.ts';
import { SCHEMA, TestItem, count, setupEnv, waitFor, type TestEnv } from '../test/helpers.ts';

const WORKER = fileURLToPath(new URL('../test/fixtures/worker.ts', import.meta.url));

let env: TestEnv;
const children: ChildProcess[] = [];
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  env = await setupEnv('msg_crash');
});

// Each test stops its processes and relays, so the next one starts with no active relay on the schema.
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const f of cleanups.splice(0).reverse()) await f().catch(() => {});
});

afterAll(async () => {
  await env?.drop();
});

/** Start the worker fixture; resolves with the child and a function waiting for a line matching a prefix. */
async function startWorker(role: string, mode: string, queue: string, extraEnv: Record<string, string> = {}) {
  const child = spawn(process.execPath, [WORKER], {
    env: {
      ...process.env,
      AMQP_URL: env.vhost.url,
      DATABASE_URL: env.db.url,
      QUEUE: queue,
      ROLE: role,
      MODE: mode,
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: child.stdout! }).on('line', (l) => {
    lines.push(l);
    for (const w of waiters.splice(0)) w();
  });
  const line = (prefix: string) =>
    waitFor(() => lines.find((l) => l.startsWith(prefix)), { timeoutMs: 30_000, what: `worker line "${prefix}"` });
  await line('ready');
  const kill9 = async () => {
    child.kill('SIGKILL');
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
  };
  return { child, line, kill9 };
}

async function parent(prefix: string, relay: boolean, registry = new Registry()): Promise<Messaging> {
  const m = createMessaging({
    url: env.vhost.url,
    service: 'svc',
    connectionName: `parent-${prefix}`,
    pool: env.pool,
    schema: SCHEMA,
    logger: silentLogger,
    registry,
    relay: relay ? { pollIntervalMs: 100, standbyRetryMs: 200 } : false,
  });
  cleanups.push(() => m.close());
  return m;
}

function recordingConsumer(m: Messaging, queue: string, seen: string[]): Promise<Consumer> {
  return m.consume({
    queue,
    handler: async (msg, client) => {
      const item = TestItem.validate(msg);
      seen.push(item.id);
      await client.query(
        'INSERT INTO svc.effects (message_id, seq) VALUES ($1, $2) ON CONFLICT (message_id) DO UPDATE SET applied = svc.effects.applied + 1',
        [item.id, item.payload.seq],
      );
    },
  });
}

async function enqueueTo(m: Messaging, queue: string, seq: number) {
  const msg = TestItem.create({ seq, key: 'k' }, { producer: 'svc' });
  await withTransaction(env.pool, (c) => m.enqueue(c, { exchange: DEFAULT_EXCHANGE, routingKey: queue, message: msg }));
  return msg;
}

const applied = (id: string) =>
  env.pool
    .query<{ applied: number }>('SELECT applied FROM svc.effects WHERE message_id = $1', [id])
    .then((r) => r.rows[0]?.applied ?? 0);

describe('crashes', () => {
  it('consumer killed (kill -9) mid-handler: the message is redelivered and applied exactly once', async () => {
    const queue = 'svc.crash-before-commit';
    const worker = await startWorker('consumer', 'before-commit', queue);
    const p = await parent('a', true);
    await p.declareQueue({ name: queue, retry: { attempts: 2, backoffMs: [100] } });
    await p.start();
    const msg = await enqueueTo(p, queue, 1);
    await worker.line(`handling ${msg.id}`);
    await worker.kill9();
    expect(await applied(msg.id)).toBe(0); // its transaction never committed

    const seen: string[] = [];
    await recordingConsumer(p, queue, seen);
    await waitFor(async () => (await applied(msg.id)) === 1, { what: 'redelivered message applied' });
    await new Promise((r) => setTimeout(r, 300));
    expect(await applied(msg.id)).toBe(1);
    expect(seen).toEqual([msg.id]);
  });

  it('consumer killed after commit, before ack: the redelivery is recognised by the inbox and skipped', async () => {
    const queue = 'svc.crash-after-commit';
    const worker = await startWorker('consumer', 'after-commit', queue);
    const registry = new Registry();
    const p = await parent('b', true, registry);
    await p.declareQueue({ name: queue, retry: { attempts: 2, backoffMs: [100] } });
    await p.start();
    const msg = await enqueueTo(p, queue, 2);
    await worker.line(`committed ${msg.id}`);
    await worker.kill9();
    expect(await applied(msg.id)).toBe(1);

    const seen: string[] = [];
    await recordingConsumer(p, queue, seen);
    await waitFor(
      async () =>
        (await registry.getSingleMetricAsString('messages_consumed_total')).includes(
          `queue="${queue}",outcome="duplicate"} 1`,
        ),
      { what: 'duplicate skipped' },
    );
    expect(seen).toEqual([]); // the handler never ran again
    expect(await applied(msg.id)).toBe(1);
  });

  it('relay killed between broker confirm and mark-sent: the message is published again and deduplicated by the inbox', async () => {
    const queue = 'svc.crash-relay';
    const registry = new Registry();
    const p = await parent('c', false, registry); // consumer only; the relay runs in the worker first
    await p.declareQueue({ name: queue, retry: { attempts: 2, backoffMs: [100] } });
    await p.start();
    const seen: string[] = [];
    await recordingConsumer(p, queue, seen);

    const worker = await startWorker('relay', 'after-confirm', queue);
    const msg = await enqueueTo(p, queue, 3);
    await worker.line('confirmed');
    await worker.kill9();
    await waitFor(async () => (await applied(msg.id)) === 1, { what: 'first copy applied' });
    expect(
      await count(env.pool, 'SELECT count(*) FROM svc.outbox WHERE message_id = $1 AND sent_at IS NULL', [msg.id]),
    ).toBe(1);

    // A new relay (another replica) takes over the outbox and publishes the row again.
    const r = await parent('d', true);
    await r.start();
    await r.relay!.drained();
    await waitFor(
      async () =>
        (await registry.getSingleMetricAsString('messages_consumed_total')).includes(
          `queue="${queue}",outcome="duplicate"} 1`,
        ),
      { what: 'second copy skipped as duplicate' },
    );
    expect(seen).toEqual([msg.id]);
    expect(await applied(msg.id)).toBe(1);
  });

  it('a message that keeps killing its consumer is dead-lettered once it is handled past the delivery limit', async () => {
    const queue = 'svc.crash-loop';
    const worker = await startWorker('consumer', 'before-commit', queue, { DELIVERY_LIMIT: '1' });
    const p = await parent('e', true);
    await p.declareQueue({ name: queue, deliveryLimit: 1, retry: { attempts: 2, backoffMs: [100] } });
    await p.start();
    const msg = await enqueueTo(p, queue, 4);
    await worker.line(`handling ${msg.id}`);
    await worker.kill9();
    // redelivered and handled again (counted in message_attempts): the second crash
    const again = await startWorker('consumer', 'before-commit', queue, { DELIVERY_LIMIT: '1' });
    await again.line(`handling ${msg.id}`);
    await again.kill9();
    expect(
      await count(env.pool, 'SELECT starts FROM svc.message_attempts WHERE queue = $1 AND message_id = $2', [
        queue,
        msg.id,
      ]),
    ).toBe(1);

    const seen: string[] = [];
    await recordingConsumer(p, queue, seen);
    const row = await waitFor(
      async () => (await env.pool.query('SELECT * FROM svc.dead_letters WHERE message_id = $1', [msg.id])).rows[0],
      { what: 'dead letter' },
    );
    expect(row.reason).toMatch(/^delivery limit exceeded: handled 2 times after redeliveries/);
    expect(seen).toEqual([]);
    expect(await applied(msg.id)).toBe(0);
  });
});
