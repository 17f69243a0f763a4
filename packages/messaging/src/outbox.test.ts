/**
 * The outbox insert (`enqueue`, `enqueueMany`): one statement takes the ordering keys' locks, writes the rows in list
 * order and NOTIFYs the relay. What the relay's per-key order rests on: a transaction enqueueing under a key waits for
 * every open transaction that enqueued under it, and draws its sequence numbers only after that one committed.
 */
import pg from 'pg';
import { enqueue, enqueueMany, type EnqueueOptions } from './outbox.ts';
import { outboxChannel } from './tables.ts';
import { SCHEMA, TestItem, setupEnv, waitFor, type TestEnv } from '../test/helpers.ts';

let env: TestEnv;
const clients: pg.PoolClient[] = [];
beforeAll(async () => {
  env = await setupEnv('msg_outbox');
});
afterEach(async () => {
  for (const c of clients.splice(0)) {
    await c.query('ROLLBACK').catch(() => {});
    c.release();
  }
});
afterAll(async () => {
  await env?.drop();
});

const item = (seq: number, orderingKey?: string): EnqueueOptions => ({
  schema: SCHEMA,
  exchange: 'x',
  routingKey: `k.${orderingKey ?? 'none'}`,
  message: TestItem.create({ seq, key: orderingKey ?? 'none' }, { producer: 'svc' }),
  ...(orderingKey ? { orderingKey } : {}),
});

async function begin(): Promise<pg.PoolClient> {
  const c = await env.pool.connect();
  clients.push(c);
  await c.query('BEGIN');
  return c;
}

async function sequencesOf(seqs: number[]): Promise<bigint[]> {
  const { rows } = await env.pool.query<{ sequence: string; seq: number }>(
    `SELECT sequence::text, (message->'payload'->>'seq')::int AS seq FROM ${SCHEMA}.outbox
      WHERE (message->'payload'->>'seq')::int = ANY($1::int[])`,
    [seqs],
  );
  const bySeq = new Map(rows.map((r) => [r.seq, BigInt(r.sequence)]));
  return seqs.map((s) => bySeq.get(s)!);
}

/** Whether `pid` is waiting for an advisory lock. */
async function waitsForAdvisoryLock(pid: number): Promise<boolean> {
  const { rows } = await env.pool.query(
    `SELECT 1 FROM pg_locks WHERE pid = $1 AND locktype = 'advisory' AND NOT granted`,
    [pid],
  );
  return rows.length > 0;
}

it('writes a batch in list order and wakes the relay once, at commit', async () => {
  const listener = new pg.Client({ connectionString: env.db.url });
  await listener.connect();
  const notes: string[] = [];
  listener.on('notification', (n) => notes.push(n.channel));
  await listener.query(`LISTEN ${outboxChannel(SCHEMA)}`);
  try {
    const c = await begin();
    const out = await enqueueMany(c, [item(103, 'A'), item(101), item(102, 'B'), item(100, 'A')]);
    expect(out).toHaveLength(4);
    await new Promise((r) => setTimeout(r, 100));
    expect(notes).toEqual([]); // nothing before the commit
    await c.query('COMMIT');
    const [s103, s101, s102, s100] = await sequencesOf([103, 101, 102, 100]);
    expect(s103! < s101! && s101! < s102! && s102! < s100!).toBe(true);
    await waitFor(() => notes.length === 1, { what: 'the NOTIFY' });
  } finally {
    await listener.end();
  }
});

it('a transaction enqueueing under a key waits for the open one that did, and comes after it', async () => {
  const first = await begin();
  await enqueueMany(first, [item(200, 'M'), item(201, 'N')]);

  const second = await begin();
  const { rows } = await second.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  let done = false;
  const waiting = enqueue(second, item(202, 'N')).finally(() => (done = true));
  await waitFor(() => waitsForAdvisoryLock(rows[0]!.pid), { what: 'the second transaction to wait for the key' });
  expect(done).toBe(false);

  // Another key, and no key, go ahead meanwhile.
  const other = await begin();
  await enqueueMany(other, [item(203, 'O'), item(204)]);
  await other.query('COMMIT');

  await first.query('COMMIT');
  await waiting;
  await second.query('COMMIT');
  const [s200, s201, s202] = await sequencesOf([200, 201, 202]);
  // drawn after the first transaction committed: the relay, reading in sequence order, never sees 202 before 201
  expect(s202! > s201! && s201! > s200!).toBe(true);
});
