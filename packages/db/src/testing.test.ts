import { createTestDatabase, waitForLockWait, type TestDatabase } from './testing.ts';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('dbpkg_testing');
  await db.pool.query('CREATE TABLE lock_wait_row (id int PRIMARY KEY, n int NOT NULL)');
  await db.pool.query('INSERT INTO lock_wait_row VALUES (1, 0)');
});
afterAll(async () => {
  await db.drop();
});

describe('waitForLockWait', () => {
  it('finds a backend blocked on a row lock by its pid and by its query, and times out when none is', async () => {
    const holder = await db.pool.connect();
    const waiter = await db.pool.connect();
    try {
      const pid = (await waiter.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM lock_wait_row WHERE id = 1 FOR UPDATE');
      const blocked = waiter.query('UPDATE lock_wait_row SET n = n + 1 WHERE id = 1');
      blocked.catch(() => {}); // awaited below; if an expectation fails first, its connection's end rejects it

      const byPid = await waitForLockWait(db.pool, pid);
      expect(byPid).toEqual([{ pid, query: 'UPDATE lock_wait_row SET n = n + 1 WHERE id = 1' }]);
      expect(await waitForLockWait(db.pool, { query: '%lock_wait_row SET n%' })).toEqual(byPid);
      // the holder, idle in its transaction, is no lock waiter: one waiter is not two
      await expect(waitForLockWait(db.pool, { atLeast: 2 }, { timeoutMs: 200 })).rejects.toThrow(
        /timed out after 200 ms .*\(at least 2 at once\): 1 such lock waiter/,
      );
      await expect(waitForLockWait(db.pool, { query: '%no such statement%' }, { timeoutMs: 200 })).rejects.toThrow(
        /query LIKE '%no such statement%'\): 0 such lock waiter/,
      );

      await holder.query('COMMIT');
      await blocked;
      await expect(waitForLockWait(db.pool, pid, { timeoutMs: 200, what: 'the updater' })).rejects.toThrow(
        `timed out after 200 ms waiting for the updater (pid ${pid}): 0 such lock waiter(s) in this database`,
      );
    } finally {
      // destroyed, not returned to the pool: a failed expectation leaves a transaction open and the waiter blocked
      holder.release(true);
      waiter.release(true);
    }
  });
});
