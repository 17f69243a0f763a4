import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { withTransaction } from '@exchange/db';
import { createTestDatabase, waitForLockWait, type TestDatabase } from '@exchange/db/testing';
import { AppError } from '@exchange/platform';
import { Assets } from '../assets.ts';
import { createHold, releaseHold } from './holds.ts';
import { insertEntries, lockAccounts, lockAccountsAndHolds, writeLedger } from './repository.ts';
import { postEntry, userBalances } from './service.ts';
import { runMigrations } from '../migrate.ts';
import {
  requestWithdrawal,
  DEFAULT_WITHDRAWAL_LIMITS,
  parseWithdrawalLimits,
  cancelWithdrawal,
} from '../funding/service.ts';
import { settleTrade, releaseOrderHold } from '../settlement/service.ts';
import { ReleaseHoldV1 } from '@exchange/contracts/trading';
import {
  assertLedgerInvariants,
  fundUser,
  placeOrderHold,
  settleTradeMessage,
  tradeParties,
  type TradeParties,
} from '../testing/index.ts';

let db: TestDatabase;
/** For the 100-way races: requests queue for a connection (as they would behind a busy service), never time out. */
let racePool: pg.Pool;
const assets = new Assets();

beforeAll(async () => {
  db = await createTestDatabase('wallet_ledger');
  await runMigrations(db.pool);
  racePool = new pg.Pool({ connectionString: db.url, max: 20, connectionTimeoutMillis: 120_000 });
  racePool.on('error', () => {});
});
afterAll(async () => {
  await racePool.end();
  await db.drop();
});

const balanceOf = async (userId: string, asset: string) => (await userBalances(db.pool, userId)).get(asset);

const errCode = async (p: Promise<unknown>) => {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return e instanceof AppError ? e.code : ((e as { code?: string }).code ?? String(e));
  }
};

test('deposit credits the user from the deposit rail; the journal balances', async () => {
  const u = randomUUID();
  await fundUser(db.pool, u, 'BTC', 150_000_000n);
  expect(await balanceOf(u, 'BTC')).toEqual({ asset: 'BTC', total: 150_000_000n, held: 0n, available: 150_000_000n });
  await assertLedgerInvariants(db.pool);
});

test('the journal is append-only and entries must balance (database-enforced)', async () => {
  const u = randomUUID();
  await fundUser(db.pool, u, 'USD', 1000n);
  expect(await errCode(db.pool.query(`UPDATE wallet.postings SET amount = amount + 1`))).toBe('23000');
  expect(await errCode(db.pool.query(`DELETE FROM wallet.journal_entries`))).toBe('23000');
  expect(await errCode(db.pool.query(`TRUNCATE wallet.postings CASCADE`))).toBe('23000');
  // An unbalanced entry written behind the code's back is rejected by the statement-level trigger.
  const unbalanced = withTransaction(db.pool, async (c) => {
    const { rows } = await c.query<{ id: string }>(
      `INSERT INTO wallet.journal_entries (idempotency_key, reason, ref_type, ref_id) VALUES ($1, 'x', 'x', 'x')
       RETURNING id::text`,
      [randomUUID()],
    );
    const acct = await c.query<{ id: string }>(`SELECT id::text FROM wallet.accounts WHERE user_id = $1`, [u]);
    await c.query(
      `INSERT INTO wallet.postings (entry_id, account_id, asset, amount, balance_after, memo) VALUES ($1, $2, 'USD', 5, 0, 'x')`,
      [rows[0]!.id, acct.rows[0]!.id],
    );
  });
  expect(await errCode(unbalanced)).toBe('23514');
  // The check runs per statement: legs of one entry in one statement pass; a leg in another asset than its account,
  // a leg added later to a balanced entry, or an entry's legs split over two statements are refused.
  const acct = (await db.pool.query<{ id: string }>(`SELECT id::text FROM wallet.accounts WHERE user_id = $1`, [u]))
    .rows[0]!.id;
  const fee = (
    await db.pool.query<{ id: string }>(
      `SELECT id::text FROM wallet.accounts WHERE kind <> 'user' AND asset = 'USD' ORDER BY id LIMIT 1`,
    )
  ).rows[0]!.id;
  const entry = async (c: { query: typeof db.pool.query }) =>
    (
      await c.query<{ id: string }>(
        `INSERT INTO wallet.journal_entries (idempotency_key, reason, ref_type, ref_id) VALUES ($1, 'x', 'x', 'x')
         RETURNING id::text`,
        [randomUUID()],
      )
    ).rows[0]!.id;
  const legs = `INSERT INTO wallet.postings (entry_id, account_id, asset, amount, balance_after, memo)
                SELECT $1, a, s, m, 0, 'x' FROM unnest($2::bigint[], $3::text[], $4::numeric[]) AS l(a, s, m)`;
  const balancedThenMore = (more: boolean) =>
    withTransaction(db.pool, async (c) => {
      const id = await entry(c);
      await c.query(legs, [id, [acct, fee], ['USD', 'USD'], [-1, 1]]);
      if (more) await c.query(legs, [id, [acct], ['USD'], [3]]);
      // rolled back either way: these legs move no balance, so committing them would break reconciliation
      throw new Error('rolled back on purpose');
    });
  expect(await errCode(balancedThenMore(false))).toBe('Error: rolled back on purpose');
  expect(await errCode(balancedThenMore(true))).toBe('23514');
  const wrongAsset = withTransaction(db.pool, async (c) => {
    const id = await entry(c);
    await c.query(legs, [id, [acct, acct], ['BTC', 'BTC'], [-1, 1]]);
  });
  expect(await errCode(wrongAsset)).toBe('23514');
  const split = withTransaction(db.pool, async (c) => {
    const id = await entry(c);
    await c.query(legs, [id, [acct], ['USD'], [-1]]);
    await c.query(legs, [id, [fee], ['USD'], [1]]);
  });
  expect(await errCode(split)).toBe('23514');
  // CHECK constraints: no negative user balance, held never above total.
  expect(await errCode(db.pool.query(`UPDATE wallet.accounts SET balance = -1 WHERE user_id = $1`, [u]))).toBe('23514');
  expect(await errCode(db.pool.query(`UPDATE wallet.accounts SET held = balance + 1 WHERE user_id = $1`, [u]))).toBe(
    '23514',
  );
  await assertLedgerInvariants(db.pool);
});

test('holds: idempotent by id, 409 on conflicting reuse, 400 on insufficient funds, release once', async () => {
  const u = randomUUID();
  await fundUser(db.pool, u, 'USD', 10_000n);
  const holdId = randomUUID();
  const input = { holdId, userId: u, asset: 'USD', amount: 4_000n, reason: 'order', refType: 'order', refId: holdId };
  const first = await withTransaction(db.pool, (c) => createHold(c, input));
  expect(first.created).toBe(true);
  const again = await withTransaction(db.pool, (c) => createHold(c, input));
  expect(again.created).toBe(false);
  expect(await errCode(withTransaction(db.pool, (c) => createHold(c, { ...input, amount: 5_000n })))).toBe(
    'HOLD_CONFLICT',
  );
  expect(
    await errCode(withTransaction(db.pool, (c) => createHold(c, { ...input, holdId: randomUUID(), amount: 6_001n }))),
  ).toBe('INSUFFICIENT_FUNDS');
  expect(await balanceOf(u, 'USD')).toMatchObject({ total: 10_000n, held: 4_000n, available: 6_000n });
  const r1 = await withTransaction(db.pool, (c) => releaseHold(c, holdId, 'cancelled', 'order'));
  const r2 = await withTransaction(db.pool, (c) => releaseHold(c, holdId, 'cancelled', 'order'));
  expect([r1.released, r2.released]).toEqual([4_000n, 0n]);
  expect(await balanceOf(u, 'USD')).toMatchObject({ held: 0n, available: 10_000n });
  await assertLedgerInvariants(db.pool);
});

test('100 parallel holds against one balance: no overdraft, the sum is exact', async () => {
  const u = randomUUID();
  await fundUser(db.pool, u, 'USDT', 1_000n);
  const results = await Promise.all(
    Array.from({ length: 100 }, () => {
      const holdId = randomUUID();
      return errCode(
        withTransaction(racePool, (c) =>
          createHold(c, {
            holdId,
            userId: u,
            asset: 'USDT',
            amount: 17n,
            reason: 'order',
            refType: 'order',
            refId: holdId,
          }),
        ),
      );
    }),
  );
  const ok = results.filter((r) => r === 'ok').length;
  expect(ok).toBe(Math.floor(1_000 / 17)); // 58
  expect(results.filter((r) => r !== 'ok').every((r) => r === 'INSUFFICIENT_FUNDS')).toBe(true);
  expect(await balanceOf(u, 'USDT')).toMatchObject({ total: 1_000n, held: BigInt(ok) * 17n });
  await assertLedgerInvariants(db.pool);
});

test('100 parallel withdrawals against one balance: no overdraft, the sum is exact', async () => {
  const u = randomUUID();
  // 1 BTC; each withdrawal is 0.01 + 0.0001 fee = 1_010_000 sat → 99 fit.
  await fundUser(db.pool, u, 'BTC', 100_000_000n);
  const policy = {
    limits: parseWithdrawalLimits(JSON.stringify(DEFAULT_WITHDRAWAL_LIMITS), assets),
    dispatchDelayMs: 60_000,
  };
  const results = await Promise.all(
    Array.from({ length: 100 }, () =>
      errCode(
        requestWithdrawal(racePool, assets, policy, {
          userId: u,
          asset: 'BTC',
          amount: '0.01',
          address: 'bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq',
        }),
      ),
    ),
  );
  const ok = results.filter((r) => r === 'ok').length;
  expect(ok).toBe(99);
  expect(results.filter((r) => r !== 'ok')).toEqual(['INSUFFICIENT_FUNDS']);
  expect(await balanceOf(u, 'BTC')).toMatchObject({ total: 100_000_000n, held: 99n * 1_010_000n, available: 10_000n });
  await assertLedgerInvariants(db.pool);
});

test('velocity: concurrent withdrawals never exceed the daily limit together; cancelled ones free it', async () => {
  const u = randomUUID();
  await fundUser(db.pool, u, 'ETH', 10n ** 20n); // 100 ETH
  const limits = parseWithdrawalLimits(JSON.stringify({ '0': { ETH: '1' } }), assets);
  const policy = { limits, dispatchDelayMs: 60_000 };
  const req = () =>
    requestWithdrawal(db.pool, assets, policy, {
      userId: u,
      asset: 'ETH',
      amount: '0.3',
      address: '0x52908400098527886E0F7030069857D2E4169EE7',
    });
  const results = await Promise.all(Array.from({ length: 10 }, () => errCode(req())));
  expect(results.filter((r) => r === 'ok')).toHaveLength(3);
  expect(results.filter((r) => r === 'VELOCITY_LIMIT_EXCEEDED')).toHaveLength(7);
  const { rows } = await db.pool.query<{ id: string }>(`SELECT id::text FROM wallet.withdrawals WHERE user_id = $1`, [
    u,
  ]);
  await cancelWithdrawal(db.pool, u, rows[0]!.id);
  expect(await errCode(req())).toBe('ok');
  await assertLedgerInvariants(db.pool);
});

function trade(o: TradeParties & { base: bigint; quote: bigint }) {
  return settleTradeMessage(o, {
    base: o.base,
    quote: o.quote,
    buyerFee: (o.base * 20n + 9_999n) / 10_000n,
    sellerFee: (o.quote * 10n + 9_999n) / 10_000n,
  });
}

test('settlement: applied once however often it comes; a release overtaking it does not lose the capture', async () => {
  const { buyer, seller, buyOrder, sellOrder } = await tradeParties(db.pool, {
    buyerUsd: 1_000_000n, // $10,000
    sellerBtc: 100_000_000n, // 1 BTC
    buyHold: 600_000n,
    sellHold: 10_000_000n,
  });
  // 0.1 BTC at $5,000 = $500.00
  const msg = trade({ buyer, seller, buyOrder, sellOrder, base: 10_000_000n, quote: 50_000n });
  const outcomes = [];
  for (let i = 0; i < 3; i++) outcomes.push(await withTransaction(db.pool, (c) => settleTrade(c, msg, assets)));
  expect(outcomes).toEqual(['settled', 'duplicate', 'duplicate']);
  // Same trade under another message id: still once.
  const copy = { ...msg, id: randomUUID() };
  expect(await withTransaction(db.pool, (c) => settleTrade(c, copy, assets))).toBe('duplicate');

  expect(await balanceOf(buyer, 'USD')).toMatchObject({ total: 950_000n, held: 550_000n });
  expect(await balanceOf(buyer, 'BTC')).toMatchObject({ total: 10_000_000n - 20_000n, held: 0n });
  expect(await balanceOf(seller, 'USD')).toMatchObject({ total: 50_000n - 50n });
  expect(await balanceOf(seller, 'BTC')).toMatchObject({ total: 90_000_000n, held: 0n });

  // Out of order: the buyer's order ends (release) before its second trade's settle arrives.
  const release = ReleaseHoldV1.create(
    { holdId: buyOrder, userId: buyer, reason: 'filled' },
    { producer: 'payment-processor' },
  );
  const sellOrder2 = randomUUID();
  await withTransaction(db.pool, (c) =>
    placeOrderHold(c, { holdId: sellOrder2, userId: seller, asset: 'BTC', amount: 10_000_000n }),
  );
  const late = trade({ buyer, seller, buyOrder, sellOrder: sellOrder2, base: 10_000_000n, quote: 50_000n });
  expect(await withTransaction(db.pool, (c) => releaseOrderHold(c, release))).toBe(550_000n);
  for (let i = 0; i < 3; i++) await withTransaction(db.pool, (c) => settleTrade(c, late, assets));
  expect(await withTransaction(db.pool, (c) => releaseOrderHold(c, release))).toBe(0n);
  expect(await balanceOf(buyer, 'USD')).toMatchObject({ total: 900_000n, held: 0n });
  const h = await db.pool.query(
    `SELECT status, captured::text, released::text, late_captured::text FROM wallet.holds WHERE id = $1`,
    [buyOrder],
  );
  expect(h.rows[0]).toEqual({ status: 'released', captured: '50000', released: '550000', late_captured: '50000' });
  await assertLedgerInvariants(db.pool);
});

test('a settlement whose hold ended and whose funds are gone fails loudly and changes nothing', async () => {
  const { buyer, seller, buyOrder, sellOrder } = await tradeParties(db.pool, {
    buyerUsd: 50_000n,
    sellerBtc: 10_000_000n,
    buyHold: 50_000n,
    sellHold: 10_000_000n,
  });
  await withTransaction(db.pool, async (c) => {
    await releaseHold(c, buyOrder, 'cancelled', 'order');
    // The buyer spends the released funds on another order.
    const other = randomUUID();
    await placeOrderHold(c, { holdId: other, userId: buyer, asset: 'USD', amount: 50_000n });
  });
  const msg = trade({ buyer, seller, buyOrder, sellOrder, base: 10_000_000n, quote: 50_000n });
  expect(await errCode(withTransaction(db.pool, (c) => settleTrade(c, msg, assets)))).toBe('INSUFFICIENT_FUNDS');
  expect(await balanceOf(seller, 'BTC')).toMatchObject({ total: 10_000_000n, held: 10_000_000n });
  await assertLedgerInvariants(db.pool);
});

test('postEntry refuses an unbalanced entry before touching anything', async () => {
  await expect(
    withTransaction(db.pool, (c) =>
      postEntry(c, {
        idempotencyKey: randomUUID(),
        reason: 'x',
        refType: 'x',
        refId: 'x',
        legs: [{ account: { kind: 'fees', asset: 'USD' }, amount: 1n, memo: 'x' }],
      }),
    ),
  ).rejects.toThrow(/does not balance/);
});

test("the one statement of the ledger's writes is still checked by the database: legs that do not balance are refused", async () => {
  // Past the checks in code: the postings trigger runs on the insert inside the statement's CTE, and nothing of the
  // statement stays (the account update beside it is undone too).
  const entry = await withTransaction(db.pool, async (c) => {
    const [e] = await insertEntries(c, [{ idempotencyKey: randomUUID(), reason: 'x', refType: 'x', refId: 'x' }]);
    return e!.id;
  });
  const user = randomUUID();
  await fundUser(db.pool, user, 'USD', 1_000n);
  const { rows } = await db.pool.query<{ id: string }>(
    `SELECT id::text FROM wallet.accounts WHERE user_id = $1 AND asset = 'USD'`,
    [user],
  );
  const account = rows[0]!;
  const legs = (second: bigint) => ({
    holds: [],
    accounts: [{ id: account.id, balance: 999n + second, held: 0n }],
    postings: [
      { entryId: entry, accountId: account.id, asset: 'USD', amount: -1n, after: 999n, memo: 'x' },
      { entryId: entry, accountId: account.id, asset: 'USD', amount: second, after: 999n + second, memo: 'x' },
    ],
  });
  await expect(withTransaction(db.pool, (c) => writeLedger(c, legs(2n)))).rejects.toThrow(/does not balance/);
  expect((await balanceOf(user, 'USD'))?.total).toBe(1_000n);
  await withTransaction(db.pool, (c) => writeLedger(c, legs(1n)));
  expect((await balanceOf(user, 'USD'))?.total).toBe(1_000n);
  expect(
    (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM wallet.postings WHERE entry_id = $1`, [entry]))
      .rows[0]!.n,
  ).toBe(2);
});

test('a capture beyond what a hold reserved is refused (HOLD_EXCEEDED); a trade cannot capture a withdrawal hold', async () => {
  const { buyer, seller, buyOrder, sellOrder } = await tradeParties(db.pool, {
    buyerUsd: 1_000_000n,
    sellerBtc: 100_000_000n,
    buyHold: 50_000n,
    sellHold: 50_000_000n,
  });
  // An active hold of $500 cannot pay $600, even though the buyer has the money elsewhere.
  const over = trade({ buyer, seller, buyOrder, sellOrder, base: 10_000_000n, quote: 60_000n });
  expect(await errCode(withTransaction(db.pool, (c) => settleTrade(c, over, assets)))).toBe('HOLD_EXCEEDED');
  // Fully captured, then one more trade on it: refused too.
  await withTransaction(db.pool, (c) =>
    settleTrade(c, trade({ buyer, seller, buyOrder, sellOrder, base: 10_000_000n, quote: 50_000n }), assets),
  );
  const again = trade({ buyer, seller, buyOrder, sellOrder, base: 10_000_000n, quote: 1n });
  expect(await errCode(withTransaction(db.pool, (c) => settleTrade(c, again, assets)))).toBe('HOLD_EXCEEDED');
  // A withdrawal's hold is not an order's.
  const policy = { limits: parseWithdrawalLimits(undefined, assets), dispatchDelayMs: 60_000 };
  const w = await requestWithdrawal(db.pool, assets, policy, {
    userId: buyer,
    asset: 'USD',
    amount: '100',
    address: 'DE89370400440532013000',
  });
  const steal = trade({ buyer, seller, buyOrder: w.id, sellOrder, base: 10_000_000n, quote: 100n });
  expect(await errCode(withTransaction(db.pool, (c) => settleTrade(c, steal, assets)))).toBe('HOLD_MISMATCH');
  await assertLedgerInvariants(db.pool);
});

test('the order path cannot release a withdrawal hold (release-hold message and internal route)', async () => {
  const user = randomUUID();
  await fundUser(db.pool, user, 'USD', 100_000n);
  const policy = { limits: parseWithdrawalLimits(undefined, assets), dispatchDelayMs: 60_000 };
  const w = await requestWithdrawal(db.pool, assets, policy, {
    userId: user,
    asset: 'USD',
    amount: '100',
    address: 'DE89370400440532013000',
  });
  const before = await balanceOf(user, 'USD');
  const release = ReleaseHoldV1.create(
    { holdId: w.id, userId: user, reason: 'cancelled' },
    { producer: 'payment-processor' },
  );
  expect(await errCode(withTransaction(db.pool, (c) => releaseOrderHold(c, release)))).toBe('HOLD_MISMATCH');
  expect(await errCode(withTransaction(db.pool, (c) => releaseHold(c, w.id, 'released', 'order')))).toBe(
    'HOLD_MISMATCH',
  );
  expect(await balanceOf(user, 'USD')).toEqual(before);
  const hold = await db.pool.query(`SELECT status, released::text FROM wallet.holds WHERE id = $1`, [w.id]);
  expect(hold.rows[0]).toEqual({ status: 'active', released: '0' });
  // Its own path still works.
  await cancelWithdrawal(db.pool, user, w.id);
  expect(await balanceOf(user, 'USD')).toMatchObject({ held: 0n, total: 100_000n });
  await assertLedgerInvariants(db.pool);
});

test('several accounts are locked in id order as numbers, the order every ledger function uses (9 before 10)', async () => {
  // As text, '1000000000' sorts before '999999999': an ORDER BY on the text id would lock the larger id first, and
  // two transactions locking the same two accounts in the two orders could deadlock.
  const [low, high] = ['999999999', '1000000000'];
  await db.pool.query(
    `INSERT INTO wallet.accounts (id, kind, user_id, asset) VALUES ($1, 'user', $3, 'BTC'), ($2, 'user', $4, 'BTC')`,
    [low, high, randomUUID(), randomUUID()],
  );
  const holder = await db.pool.connect();
  const locker = await db.pool.connect();
  const lockerPid = (await locker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  try {
    for (const lock of [
      (c: pg.PoolClient) => lockAccounts(c, [high, low]),
      async (c: pg.PoolClient) => (await lockAccountsAndHolds(c, [high, low], [])).accounts,
    ]) {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM wallet.accounts WHERE id = $1 FOR UPDATE', [high]);
      await locker.query('BEGIN');
      const waiting = lock(locker);
      waiting.catch(() => {}); // awaited below; if an expectation fails first, its connection's end rejects it
      await waitForLockWait(db.pool, lockerPid, { what: 'the locker to wait for the held account' });
      // it waits for the larger id, so it has locked the smaller one already
      expect(await errCode(db.pool.query('SELECT 1 FROM wallet.accounts WHERE id = $1 FOR UPDATE NOWAIT', [low]))).toBe(
        '55P03',
      );
      await holder.query('COMMIT');
      expect([...(await waiting).keys()].sort()).toEqual([high, low].sort());
      await locker.query('ROLLBACK');
    }
  } finally {
    // destroyed, not returned to the pool: a failed expectation leaves a transaction open and the locker waiting
    holder.release(true);
    locker.release(true);
  }
});
