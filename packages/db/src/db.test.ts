import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from './testing.ts';
import { isRetryableTxError, withTransaction } from './index.ts';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('dbpkg');
  await db.pool.query('CREATE TABLE counter (id int PRIMARY KEY, n bigint NOT NULL)');
  await db.pool.query('INSERT INTO counter VALUES (1, 0)');
});
afterAll(async () => {
  await db.drop();
});

describe('withTransaction', () => {
  it('retries serialization failures so 40 concurrent read-modify-write increments all land', async () => {
    await db.pool.query('UPDATE counter SET n = 0 WHERE id = 1');
    let attempts = 0;
    const workers = Array.from({ length: 40 }, () =>
      withTransaction(
        db.pool,
        async (client) => {
          attempts++;
          const { rows } = await client.query<{ n: string }>('SELECT n FROM counter WHERE id = 1');
          // A lost update would be possible here without SERIALIZABLE + retry.
          await new Promise((r) => setTimeout(r, 2));
          await client.query('UPDATE counter SET n = $1 WHERE id = 1', [BigInt(rows[0]!.n) + 1n]);
        },
        { isolation: 'serializable', retries: 100 },
      ),
    );
    await Promise.all(workers);
    const { rows } = await db.pool.query<{ n: string }>('SELECT n FROM counter WHERE id = 1');
    expect(rows[0]!.n).toBe('40');
    // The retry path really ran: with 40 overlapping writers some must have been replayed.
    expect(attempts).toBeGreaterThan(40);
  });

  it('surfaces a serialization failure when retries are exhausted', async () => {
    const run = () =>
      withTransaction(
        db.pool,
        async (client) => {
          const { rows } = await client.query<{ n: string }>('SELECT n FROM counter WHERE id = 1');
          await new Promise((r) => setTimeout(r, 20));
          await client.query('UPDATE counter SET n = $1 WHERE id = 1', [BigInt(rows[0]!.n) + 1n]);
        },
        { isolation: 'serializable', retries: 0 },
      );
    const results = await Promise.allSettled(Array.from({ length: 5 }, run));
    const failed = results.filter((r) => r.status === 'rejected');
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((r) => isRetryableTxError((r as PromiseRejectedResult).reason))).toBe(true);
  });

  it('rolls back everything on a non-retryable error', async () => {
    await expect(
      withTransaction(db.pool, async (client) => {
        await client.query('UPDATE counter SET n = -1 WHERE id = 1');
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    const { rows } = await db.pool.query<{ n: string }>('SELECT n FROM counter WHERE id = 1');
    expect(rows[0]!.n).not.toBe('-1');
  });
});

describe('withTransaction with an opening statement (sent with BEGIN)', () => {
  it('runs it first, inside the transaction, and hands its result over', async () => {
    await db.pool.query('UPDATE counter SET n = 0 WHERE id = 1');
    const odd = `it's a \\ "quoted" value`;
    const seen = await withTransaction(
      db.pool,
      async (client, opening) => {
        const { rows } = await client.query<{ x: string; iso: string }>(
          `SELECT txid_current()::text AS x, current_setting('transaction_isolation') AS iso`,
        );
        return { opening: opening!.rows[0] as { n: string; x: string; v: string }, now: rows[0]! };
      },
      {
        isolation: 'repeatable read',
        opening: `UPDATE counter SET n = 7 WHERE id = 1
                   RETURNING n::text, txid_current()::text AS x, ${pg.escapeLiteral(odd)} AS v`,
      },
    );
    expect(seen.opening.n).toBe('7');
    expect(seen.opening.x).toBe(seen.now.x); // one transaction
    expect(seen.now.iso).toBe('repeatable read');
    expect(seen.opening.v).toBe(odd); // an inlined literal comes back as it went in
  });

  it('rolls it back with the rest, and rolls back when it fails itself', async () => {
    await db.pool.query('UPDATE counter SET n = 0 WHERE id = 1');
    await expect(
      withTransaction(db.pool, async () => Promise.reject(new Error('boom')), {
        opening: 'UPDATE counter SET n = 8 WHERE id = 1',
      }),
    ).rejects.toThrow('boom');
    await expect(withTransaction(db.pool, async () => 'not reached', { opening: 'SELECT 1 / 0' })).rejects.toThrow(
      /division by zero/,
    );
    const { rows } = await db.pool.query<{ n: string }>('SELECT n FROM counter WHERE id = 1');
    expect(rows[0]!.n).toBe('0');
    // no connection was returned to the pool inside a transaction
    const { rows: open } = await db.pool.query(
      `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'`,
    );
    expect(open).toEqual([]);
  });
});

describe('createPool', () => {
  it('a checked-out client losing its connection fails its queries, never the process', async () => {
    const fixture = fileURLToPath(new URL('../test/fixtures/checked-out-client.ts', import.meta.url));
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', fixture], {
      env: { ...process.env, DATABASE_URL: db.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const exited = once(child, 'exit');
    while (!/PID (\d+)/.test(out) && child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
    const pid = Number(/PID (\d+)/.exec(out)?.[1]);
    expect(pid).toBeGreaterThan(0);
    // what PostgreSQL does to every session on a restart (administrator command, then the socket closes)
    await db.pool.query('SELECT pg_terminate_backend($1)', [pid]);
    const [code] = await exited;
    expect(out).toContain('the dead client failed; the pool answered 1');
    expect(code).toBe(0);
  });
});
