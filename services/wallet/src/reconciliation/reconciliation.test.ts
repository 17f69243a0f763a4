/**
 * The order_holds check: order holds against the order service's view (here a fixed view of order states; the
 * real service behind it is exercised by the crash and broker-restart e2e tests).
 */
import { randomUUID } from 'node:crypto';
import type { OrderRef, TradeRef } from '@exchange/contracts/orders';
import { PayoutCompletedV1 } from '@exchange/contracts/trading';

import { withTransaction } from '@exchange/db';
import { createTestDatabase, type TestDatabase } from '@exchange/db/testing';
import { createHold, releaseHold } from '../ledger/holds.ts';
import { completePayout, settleTrade } from '../settlement/service.ts';
import { runMigrations } from '../migrate.ts';
import type { OrderClient } from '../clients/order-client.ts';
import type { PaymentProcessorClient } from '../clients/payment-processor-client.ts';
import type { PayoutRef } from '@exchange/contracts/payouts';
import { runReconciliation } from './service.ts';
import { dispatchNextWithdrawal, parseWithdrawalLimits, requestWithdrawal } from '../funding/service.ts';
import { Assets } from '../assets.ts';
import { fundUser, settleTradeMessage, tradeParties } from '../testing/index.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('wallet_recon');
  await runMigrations(db.pool);
});
afterAll(async () => {
  await db?.drop();
});

const HOUR = 3_600_000;
const ago = (ms: number) => new Date(Date.now() - ms).toISOString();

function view(orders: OrderRef[], trades: TradeRef[] = []): OrderClient {
  return {
    async *trades(from, to) {
      yield* trades.filter(
        (t) => Date.parse(t.executedAt) >= from.getTime() && Date.parse(t.executedAt) < to.getTime(),
      );
    },
    async lookup(ids) {
      return orders.filter((o) => ids.includes(o.id));
    },
    async *open() {
      yield* orders.filter((o) => o.status === 'new' || o.status === 'partially_filled');
    },
  };
}

async function hold(userId: string, refType = 'order', ageMs = HOUR): Promise<string> {
  const id = randomUUID();
  await withTransaction(db.pool, (c) =>
    createHold(c, { holdId: id, userId, asset: 'USD', amount: 100n, reason: refType, refType, refId: id }),
  );
  await db.pool.query(`UPDATE wallet.holds SET created_at = now() - make_interval(secs => $2) WHERE id = $1`, [
    id,
    ageMs / 1000,
  ]);
  return id;
}

test('finished or unknown orders still holding funds, and open orders without a hold, are mismatches', async () => {
  const user = randomUUID();
  await fundUser(db.pool, user, 'USD', 10_000n);
  const openOk = await hold(user);
  const finishedLongAgo = await hold(user);
  const unknown = await hold(user);
  const finishingNow = await hold(user); // its release is in flight
  const young = await hold(user, 'order', 0); // created within the grace period
  await hold(user, 'withdrawal'); // not an order hold
  const releasedJustNow = await hold(user);
  await withTransaction(db.pool, (c) => releaseHold(c, releasedJustNow, 'cancelled', 'order'));
  const noHold = randomUUID();
  const noHoldYoung = randomUUID();
  const orders: OrderRef[] = [
    { id: openOk, status: 'partially_filled', createdAt: ago(HOUR), updatedAt: ago(HOUR) },
    { id: finishedLongAgo, status: 'filled', createdAt: ago(HOUR), updatedAt: ago(HOUR / 2) },
    { id: finishingNow, status: 'cancelled', createdAt: ago(HOUR), updatedAt: ago(1_000) },
    { id: young, status: 'new', createdAt: ago(0), updatedAt: ago(0) },
    // the order service has not yet seen the engine's cancel that released this hold
    { id: releasedJustNow, status: 'new', createdAt: ago(HOUR), updatedAt: ago(HOUR) },
    { id: noHold, status: 'new', createdAt: ago(HOUR), updatedAt: ago(HOUR) },
    { id: noHoldYoung, status: 'new', createdAt: ago(1_000), updatedAt: ago(1_000) },
  ];
  const report = await runReconciliation(db.pool, { trigger: 'manual', orders: view(orders), orderGraceMs: 60_000 });
  const check = report.report.checks.find((c) => c.name === 'order_holds')!;
  expect(check.error).toBeUndefined();
  expect(
    check.items.map((i) => [i.holdId ?? i.orderId, i.problem]).sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
  ).toEqual(
    [
      [finishedLongAgo, 'finished order still holds funds'],
      [unknown, 'hold of an order the order service does not know'],
      [noHold, 'open order without an active hold'],
    ].sort((a, b) => a[0]!.localeCompare(b[0]!)),
  );
  expect(check.mismatches).toBe(3);
  expect(report.status).toBe('mismatch');
  expect(report.mismatchCount).toBe(report.report.checks.reduce((n, c) => n + c.mismatches, 0));
});

test('an unreachable order service leaves the check with an error, not with invented mismatches', async () => {
  const broken: OrderClient = {
    async lookup() {
      throw new Error('order service /internal/orders/lookup: HTTP 503');
    },
    async *open() {
      throw new Error('unreachable');
    },
    async *trades() {
      throw new Error('order service /internal/trades: HTTP 503');
    },
  };
  const report = await runReconciliation(db.pool, { trigger: 'manual', orders: broken });
  const check = report.report.checks.find((c) => c.name === 'order_holds')!;
  expect(check).toMatchObject({ mismatches: 0, items: [], error: expect.stringMatching(/HTTP 503/) });
  expect(report.report.checks.find((c) => c.name === 'trades_unsettled')).toMatchObject({
    mismatches: 0,
    error: expect.stringMatching(/internal\/trades: HTTP 503/),
  });
  // A check that could not run makes the report incomplete, never `ok`.
  expect(report.status).toBe('incomplete');
  const stored = await db.pool.query(`SELECT status FROM wallet.reconciliation_reports WHERE id = $1`, [report.id]);
  expect(stored.rows[0].status).toBe('incomplete');
  // without an order service the check is simply not part of the report
  const without = await runReconciliation(db.pool, { trigger: 'manual' });
  expect(without.report.checks.map((c) => c.name)).not.toContain('order_holds');
});

test('a payout requested from the rail long ago and never booked is a mismatch (payouts_unbooked)', async () => {
  const user = randomUUID();
  await fundUser(db.pool, user, 'USD', 100_000n);
  const assets = new Assets();
  const w = await requestWithdrawal(
    db.pool,
    assets,
    { limits: parseWithdrawalLimits(undefined, assets), dispatchDelayMs: 0 },
    {
      userId: user,
      asset: 'USD',
      amount: '100',
      address: 'DE89370400440532013000',
    },
  );
  while ((await dispatchNextWithdrawal(db.pool)) !== undefined);
  const fresh = await runReconciliation(db.pool, { trigger: 'manual' });
  expect(fresh.report.checks.find((c) => c.name === 'payouts_unbooked')).toMatchObject({ mismatches: 0 });
  await db.pool.query(`UPDATE wallet.withdrawals SET updated_at = now() - interval '2 hours' WHERE id = $1`, [w.id]);
  const late = await runReconciliation(db.pool, { trigger: 'manual' });
  const check = late.report.checks.find((c) => c.name === 'payouts_unbooked')!;
  expect(check.mismatches).toBe(1);
  expect(check.items[0]).toMatchObject({ withdrawalId: w.id, status: 'processing' });
  expect(late.status).toBe('mismatch');
});

test('a trade on the tape without its settlement, older than the grace period, is a mismatch (trades_unsettled)', async () => {
  const p = await tradeParties(db.pool, {
    buyerUsd: 1_000_000n,
    sellerBtc: 100_000_000n,
    buyHold: 600_000n,
    sellHold: 50_000_000n,
  });
  const trade = (at: string) => ({ tradeId: randomUUID(), market: 'BTC-USD', executedAt: at });
  const settled = trade(ago(HOUR));
  const unsettled = trade(ago(HOUR));
  const young = trade(ago(5_000)); // its settle-trade may still be on its way
  const tooOld = trade(ago(48 * HOUR)); // outside the look-back window
  await withTransaction(db.pool, (c) =>
    settleTrade(
      c,
      settleTradeMessage(p, {
        base: 10_000_000n,
        quote: 50_000n,
        sellerFee: 50n,
        tradeId: settled.tradeId,
        executedAt: settled.executedAt,
      }),
      new Assets(),
    ),
  );
  const report = await runReconciliation(db.pool, {
    trigger: 'manual',
    orders: view([], [settled, unsettled, young, tooOld]),
    orderGraceMs: 60_000,
  });
  const check = report.report.checks.find((c) => c.name === 'trades_unsettled')!;
  expect(check.error).toBeUndefined();
  expect(check.mismatches).toBe(1);
  expect(check.items).toEqual([{ ...unsettled, problem: 'trade executed but never settled' }]);
  expect(report.status).toBe('mismatch');
});

test('a payout the rail reported paid whose booking was dead-lettered is a mismatch (payouts_paid_unbooked)', async () => {
  const user = randomUUID();
  await fundUser(db.pool, user, 'USD', 100_000n);
  const assets = new Assets();
  const w = await requestWithdrawal(
    db.pool,
    assets,
    { limits: parseWithdrawalLimits(undefined, assets), dispatchDelayMs: 0 },
    { userId: user, asset: 'USD', amount: '100', address: 'DE89370400440532013000' },
  );
  while ((await dispatchNextWithdrawal(db.pool)) !== undefined);
  const clean = await runReconciliation(db.pool, { trigger: 'manual' });
  expect(clean.report.checks.find((c) => c.name === 'payouts_paid_unbooked')).toMatchObject({ mismatches: 0 });
  // the rail paid it (payout.completed), but the wallet could not book it: the consumer dead-lettered the message
  const completed = PayoutCompletedV1.create(
    { withdrawalId: w.id, railTxId: 'sim_paid_but_unbooked', completedAt: new Date().toISOString() },
    { producer: 'payment-processor' },
  );
  await db.pool.query(
    `INSERT INTO wallet.dead_letters (queue, message_id, type, message, headers, reason, attempts, status)
     VALUES ('wallet.payouts', $1, $2, $3, '{}', 'handler failed 6 times: boom', 6, 'dead')`,
    [completed.id, completed.type, JSON.stringify(completed)],
  );
  const report = await runReconciliation(db.pool, { trigger: 'manual' });
  const check = report.report.checks.find((c) => c.name === 'payouts_paid_unbooked')!;
  expect(check.mismatches).toBe(1);
  expect(check.items[0]).toMatchObject({ withdrawalId: w.id, status: 'processing', railTxId: 'sim_paid_but_unbooked' });
  expect(report.status).toBe('mismatch');
  // once retried (and booked) it is no longer listed
  await db.pool.query(`UPDATE wallet.dead_letters SET status = 'retried' WHERE message_id = $1`, [completed.id]);
  const after = await runReconciliation(db.pool, { trigger: 'manual' });
  expect(after.report.checks.find((c) => c.name === 'payouts_paid_unbooked')).toMatchObject({ mismatches: 0 });
});

/** The rail's records as the payment-processor serves them: pages of `pageSize`, by withdrawal id. */
function rail(records: PayoutRef[], pageSize = 2): PaymentProcessorClient & { lookups: number } {
  const sorted = [...records].sort((a, b) => (a.withdrawalId < b.withdrawalId ? -1 : 1));
  const client = {
    lookups: 0,
    async *payouts() {
      for (let i = 0; i < sorted.length; i += pageSize) yield sorted.slice(i, i + pageSize);
    },
    async lookup(ids: string[]) {
      client.lookups++;
      return sorted.filter((r) => ids.includes(r.withdrawalId));
    },
  };
  return client;
}

test("booked withdrawals against the rail's payout records: unbooked, unknown, failed and different ones (rail_payouts)", async () => {
  const user = randomUUID();
  await fundUser(db.pool, user, 'USD', 100_000_000_000n);
  const assets = new Assets();
  const withdraw = async (amount: string) => {
    const w = await requestWithdrawal(
      db.pool,
      assets,
      { limits: parseWithdrawalLimits(undefined, assets), dispatchDelayMs: 0 },
      { userId: user, asset: 'USD', amount, address: 'DE89370400440532013000' },
    );
    while ((await dispatchNextWithdrawal(db.pool)) !== undefined);
    return w.id;
  };
  const book = (id: string, railTxId: string) =>
    withTransaction(db.pool, (c) =>
      completePayout(
        c,
        PayoutCompletedV1.create(
          { withdrawalId: id, railTxId, completedAt: new Date().toISOString() },
          { producer: 'payment-processor' },
        ),
      ),
    );
  const record = (withdrawalId: string, status: 'completed' | 'failed', amount: string, ageMs = HOUR): PayoutRef => ({
    withdrawalId,
    status,
    asset: 'USD',
    amount,
    railTxId: status === 'completed' ? `sim_${withdrawalId.slice(0, 8)}` : null,
    processedAt: ago(ageMs),
  });
  const ok = await withdraw('10'); // paid and booked: clean
  const paidNotBooked = await withdraw('11'); // the rail paid it; payout.completed never booked
  const inFlight = await withdraw('12'); // paid a moment ago: its payout.completed is on its way
  const bookedUnknown = await withdraw('13'); // booked as paid; the rail has no record of it
  const bookedButFailed = await withdraw('14'); // booked as paid; the rail failed it
  const differs = await withdraw('15'); // booked 15.00, the rail paid another amount
  for (const [id, tx] of [
    [ok, 'sim_ok'],
    [bookedUnknown, 'sim_unknown'],
    [bookedButFailed, 'sim_failed'],
    [differs, 'sim_differs'],
  ] as const)
    await book(id, tx);
  const { rows } = await db.pool.query<{ id: string; amount: string }>(
    'SELECT id::text, amount::text FROM wallet.withdrawals',
  );
  const amount = new Map(rows.map((r) => [r.id, r.amount]));
  const strangerId = randomUUID(); // a payout for a withdrawal the wallet never had
  const records = rail([
    record(ok, 'completed', amount.get(ok)!),
    record(paidNotBooked, 'completed', amount.get(paidNotBooked)!),
    record(inFlight, 'completed', amount.get(inFlight)!, 1_000),
    record(bookedButFailed, 'failed', amount.get(bookedButFailed)!),
    record(differs, 'completed', String(BigInt(amount.get(differs)!) + 1n)),
    record(strangerId, 'completed', '500'),
  ]);
  const report = await runReconciliation(db.pool, { trigger: 'manual', rail: records, orderGraceMs: 60_000 });
  const check = report.report.checks.find((c) => c.name === 'rail_payouts')!;
  expect(check.error).toBeUndefined();
  const found = check.items.map((i) => [i.withdrawalId, i.problem]);
  expect(found.sort((a, b) => String(a[0]).localeCompare(String(b[0])))).toEqual(
    [
      [paidNotBooked, 'paid out by the rail, not booked as completed'],
      [bookedUnknown, 'booked as paid out, unknown to the rail'],
      [bookedButFailed, 'booked as paid out, but the rail failed it'],
      [differs, 'booked amount differs from the rail payout'],
      [strangerId, 'rail payout of a withdrawal the wallet does not know'],
    ].sort((a, b) => a[0]!.localeCompare(b[0]!)),
  );
  expect(check.mismatches).toBe(5);
  expect(report.status).toBe('mismatch');
  expect(records.lookups).toBeGreaterThan(0);

  // the payment-processor unreachable: the check carries the error and the report is never `ok`
  const down: PaymentProcessorClient = {
    async *payouts() {
      throw new Error('payment-processor /internal/payouts: HTTP 503');
    },
    async lookup() {
      throw new Error('payment-processor /internal/payouts/lookup: HTTP 503');
    },
  };
  const unreachable = await runReconciliation(db.pool, { trigger: 'manual', rail: down });
  expect(unreachable.report.checks.find((c) => c.name === 'rail_payouts')).toMatchObject({
    mismatches: 0,
    items: [],
    error: expect.stringMatching(/HTTP 503/),
  });
  // (other tests of this file leave mismatches behind, so not `incomplete` here: never `ok` is what matters)
  expect(unreachable.status).not.toBe('ok');
});
