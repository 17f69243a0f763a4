/**
 * The relay marks what the broker confirmed as sent in the statement of its next poll when more work follows
 * (one round trip and one commit instead of two), alone when none follows within `markDelayMs`, and before it stops.
 * Statements are counted on the relay's real PostgreSQL session.
 */
import pg from 'pg';
import { withTransaction } from '@exchange/db';
import { DEFAULT_EXCHANGE, createMessaging, silentLogger, type Messaging } from './index.ts';
import { SCHEMA, TestItem, setupEnv, waitFor, type TestEnv } from '../test/helpers.ts';

let env: TestEnv;
const cleanups: Array<() => Promise<void>> = [];
/** Every statement text run on a connection of the counting pool. */
const statements: string[] = [];

class CountingClient extends pg.Client {
  override query(...args: unknown[]): never {
    const config = args[0];
    const text = typeof config === 'string' ? config : (config as { text?: unknown } | null)?.text;
    if (typeof text === 'string') statements.push(text);
    return (super.query as (...a: unknown[]) => never).apply(this, args);
  }
}

beforeAll(async () => {
  env = await setupEnv('msg_mark');
});
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f().catch(() => {});
  statements.length = 0;
});
afterAll(async () => {
  await env?.drop();
});

async function start(queue: string, markDelayMs: number): Promise<{ m: Messaging; seen: string[] }> {
  const pool = new pg.Pool({ connectionString: env.db.url, Client: CountingClient, max: 4 });
  cleanups.push(() => pool.end());
  const m = createMessaging({
    url: env.vhost.url,
    service: 'svc',
    connectionName: `mark-${queue}`,
    pool,
    schema: SCHEMA,
    logger: silentLogger,
    relay: { pollIntervalMs: 60_000, markDelayMs },
  });
  cleanups.push(() => m.close());
  await m.declareQueue({ name: queue });
  await m.start();
  const seen: string[] = [];
  await m.consume({
    queue,
    handler: async (msg) => {
      seen.push(TestItem.validate(msg).id);
    },
  });
  return { m, seen };
}

async function enqueueTo(m: Messaging, queue: string, seq: number): Promise<string> {
  const msg = TestItem.create({ seq, key: 'k' }, { producer: 'svc' });
  await withTransaction(env.pool, (c) => m.enqueue(c, { exchange: DEFAULT_EXCHANGE, routingKey: queue, message: msg }));
  return msg.id;
}

async function sentAt(id: string): Promise<Date | null> {
  const { rows } = await env.pool.query<{ sent_at: Date | null }>(
    `SELECT sent_at FROM ${SCHEMA}.outbox WHERE message_id = $1`,
    [id],
  );
  return rows[0]!.sent_at;
}

const alone = () => statements.filter((s) => /^\s*UPDATE\b[\s\S]*SET sent_at = now\(\)/.test(s)).length;
const folded = () => statements.filter((s) => /^\s*WITH marked AS \(/.test(s)).length;

it('marks a confirmed batch in the statement of the next poll when more work follows', async () => {
  const queue = 'svc.mark-folded';
  const { m, seen } = await start(queue, 60_000);
  const a = await enqueueTo(m, queue, 1);
  await waitFor(() => seen.includes(a), { what: 'the first message' });
  await new Promise((r) => setTimeout(r, 200));
  expect(await sentAt(a)).toBeNull(); // confirmed, waiting for the next poll

  const b = await enqueueTo(m, queue, 2);
  await waitFor(() => seen.includes(b), { what: 'the second message' });
  await waitFor(async () => (await sentAt(a)) !== null, { what: 'the first row marked by the next poll' });
  expect(alone()).toBe(0);
  expect(folded()).toBeGreaterThanOrEqual(1);

  // stopping marks what is left
  await m.close();
  expect(await sentAt(b)).not.toBeNull();
  expect(alone()).toBe(1);
  expect(seen).toEqual([a, b]);
});

it.each([
  [50, 'alone once no more work came within markDelayMs'],
  [0, 'at once with markDelayMs 0'],
])('markDelayMs %i: marks a confirmed batch %s', async (markDelayMs) => {
  const queue = `svc.mark-alone-${markDelayMs}`;
  const { m, seen } = await start(queue, markDelayMs);
  const a = await enqueueTo(m, queue, 1);
  await waitFor(() => seen.includes(a), { what: 'the message' });
  await waitFor(async () => (await sentAt(a)) !== null, { timeoutMs: 5_000, what: 'the row marked alone' });
  expect(alone()).toBe(1);
  expect(folded()).toBe(0);
});
