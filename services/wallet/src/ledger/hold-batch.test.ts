/**
 * The hold API's group commit (createHolds + createHoldBatcher): every hold of a batch gets the answer it would have
 * got alone, a failed batch is retried hold by hold without doubling, a busy account never makes a batch wait; a
 * batch of one is one statement (createHoldAlone) with the same answers.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { withTransaction } from '@exchange/db';
import { createTestDatabase, recordStatements, waitForLockWait, type TestDatabase } from '@exchange/db/testing';
import { AppError } from '@exchange/platform';
import { createHoldBatcher } from './hold-batch.ts';
import { createHold, createHoldAlone, createHolds, type CreateHoldInput } from './holds.ts';
import { userBalances } from './service.ts';
import { runMigrations } from '../migrate.ts';
import { assertLedgerInvariants, fundUser } from '../testing/index.ts';

let db: TestDatabase;
let pool: pg.Pool;
beforeAll(async () => {
  db = await createTestDatabase('wallet_hold_batch');
  await runMigrations(db.pool);
  pool = new pg.Pool({ connectionString: db.url, max: 10 });
  pool.on('error', () => {});
});
afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

const hold = (userId: string, asset: string, amount: bigint, holdId = randomUUID()): CreateHoldInput => ({
  holdId,
  userId,
  asset,
  amount,
  reason: 'order',
  refType: 'order',
  refId: holdId,
});
const held = async (userId: string, asset: string) => (await userBalances(db.pool, userId)).get(asset)?.held;
const codeOf = (e: unknown) => (e instanceof AppError ? e.code : String(e));

test('one batch: each hold decided as if alone and in order (funds, replays, conflicts, zero amounts)', async () => {
  const a = randomUUID();
  const b = randomUUID();
  await fundUser(db.pool, a, 'USD', 1_000n);
  await fundUser(db.pool, b, 'USD', 500n);
  const earlier = hold(a, 'USD', 100n);
  await withTransaction(db.pool, (c) => createHold(c, earlier));

  const first = hold(a, 'USD', 600n);
  const noAccount = randomUUID();
  const items = [
    first, // 900 available: ok
    hold(a, 'USD', 301n), // 300 left after `first`: refused
    hold(b, 'USD', 500n), // another account: ok
    { ...first }, // the same hold again in the batch: a replay of `first`
    { ...first, amount: 601n }, // the same id with other terms: conflict
    earlier, // committed before: a replay
    { ...earlier, amount: 1n }, // conflicting reuse of a committed id
    hold(a, 'USD', 0n), // zero
    hold(a, 'USD', 300n), // exactly what is left: ok
    hold(noAccount, 'USD', 1n), // a user without an account: refused, and no account is made for it
  ];
  const out = await withTransaction(db.pool, (c) => createHolds(c, items));
  const summary = out.map((o) =>
    o.ok ? (o.value.created ? 'created' : 'replay') : 'busy' in o ? 'busy' : o.error.code,
  );
  expect(summary).toEqual([
    'created',
    'INSUFFICIENT_FUNDS',
    'created',
    'replay',
    'HOLD_CONFLICT',
    'replay',
    'HOLD_CONFLICT',
    'AMOUNT_ZERO',
    'created',
    'INSUFFICIENT_FUNDS',
  ]);
  expect(await held(a, 'USD')).toBe(1_000n);
  expect(await held(b, 'USD')).toBe(500n);
  expect((await userBalances(db.pool, noAccount)).size).toBe(0);
  await assertLedgerInvariants(db.pool);
});

test('group commit: 60 concurrent holds over 6 accounts share transactions, never overdraw, the sums are exact', async () => {
  const users = Array.from({ length: 6 }, () => randomUUID());
  for (const u of users) await fundUser(db.pool, u, 'BTC', 1_000n);
  const sizes: number[] = [];
  const batcher = createHoldBatcher(pool, { onBatch: (n) => sizes.push(n) });
  const items = Array.from({ length: 60 }, (_, i) => hold(users[i % 6]!, 'BTC', 150n));
  const results = await Promise.allSettled(items.map((i) => batcher.submit(i)));
  expect(Math.max(...sizes)).toBeGreaterThan(1); // they really were batched
  for (const u of users) {
    const mine = results.filter((_, i) => items[i]!.userId === u);
    // 1,000 / 150: six holds fit, four are refused, per account, whatever the batching
    expect(mine.filter((r) => r.status === 'fulfilled').length).toBe(6);
    expect(mine.filter((r) => r.status === 'rejected').map((r) => codeOf(r.reason))).toEqual(
      Array(4).fill('INSUFFICIENT_FUNDS'),
    );
    expect(await held(u, 'BTC')).toBe(900n);
  }
  await assertLedgerInvariants(db.pool);
});

test('a batch that fails half-way rolls back whole and is retried hold by hold: nothing doubled, nothing lost', async () => {
  const u = randomUUID();
  await fundUser(db.pool, u, 'ETH', 10_000n);
  let failures = 0;
  const batcher = createHoldBatcher(pool, {
    onBatchFailure: () => failures++,
    // the holds are written, then the transaction fails before its commit (once, in the first multi-hold batch)
    beforeCommit: async (_c, items) => {
      if (items.length > 1 && failures === 0) throw new Error('injected fault after the inserts');
    },
  });
  const blocker = batcher.submit(hold(u, 'ETH', 1n)); // runs alone; the next ones queue behind it
  const items = Array.from({ length: 8 }, () => hold(u, 'ETH', 1_000n));
  const results = await Promise.all(items.map((i) => batcher.submit(i)));
  await blocker;
  expect(failures).toBe(1);
  expect(results.every((r) => r.created)).toBe(true);
  // every hold once: the failed batch left nothing behind
  expect(await held(u, 'ETH')).toBe(8_001n);
  const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM wallet.holds WHERE user_id = $1', [u]);
  expect(rows[0].n).toBe(9);
  // and a replay of any of them is a replay, not a second hold
  expect((await batcher.submit(items[3]!)).created).toBe(false);
  expect(await held(u, 'ETH')).toBe(8_001n);
  await assertLedgerInvariants(db.pool);
});

test('a batch skips an account another transaction holds locked, and that hold still gets its answer', async () => {
  const busy = randomUUID();
  const free = randomUUID();
  await fundUser(db.pool, busy, 'USD', 1_000n);
  await fundUser(db.pool, free, 'USD', 1_000n);
  const locker = await pool.connect();
  await locker.query('BEGIN');
  await locker.query(`SELECT 1 FROM wallet.accounts WHERE user_id = $1 FOR UPDATE`, [busy]);

  const skipped = await withTransaction(db.pool, (c) =>
    createHolds(c, [hold(free, 'USD', 100n), hold(busy, 'USD', 100n)], { skipLocked: true }),
  );
  expect(skipped.map((o) => (o.ok ? 'created' : 'busy' in o ? 'busy' : o.error.code))).toEqual(['created', 'busy']);
  expect(await held(busy, 'USD')).toBe(0n);

  const batcher = createHoldBatcher(pool);
  const blocker = batcher.submit(hold(free, 'USD', 1n));
  const pending = [batcher.submit(hold(free, 'USD', 100n)), batcher.submit(hold(busy, 'USD', 200n))];
  await blocker;
  await new Promise((r) => setTimeout(r, 200));
  expect(await held(free, 'USD')).toBe(201n); // the free account's hold did not wait for the lock
  await locker.query('COMMIT');
  locker.release();
  await Promise.all(pending);
  expect(await held(busy, 'USD')).toBe(200n);
  await assertLedgerInvariants(db.pool);
});

test('a hold waiting for its locked account holds up no later batch, and gets its answer when the lock goes', async () => {
  const busy = randomUUID();
  const other = randomUUID();
  await fundUser(db.pool, busy, 'USD', 1_000n);
  await fundUser(db.pool, other, 'USD', 1_000n);
  const locker = await pool.connect();
  await locker.query('BEGIN');
  await locker.query(`SELECT 1 FROM wallet.accounts WHERE user_id = $1 FOR UPDATE`, [busy]);
  const batcher = createHoldBatcher(pool);
  let waiting = true;
  // alone in its batch: it finds the account busy and goes on waiting outside the batcher
  const first = batcher.submit(hold(busy, 'USD', 300n)).finally(() => (waiting = false));
  // the batches after it are applied while the lock is still held
  for (let i = 0; i < 3; i++) expect((await batcher.submit(hold(other, 'USD', 10n))).created).toBe(true);
  expect(waiting).toBe(true);
  expect(await held(busy, 'USD')).toBe(0n);
  // and it waits as one statement (createHoldAlone's, its own transaction), not inside a BEGIN … COMMIT of its own
  // (none found is reported by the expectation below, once the lock is let go)
  const waiters = await waitForLockWait(db.pool, {}).catch(() => []);
  const lockWaits = waiters.map((w) => w.query.trim().slice(0, 25));
  // (a failure must not leave the hold waiting behind the lock forever)
  if (lockWaits.length !== 1 || lockWaits[0] !== 'WITH acct AS MATERIALIZED') await locker.query('COMMIT');
  expect(lockWaits).toEqual(['WITH acct AS MATERIALIZED']);
  await locker.query('COMMIT');
  locker.release();
  expect((await first).created).toBe(true);
  expect(await held(busy, 'USD')).toBe(300n);
  expect(await held(other, 'USD')).toBe(30n);
  await assertLedgerInvariants(db.pool);
});

describe('a hold alone: one statement, its own transaction (createHoldAlone)', () => {
  const outcome = async (i: CreateHoldInput, skipLocked = false) => createHoldAlone(pool, i, { skipLocked });
  const errorOf = (o: Awaited<ReturnType<typeof outcome>>) =>
    !o.ok && 'error' in o ? { code: o.error.code, message: o.error.message } : o;

  test('the same answers as in a transaction: created, replayed, conflicting, refused', async () => {
    const u = randomUUID();
    await fundUser(db.pool, u, 'BTC', 1_000n);
    const first = hold(u, 'BTC', 600n);
    const created = await outcome(first);
    expect(created.ok && created.value.created).toBe(true);
    expect(await held(u, 'BTC')).toBe(600n);
    // a replay answers the same hold and adds nothing
    const replay = await outcome(first);
    expect(replay.ok && !replay.value.created && replay.value.hold.id).toBe(first.holdId);
    expect(await held(u, 'BTC')).toBe(600n);
    // the same id with other terms, a zero amount, too much, an asset without an account
    expect(errorOf(await outcome({ ...first, amount: 601n }))).toMatchObject({ code: 'HOLD_CONFLICT' });
    expect(errorOf(await outcome(hold(u, 'BTC', 0n)))).toMatchObject({ code: 'AMOUNT_ZERO' });
    const tooMuch = hold(u, 'BTC', 401n);
    const inTransaction = await withTransaction(pool, (c) => createHolds(c, [tooMuch])).then(([o]) => errorOf(o!));
    expect(errorOf(await outcome(tooMuch))).toEqual(inTransaction);
    expect(inTransaction).toMatchObject({ code: 'INSUFFICIENT_FUNDS' });
    expect(errorOf(await outcome(hold(u, 'ETH', 1n)))).toMatchObject({ code: 'INSUFFICIENT_FUNDS' });
    expect((await outcome(hold(u, 'BTC', 400n))).ok).toBe(true); // exactly what is left
    expect(await held(u, 'BTC')).toBe(1_000n);
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM wallet.holds WHERE user_id = $1', [u]);
    expect(rows[0].n).toBe(2);
    await assertLedgerInvariants(db.pool);
  });

  test('a locked account: busy with skipLocked (nothing written), else it waits for the lock', async () => {
    const u = randomUUID();
    await fundUser(db.pool, u, 'USD', 100n);
    const locker = await pool.connect();
    try {
      await locker.query('BEGIN');
      await locker.query(`SELECT 1 FROM wallet.accounts WHERE user_id = $1 FOR UPDATE`, [u]);
      const i = hold(u, 'USD', 70n);
      expect(await outcome(i, true)).toEqual({ ok: false, busy: true });
      const waiting = outcome(i);
      await new Promise((r) => setTimeout(r, 100));
      await locker.query(`UPDATE wallet.accounts SET held = held + 50 WHERE user_id = $1`, [u]);
      await locker.query('ROLLBACK');
      expect((await waiting).ok).toBe(true);
      expect(await held(u, 'USD')).toBe(70n);
    } finally {
      locker.release();
    }
  });

  test('the same hold from two connections at once: created once, the other a replay', async () => {
    const u = randomUUID();
    await fundUser(db.pool, u, 'ETH', 1_000n);
    for (let round = 0; round < 10; round++) {
      const i = hold(u, 'ETH', 10n);
      const both = await Promise.all([outcome(i), outcome(i)]);
      expect(both.map((o) => o.ok && o.value.created).sort()).toEqual([false, true]);
    }
    expect(await held(u, 'ETH')).toBe(100n);
    await assertLedgerInvariants(db.pool);
  });
});

test('sends the same statements for a batch of any size (prepared and planned once per connection)', async () => {
  const u = randomUUID();
  await fundUser(db.pool, u, 'USD', 1_000n);
  const textsOf = (items: CreateHoldInput[]) =>
    withTransaction(db.pool, (c) =>
      recordStatements(c, async () => {
        const out = await createHolds(c, items);
        expect(out.every((o) => o.ok && o.value.created)).toBe(true);
      }),
    );
  const one = await textsOf([hold(u, 'USD', 1n)]);
  const three = await textsOf([hold(u, 'USD', 1n), hold(u, 'USD', 2n), hold(u, 'USD', 3n)]);
  expect(one.length).toBeGreaterThan(0);
  expect(three).toEqual(one);
  expect(await held(u, 'USD')).toBe(7n);
});
