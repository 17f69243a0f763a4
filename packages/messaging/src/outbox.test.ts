/**
 * The outbox insert (`enqueue`, `enqueueMany`, and `enqueueGuarded` behind a state change of the caller's): one
 * statement takes the ordering keys' locks, writes the rows in list order and NOTIFYs the relay. What the relay's per-key order rests on: a transaction enqueueing under a key waits for
 * every open transaction that enqueued under it, and draws its sequence numbers only after that one committed.
 */
import pg from 'pg';
import { waitForLockWait } from '@exchange/db/testing';
import { enqueue, enqueueGuarded, enqueueMany, type EnqueueOptions } from './outbox.ts';
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

it('stores each message and its headers as given, whatever characters they hold', async () => {
  // The rows reach PostgreSQL as one JSON document: quotes, backslashes, control and non-ASCII characters must come
  // out as they went in.
  const key = 'q"uo\\te\\" \n\t é 🚀 \u2028 {a,b} NULL';
  const given = { ...item(110), message: TestItem.create({ seq: 110, key }, { producer: 'svc' }) };
  const stamped = { ...item(111), headers: { 'x-note': 'a "b" \\c' }, stampTransactionTime: ['payload', 'key'] };
  const c = await begin();
  await enqueueMany(c, [given, stamped]);
  const { rows } = await c.query<{ message: unknown; headers: Record<string, string>; now: Date }>(
    `SELECT message, headers, now() FROM ${SCHEMA}.outbox WHERE (message->'payload'->>'seq')::int IN (110, 111)
      ORDER BY sequence`,
  );
  expect(rows[0]!.message).toEqual(JSON.parse(JSON.stringify(given.message)));
  expect((rows[0]!.message as { payload: { key: string } }).payload.key).toBe(key);
  expect(rows[1]!.headers['x-note']).toBe('a "b" \\c');
  expect((rows[1]!.message as { payload: { key: string } }).payload.key).toBe(rows[1]!.now.toISOString());
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

describe('enqueueGuarded: a state change and its messages in one statement', () => {
  beforeAll(async () => {
    await env.pool.query(
      `CREATE TABLE ${SCHEMA}.things (id text PRIMARY KEY, state text NOT NULL, changed_at timestamptz)`,
    );
  });
  const things = async (entries: Array<[string, string]>) => {
    await env.pool.query(
      `INSERT INTO ${SCHEMA}.things (id, state) SELECT * FROM unnest($1::text[], $2::text[])
         ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state`,
      [entries.map((e) => e[0]), entries.map((e) => e[1])],
    );
  };
  const activate = (ids: string[]) => ({
    sql: `UPDATE ${SCHEMA}.things SET state = 'active', changed_at = now()
           WHERE id = ANY($1::text[]) AND state = 'draft' RETURNING id, state, changed_at`,
    values: [ids],
    dependsOn: ids,
  });

  it("writes a message only for a row the guard changed, in list order, stamped with the change's time", async () => {
    await things([
      ['g1', 'draft'],
      ['g2', 'active'],
      ['g3', 'draft'],
    ]);
    const stamped = (seq: number): EnqueueOptions => ({ ...item(seq, 'G'), stampTransactionTime: ['occurredAt'] });
    // outside a transaction: the statement is its own
    const rows = await enqueueGuarded<{ id: string; changed_at: Date }>(
      env.pool,
      [stamped(303), stamped(301), stamped(302)],
      activate(['g3', 'g2', 'g1']),
    );
    expect(rows.map((r) => r.id).sort()).toEqual(['g1', 'g3']);
    const [s303, s301, s302] = await sequencesOf([303, 301, 302]);
    expect(s301).toBeUndefined(); // g2 was not a draft: no message
    expect(s303! < s302!).toBe(true);
    const { rows: written } = await env.pool.query<{ at: string }>(
      `SELECT message->>'occurredAt' AS at FROM ${SCHEMA}.outbox WHERE (message->'payload'->>'seq')::int = 303`,
    );
    expect(written[0]!.at).toBe(rows.find((r) => r.id === 'g3')!.changed_at.toISOString());
    // a replay changes nothing and writes nothing
    expect(await enqueueGuarded(env.pool, [stamped(304)], activate(['g3']))).toEqual([]);
    expect((await sequencesOf([304]))[0]).toBeUndefined();
  });

  it('a failure after the change rolls back the change and the messages together', async () => {
    await things([['g5', 'draft']]);
    const bad = { ...item(305, 'G'), routingKey: null as unknown as string }; // routing_key is NOT NULL
    await expect(enqueueGuarded(env.pool, [bad], activate(['g5']))).rejects.toThrow(/routing_key/);
    const { rows } = await env.pool.query(`SELECT state FROM ${SCHEMA}.things WHERE id = 'g5'`);
    expect(rows).toEqual([{ state: 'draft' }]);
  });

  it("takes the ordering key's lock only after its change: a guard waiting for a row holds no key", async () => {
    await things([['g6', 'draft']]);
    const rowHolder = await begin();
    await rowHolder.query(`SELECT 1 FROM ${SCHEMA}.things WHERE id = 'g6' FOR UPDATE`);
    const guarded = await env.pool.connect();
    try {
      const { rows } = await guarded.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const waiting = enqueueGuarded(guarded, [item(306, 'K')], activate(['g6']));
      await waitForLockWait(env.pool, rows[0]!.pid, { what: 'the guarded statement to wait for the row' });
      const held = await env.pool.query(`SELECT 1 FROM pg_locks WHERE pid = $1 AND locktype = 'advisory'`, [
        rows[0]!.pid,
      ]);
      expect(held.rows).toEqual([]); // neither holds nor waits for the key's lock
      // another transaction enqueues under the same key meanwhile, and is not held up by the waiting statement
      const other = await begin();
      await enqueue(other, item(307, 'K'));
      await other.query('COMMIT');
      await rowHolder.query('COMMIT');
      expect(await waiting).toHaveLength(1);
      const [s306, s307] = await sequencesOf([306, 307]);
      expect(s307! < s306!).toBe(true);
    } finally {
      guarded.release();
    }
  });
});
