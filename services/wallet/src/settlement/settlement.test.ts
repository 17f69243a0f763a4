/**
 * Settlement through the real broker: the wallet.settlement consumer (inbox + trade-id idempotency), redeliveries,
 * a release overtaking its settlement, poison messages, and a kill -9 between the journal commit and the ack.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { AdjustHoldV1, PayoutCompletedV1, PayoutFailedV1, ReleaseHoldV1 } from '@exchange/contracts/trading';
import type { Envelope } from '@exchange/contracts';
import { withTransaction } from '@exchange/db';
import { createTestDatabase, type TestDatabase } from '@exchange/db/testing';
import { COMMANDS_EXCHANGE, createMessaging, silentLogger, type Messaging } from '@exchange/messaging';
import { createTestVhost, type TestVhost } from '@exchange/messaging/testing';
import { promClient } from '@exchange/platform';
import { Assets } from '../assets.ts';
import { createHold } from '../ledger/holds.ts';
import { userBalances } from '../ledger/service.ts';
import { runMigrations } from '../migrate.ts';
import { startConsumers } from '../messaging/queues.ts';
import { payoutsHandler } from '../messaging/payouts.ts';
import { settlementHandler } from '../messaging/settlement.ts';
import { PAYOUTS_QUEUE, SETTLEMENT_QUEUE } from '../messaging/queues.ts';
import { dispatchNextWithdrawal, parseWithdrawalLimits, requestWithdrawal } from '../funding/service.ts';
import {
  assertLedgerInvariants,
  fundUser,
  settleTradeMessage,
  tradeParties,
  type TradeParties,
} from '../testing/index.ts';

const WORKER = fileURLToPath(new URL('../../test/fixtures/settlement-worker.ts', import.meta.url));
const FAST_RETRY = { retry: { attempts: 2, backoffMs: [200] } };

let db: TestDatabase;
let vhost: TestVhost;
let messaging: Messaging;
const registry = new promClient.Registry();
const children: ChildProcess[] = [];

beforeAll(async () => {
  db = await createTestDatabase('wallet_settle');
  vhost = await createTestVhost('wallet_settle');
  await runMigrations(db.pool);
  messaging = createMessaging({
    url: vhost.url,
    service: 'wallet',
    connectionName: 'wallet-test-parent',
    pool: db.pool,
    schema: 'wallet',
    logger: silentLogger,
    registry,
    relay: false,
  });
  await messaging.declareQueue({ ...SETTLEMENT_QUEUE, ...FAST_RETRY });
  await messaging.start();
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await messaging?.close();
  await vhost?.drop();
  await db?.drop();
});

async function waitFor<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, what: string, ms = 30_000) {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function consumed(outcome: string): Promise<number> {
  const m = (await registry.getSingleMetric('messages_consumed_total')?.get())?.values ?? [];
  return m
    .filter((v) => v.labels.queue === 'wallet.settlement' && v.labels.outcome === outcome)
    .reduce((n, v) => n + v.value, 0);
}

const publish = (msg: Envelope) =>
  messaging.publisher.publish(COMMANDS_EXCHANGE, 'wallet.settlement', Buffer.from(JSON.stringify(msg)), {
    messageId: msg.id,
    persistent: true,
    contentType: 'application/json',
  });

const count = async (sql: string, params: unknown[] = []) =>
  Number((await db.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM (${sql}) x`, params)).rows[0]!.n);

/** Wait until the consumer has applied (committed in its inbox) every one of `messages`. */
const allApplied = (...messages: Envelope[]) =>
  waitFor(
    async () =>
      (await count(`SELECT 1 FROM wallet.inbox WHERE message_id = ANY($1)`, [messages.map((m) => m.id)])) ===
      messages.length,
    'all applied',
  );

/** A buyer with $10,000 and a seller with 1 BTC, each with an order hold. */
const parties = (buyHold = 600_000n, sellHold = 50_000_000n) =>
  tradeParties(db.pool, { buyerUsd: 1_000_000n, sellerBtc: 100_000_000n, buyHold, sellHold });

const settle = (p: TradeParties, base: bigint, quote: bigint) =>
  settleTradeMessage(p, { base, quote, sellerFee: (quote * 10n + 9_999n) / 10_000n });

test('kill -9 between the journal commit and the ack: the redelivery is skipped — nothing lost, nothing doubled', async () => {
  // The child subscribes first, so it is the single active consumer; the parent's consumer waits as standby.
  const child = spawn(process.execPath, [WORKER], {
    env: { ...process.env, AMQP_URL: vhost.url, DATABASE_URL: db.url },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const lines: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => lines.push(l));
  await waitFor(() => lines.includes('ready'), 'worker ready');
  await messaging.consume({ queue: 'wallet.settlement', handler: settlementHandler(new Assets()) });

  const p = await parties();
  const msg = settle(p, 10_000_000n, 50_000n); // 0.1 BTC for $500
  await publish(msg);
  await waitFor(() => lines.includes(`committed ${msg.id}`), 'child commit');
  // Committed in the child's transaction: the journal entry and the inbox row are there, the ack is not.
  expect(
    await count(`SELECT 1 FROM wallet.journal_entries WHERE idempotency_key = $1`, [`trade:${msg.payload.tradeId}`]),
  ).toBe(1);
  child.kill('SIGKILL');
  await new Promise((r) => (child.signalCode !== null ? r(null) : child.once('exit', r)));

  // The broker hands the unacked message to the parent, whose inbox sees it was applied.
  await waitFor(async () => (await consumed('duplicate')) >= 1, 'redelivery skipped as duplicate');
  expect(
    await count(`SELECT 1 FROM wallet.journal_entries WHERE idempotency_key = $1`, [`trade:${msg.payload.tradeId}`]),
  ).toBe(1);
  expect(await count(`SELECT 1 FROM wallet.inbox WHERE message_id = $1`, [msg.id])).toBe(1);
  expect(
    await count(
      `SELECT 1 FROM wallet.outbox WHERE type = 'wallet.trade-settled' AND message->'payload'->>'tradeId' = $1`,
      [msg.payload.tradeId],
    ),
  ).toBe(1);
  expect((await userBalances(db.pool, p.buyer)).get('BTC')?.total).toBe(10_000_000n);
  expect((await userBalances(db.pool, p.seller)).get('USD')?.total).toBe(50_000n - 50n);
  await assertLedgerInvariants(db.pool);
});

test('the same settlement delivered 3 times (and once more under a new id) is applied once', async () => {
  const p = await parties();
  const msg = settle(p, 20_000_000n, 100_000n);
  const beforeOk = await consumed('ok');
  const beforeDup = await consumed('duplicate');
  for (let i = 0; i < 3; i++) await publish(msg);
  await publish({ ...msg, id: randomUUID() });
  // Consumer outcomes: the first delivery and the copy run the handler ("ok"; the copy finds the trade settled),
  // the two redeliveries of the same message id are skipped by the inbox ("duplicate").
  await waitFor(
    async () => (await consumed('ok')) >= beforeOk + 2 && (await consumed('duplicate')) >= beforeDup + 2,
    'four deliveries',
  );
  await waitFor(async () => (await messaging.queueLengths()).every((q) => q.messages === 0), 'queue drained');
  expect(await count(`SELECT 1 FROM wallet.settlements WHERE trade_id = $1`, [msg.payload.tradeId])).toBe(1);
  expect(
    await count(`SELECT 1 FROM wallet.journal_entries WHERE idempotency_key = $1`, [`trade:${msg.payload.tradeId}`]),
  ).toBe(1);
  expect(
    await count(
      `SELECT 1 FROM wallet.outbox WHERE type = 'wallet.trade-settled' AND message->'payload'->>'tradeId' = $1`,
      [msg.payload.tradeId],
    ),
  ).toBe(1);
  const buyer = await userBalances(db.pool, p.buyer);
  expect(buyer.get('USD')).toMatchObject({ total: 900_000n, held: 500_000n });
  expect(buyer.get('BTC')?.total).toBe(20_000_000n);
  await assertLedgerInvariants(db.pool);
});

test('a release that overtakes its settlement does not lose the capture; the order ends with nothing held', async () => {
  const p = await parties(600_000n, 10_000_000n);
  const msg = settle(p, 10_000_000n, 50_000n);
  const release = ReleaseHoldV1.create(
    { holdId: p.buyOrder, userId: p.buyer, reason: 'cancelled' },
    { producer: 'payment-processor' },
  );
  const releaseSeller = ReleaseHoldV1.create(
    { holdId: p.sellOrder, userId: p.seller, reason: 'filled' },
    { producer: 'payment-processor' },
  );
  await publish(release);
  await publish(msg);
  await publish(msg);
  await publish(releaseSeller);
  await allApplied(release, msg, releaseSeller);
  const buyer = await userBalances(db.pool, p.buyer);
  expect(buyer.get('USD')).toMatchObject({ total: 950_000n, held: 0n });
  expect(buyer.get('BTC')?.total).toBe(10_000_000n);
  const seller = await userBalances(db.pool, p.seller);
  expect(seller.get('BTC')).toMatchObject({ total: 90_000_000n, held: 0n });
  const holds = await db.pool.query(
    `SELECT id::text, status, captured::text, released::text, late_captured::text FROM wallet.holds WHERE id = ANY($1) ORDER BY status`,
    [[p.buyOrder, p.sellOrder]],
  );
  expect(holds.rows).toEqual(
    expect.arrayContaining([
      { id: p.buyOrder, status: 'released', captured: '0', released: '600000', late_captured: '50000' },
      { id: p.sellOrder, status: 'captured', captured: '10000000', released: '0', late_captured: '0' },
    ]),
  );
  await assertLedgerInvariants(db.pool);
});

test('a release naming its order totals waits for the overtaken settlement, then releases exactly the rest', async () => {
  const p = await parties(600_000n, 10_000_000n);
  const msg = settle(p, 10_000_000n, 50_000n);
  const totals = {
    market: 'BTC-USD',
    baseAsset: 'BTC',
    quoteAsset: 'USD',
    filledBase: '10000000',
    filledQuote: '50000',
  };
  const release = ReleaseHoldV1.create(
    { holdId: p.buyOrder, userId: p.buyer, reason: 'cancelled', ...totals },
    { producer: 'payment-processor' },
  );
  const releaseSeller = ReleaseHoldV1.create(
    { holdId: p.sellOrder, userId: p.seller, reason: 'filled', ...totals },
    { producer: 'payment-processor' },
  );
  const beforeRetried = await consumed('retry');
  await publish(release);
  // the release is refused for now (nothing captured yet) and goes to the retry queue…
  await waitFor(async () => (await consumed('retry')) > beforeRetried, 'release deferred');
  const early = await db.pool.query(`SELECT status FROM wallet.holds WHERE id = $1`, [p.buyOrder]);
  expect(early.rows[0].status).toBe('active');
  // …the settlement arrives, then the release applies on its retry
  await publish(msg);
  await publish(releaseSeller);
  await allApplied(release, msg, releaseSeller);
  const holds = await db.pool.query(
    `SELECT id::text, status, captured::text, released::text, late_captured::text FROM wallet.holds WHERE id = ANY($1)`,
    [[p.buyOrder, p.sellOrder]],
  );
  expect(holds.rows).toEqual(
    expect.arrayContaining([
      { id: p.buyOrder, status: 'released', captured: '50000', released: '550000', late_captured: '0' },
      { id: p.sellOrder, status: 'captured', captured: '10000000', released: '0', late_captured: '0' },
    ]),
  );
  expect((await userBalances(db.pool, p.buyer)).get('USD')).toMatchObject({ total: 950_000n, held: 0n });
  expect(await count(`SELECT 1 FROM wallet.dead_letters WHERE message_id = ANY($1)`, [[release.id]])).toBe(0);
  await assertLedgerInvariants(db.pool);
});

test('amend adjustments: a top-up becomes part of the order hold, a decrease frees funds, the release ends the rest', async () => {
  const p = await parties(600_000n, 10_000_000n);
  const topUp = randomUUID();
  await withTransaction(db.pool, (c) =>
    createHold(c, {
      holdId: topUp,
      userId: p.buyer,
      asset: 'USD',
      amount: 100_000n,
      reason: 'order_amend',
      refType: 'order_amend',
      refId: p.buyOrder,
    }),
  );
  expect((await userBalances(db.pool, p.buyer)).get('USD')).toMatchObject({ held: 700_000n });
  // the engine needed 80_000 of the 100_000 reserved: the order hold grows by 80_000, the top-up ends
  const up = AdjustHoldV1.create(
    { holdId: p.buyOrder, userId: p.buyer, asset: 'USD', delta: '80000', topUpHoldId: topUp, reason: 'amend' },
    { producer: 'payment-processor' },
  );
  const fill = settle(p, 10_000_000n, 50_000n);
  // then a decrease of 130_000 (quantity down) after a fill
  const down = AdjustHoldV1.create(
    { holdId: p.buyOrder, userId: p.buyer, asset: 'USD', delta: '-130000', reason: 'amend' },
    { producer: 'payment-processor' },
  );
  await publish(up);
  await publish(up); // a redelivery changes nothing
  await publish(fill);
  await publish(down);
  await allApplied(up, fill, down);
  const hold = async (id: string) =>
    (
      await db.pool.query(
        `SELECT status, amount::text, captured::text, released::text FROM wallet.holds WHERE id = $1`,
        [id],
      )
    ).rows[0];
  expect(await hold(topUp)).toEqual({ status: 'released', amount: '100000', captured: '0', released: '100000' });
  expect(await hold(p.buyOrder)).toEqual({ status: 'active', amount: '550000', captured: '50000', released: '0' });
  expect((await userBalances(db.pool, p.buyer)).get('USD')).toMatchObject({ total: 950_000n, held: 500_000n });
  const release = ReleaseHoldV1.create(
    {
      holdId: p.buyOrder,
      userId: p.buyer,
      reason: 'cancelled',
      market: 'BTC-USD',
      baseAsset: 'BTC',
      quoteAsset: 'USD',
      filledBase: '10000000',
      filledQuote: '50000',
    },
    { producer: 'payment-processor' },
  );
  // a rejected amend: only the top-up ends (delta 0); an adjustment after the release leaves the ended hold alone
  const topUp2 = randomUUID();
  await withTransaction(db.pool, (c) =>
    createHold(c, {
      holdId: topUp2,
      userId: p.buyer,
      asset: 'USD',
      amount: 7_000n,
      reason: 'order_amend',
      refType: 'order_amend',
      refId: p.buyOrder,
    }),
  );
  const rejected = AdjustHoldV1.create(
    { holdId: p.buyOrder, userId: p.buyer, asset: 'USD', delta: '0', topUpHoldId: topUp2, reason: 'amend_rejected' },
    { producer: 'payment-processor' },
  );
  const late = AdjustHoldV1.create(
    { holdId: p.buyOrder, userId: p.buyer, asset: 'USD', delta: '-1000', reason: 'amend' },
    { producer: 'payment-processor' },
  );
  await publish(rejected);
  await publish(release);
  await publish(late);
  await allApplied(rejected, release, late);
  expect(await hold(topUp2)).toMatchObject({ status: 'released', released: '7000' });
  expect(await hold(p.buyOrder)).toEqual({
    status: 'released',
    amount: '550000',
    captured: '50000',
    released: '500000',
  });
  expect((await userBalances(db.pool, p.buyer)).get('USD')).toMatchObject({ total: 950_000n, held: 0n });
  await assertLedgerInvariants(db.pool);
});

test('an adjustment that would under-cover what the hold captured is dead-lettered, nothing changes', async () => {
  const p = await parties(600_000n, 10_000_000n);
  const fill = settle(p, 10_000_000n, 500_000n);
  const bad = AdjustHoldV1.create(
    { holdId: p.buyOrder, userId: p.buyer, asset: 'USD', delta: '-100000', reason: 'amend' },
    { producer: 'payment-processor' },
  );
  await publish(fill);
  await allApplied(fill);
  await publish(bad);
  await waitFor(
    async () => (await count(`SELECT 1 FROM wallet.dead_letters WHERE message_id = $1`, [bad.id])) === 1,
    'dead-lettered',
  );
  const h = await db.pool.query(`SELECT amount::text, status FROM wallet.holds WHERE id = $1`, [p.buyOrder]);
  expect(h.rows[0]).toEqual({ amount: '600000', status: 'active' });
  await assertLedgerInvariants(db.pool);
});

test('a release whose totals disagree with what was captured is dead-lettered, the hold untouched', async () => {
  const p = await parties(600_000n, 10_000_000n);
  await publish(settle(p, 10_000_000n, 50_000n));
  const wrong = ReleaseHoldV1.create(
    {
      holdId: p.buyOrder,
      userId: p.buyer,
      reason: 'cancelled',
      market: 'BTC-USD',
      baseAsset: 'BTC',
      quoteAsset: 'USD',
      filledBase: '10000000',
      filledQuote: '40000', // the settlement captured 50000
    },
    { producer: 'payment-processor' },
  );
  await publish(wrong);
  await waitFor(
    async () => (await count(`SELECT 1 FROM wallet.dead_letters WHERE message_id = $1`, [wrong.id])) === 1,
    'dead letter',
  );
  const dl = await db.pool.query(`SELECT reason FROM wallet.dead_letters WHERE message_id = $1`, [wrong.id]);
  expect(dl.rows[0].reason).toMatch(/captured 50000 USD, but the order's trades total 40000/);
  const hold = await db.pool.query(
    `SELECT status, held_left FROM (SELECT status, amount - captured - released AS held_left FROM wallet.holds WHERE id = $1) h`,
    [p.buyOrder],
  );
  expect(hold.rows[0]).toEqual({ status: 'active', held_left: '550000' });
  await assertLedgerInvariants(db.pool);
});

test('a settlement that cannot apply (unknown hold) is retried, then dead-lettered loudly — and changes nothing', async () => {
  const p = await parties();
  const bad = settle({ ...p, buyOrder: randomUUID() }, 10_000_000n, 50_000n);
  await publish(bad);
  await waitFor(
    async () => (await count(`SELECT 1 FROM wallet.dead_letters WHERE message_id = $1`, [bad.id])) === 1,
    'dead letter',
  );
  const dl = await db.pool.query(`SELECT reason, attempts FROM wallet.dead_letters WHERE message_id = $1`, [bad.id]);
  expect(dl.rows[0].reason).toMatch(/HOLD_NOT_FOUND|does not exist/);
  expect(dl.rows[0].attempts).toBe(3);
  expect(await count(`SELECT 1 FROM wallet.journal_entries WHERE ref_id = $1`, [bad.payload.tradeId])).toBe(0);
  await assertLedgerInvariants(db.pool);
});

test('startConsumers wires both queues (settlement and payouts)', async () => {
  const vh = await createTestVhost('wallet_wiring');
  const m = createMessaging({
    url: vh.url,
    service: 'wallet',
    pool: db.pool,
    schema: 'wallet',
    logger: silentLogger,
    relay: false,
  });
  try {
    await m.start();
    const consumers = await startConsumers(m, new Assets(), { info() {}, warn() {} });
    expect(consumers.map((c) => c.queue)).toEqual(['wallet.settlement', 'wallet.payouts']);
    const names = (await m.queueLengths()).map((q) => q.queue);
    expect(names).toEqual(
      expect.arrayContaining(['wallet.settlement', 'wallet.settlement.dlq', 'wallet.payouts', 'wallet.payouts.dlq']),
    );
  } finally {
    await m.close();
    await vh.drop();
  }
});

test('payout results on wallet.payouts: completion captures once (amount to the rail, fee to fees), failure releases', async () => {
  await messaging.declareQueue({ ...PAYOUTS_QUEUE, ...FAST_RETRY });
  await messaging.consume({ queue: 'wallet.payouts', handler: payoutsHandler() });
  const user = randomUUID();
  await fundUser(db.pool, user, 'ETH', 10n ** 19n); // 10 ETH
  const assets = new Assets();
  const policy = { limits: parseWithdrawalLimits(undefined, assets), dispatchDelayMs: 0 };
  const address = '0x52908400098527886E0F7030069857D2E4169EE7';
  const a = await requestWithdrawal(db.pool, assets, policy, { userId: user, asset: 'ETH', amount: '2', address });
  const b = await requestWithdrawal(db.pool, assets, policy, { userId: user, asset: 'ETH', amount: '3', address });
  while (await dispatchNextWithdrawal(db.pool));
  const at = new Date().toISOString();
  const done = PayoutCompletedV1.create(
    { withdrawalId: a.id, railTxId: 'eth-tx-1', completedAt: at },
    { producer: 'payment-processor' },
  );
  const failed = PayoutFailedV1.create(
    { withdrawalId: b.id, reason: 'address rejected', failedAt: at },
    { producer: 'payment-processor' },
  );
  const send = (m: Envelope) =>
    messaging.publisher.publish(COMMANDS_EXCHANGE, 'wallet.payouts', Buffer.from(JSON.stringify(m)), {
      messageId: m.id,
      persistent: true,
      contentType: 'application/json',
    });
  await send(done);
  await send(done);
  await send({ ...done, id: randomUUID() });
  await send(failed);
  await waitFor(
    async () =>
      (await count(`SELECT 1 FROM wallet.withdrawals WHERE id = ANY($1) AND status IN ('completed', 'failed')`, [
        [a.id, b.id],
      ])) === 2,
    'payout results applied',
  );
  await waitFor(
    async () =>
      (await messaging.queueLengths())
        .filter((q) => q.queue.startsWith('wallet.payouts'))
        .every((q) => q.messages === 0),
    'payout queues drained (nothing dead-lettered)',
  );
  const eth = (await userBalances(db.pool, user)).get('ETH')!;
  expect(eth.total).toBe(10n ** 19n - 2n * 10n ** 18n - 10n ** 15n); // 10 - 2 - 0.001 fee
  expect(eth.held).toBe(0n);
  expect(await count(`SELECT 1 FROM wallet.rail_transactions WHERE withdrawal_id = $1`, [a.id])).toBe(1);
  await assertLedgerInvariants(db.pool);
});
