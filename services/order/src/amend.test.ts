/**
 * PATCH /api/v1/orders/:id at the order service: validation, the top-up hold, idempotency by amendSeq, one amend in
 * flight, the outbox command, the engine's answer applied to the order, and the sweeper for stuck amends.
 * (The engine's decision and the wallet's adjustment are tested in their services; the whole path in tools/e2e.)
 */
import { randomUUID } from 'node:crypto';
import { loadCatalog } from '@exchange/contracts/markets';
import { OrderAmendedV1 } from '@exchange/contracts/trading';
import { topUpFor } from './orders/amend.ts';
import { createHarness, type Harness } from './testing/harness.ts';

let h: Harness;
let alice: Awaited<ReturnType<Harness['user']>>;
let bob: Awaited<ReturnType<Harness['user']>>;
const market = loadCatalog(undefined).market('BTC-USD')!;

beforeAll(async () => {
  h = await createHarness();
  alice = await h.user();
  bob = await h.user();
});
afterAll(async () => {
  await h?.close();
});

async function placeBuy(over: Record<string, unknown> = {}, user = alice) {
  const r = await h.app.inject({
    method: 'POST',
    url: '/api/v1/orders',
    headers: user.auth,
    payload: { market: 'BTC-USD', side: 'buy', type: 'limit', price: '60000', quantity: '0.5', ...over },
  });
  expect(r.statusCode).toBe(201);
  return r.json() as { id: string; holdAmount: string };
}

const patch = (id: string, payload: object, user = alice) =>
  h.app.inject({ method: 'PATCH', url: `/api/v1/orders/${id}`, headers: user.auth, payload });

async function amendMessages(orderId: string) {
  return h.outboxPayloads('engine.amend-order', orderId);
}

/** The engine's answer as the payment-processor publishes it, applied by the event consumer. */
async function engineAnswers(p: {
  amendId: string;
  orderId: string;
  userId: string;
  ok: boolean;
  priceTicks?: string;
  quantityLots?: string;
  holdDelta: string;
  reason?: string;
}) {
  const msg = OrderAmendedV1.create(
    {
      market: 'BTC-USD',
      seq: '99',
      priorityKept: false,
      holdAsset: 'USD',
      at: new Date().toISOString(),
      ...p,
    },
    { producer: 'payment-processor' },
  );
  return h.applyEvent(msg);
}

describe('PATCH /api/v1/orders/:id', () => {
  it('quantity down: no top-up, straight to the engine; replay by amendSeq; one amend in flight', async () => {
    const o = await placeBuy();
    const r = await patch(o.id, { quantity: '0.3', amendSeq: 1 });
    expect(r.statusCode).toBe(202);
    const body = r.json();
    expect(body.amend).toMatchObject({ amendSeq: 1, status: 'sent', quantity: '0.30', price: null, topUp: '0.00' });
    expect(body.order).toMatchObject({ id: o.id, amendSeq: 1 });
    const msgs = await amendMessages(o.id);
    expect(msgs).toEqual([
      expect.objectContaining({ amendId: body.amend.id, quantityLots: '30', userId: alice.id, market: 'BTC-USD' }),
    ]);
    expect(msgs[0]).not.toHaveProperty('topUpHoldId');

    // the same amend again: the same answer, nothing sent twice
    const again = await patch(o.id, { quantity: '0.3', amendSeq: 1 });
    expect(again.statusCode).toBe(200);
    expect(again.json().amend.id).toBe(body.amend.id);
    // "0.30" is the same quantity
    expect((await patch(o.id, { quantity: '0.30', amendSeq: 1 })).statusCode).toBe(200);
    expect((await patch(o.id, { quantity: '0.2', amendSeq: 1 })).json().error.code).toBe('AMEND_SEQ_CONFLICT');
    const mismatch = await patch(o.id, { quantity: '0.2', amendSeq: 5 });
    expect(mismatch.statusCode).toBe(409);
    expect(mismatch.json().error.code).toBe('AMEND_SEQ_MISMATCH');
    expect((await patch(o.id, { quantity: '0.2' })).json().error.code).toBe('AMEND_IN_PROGRESS');
    expect(await amendMessages(o.id)).toHaveLength(1);

    // the engine applies it: the order now has 0.3 and its hold shrank by 0.2 × 60000 = 12000.00
    expect(
      await engineAnswers({
        amendId: body.amend.id,
        orderId: o.id,
        userId: alice.id,
        ok: true,
        priceTicks: '60000',
        quantityLots: '30',
        holdDelta: '-1200000',
      }),
    ).toEqual({ kind: 'amend', applied: true });
    // a redelivered answer changes nothing
    expect(
      await engineAnswers({
        amendId: body.amend.id,
        orderId: o.id,
        userId: alice.id,
        ok: true,
        quantityLots: '30',
        holdDelta: '-1200000',
      }),
    ).toEqual({ kind: 'amend', applied: false });
    const order = (await h.app.inject({ url: `/api/v1/orders/${o.id}`, headers: alice.auth })).json();
    expect(order).toMatchObject({ quantity: '0.30', holdAmount: '18000.00', amendSeq: 1 });
    const list = (await h.app.inject({ url: `/api/v1/orders/${o.id}/amends`, headers: alice.auth })).json();
    expect(list.items).toEqual([expect.objectContaining({ status: 'applied', holdDelta: '-12000.00' })]);
    // now the next amend may go
    expect((await patch(o.id, { quantity: '0.2', amendSeq: 2 })).statusCode).toBe(202);
  });

  it('price up on a buy reserves the exact top-up first; without the funds nothing is sent', async () => {
    const o = await placeBuy({ quantity: '1' });
    const before = await h.wallet.balance(alice.id, 'USD');
    const r = await patch(o.id, { price: '60100' });
    expect(r.statusCode).toBe(202);
    const a = r.json().amend;
    // 1 BTC × 100 USD more
    expect(a).toMatchObject({ status: 'sent', topUp: '100.00', price: '60100' });
    const after = await h.wallet.balance(alice.id, 'USD');
    expect(before.available - after.available).toBe(10_000n);
    expect((await h.wallet.holds()).find((x) => x.holdId === a.id)).toMatchObject({ amount: 10_000n });
    expect(await amendMessages(o.id)).toEqual([
      expect.objectContaining({ priceTicks: '60100', topUpHoldId: a.id, topUpAmount: '10000' }),
    ]);
    // the engine rejects it (e.g. it would cross): the order is unchanged
    await engineAnswers({
      amendId: a.id,
      orderId: o.id,
      userId: alice.id,
      ok: false,
      reason: 'AMEND_WOULD_TAKE',
      holdDelta: '0',
    });
    const order = (await h.app.inject({ url: `/api/v1/orders/${o.id}`, headers: alice.auth })).json();
    expect(order).toMatchObject({ price: '60000', holdAmount: o.holdAmount });

    // bob has 1,000,000 USD; an amend that needs more than he has is refused, and no command is sent
    const big = await placeBuy({ quantity: '10', price: '60000' }, bob);
    const poor = await patch(big.id, { quantity: '20' }, bob);
    expect(poor.statusCode).toBe(400);
    expect(poor.json().error.code).toBe('INSUFFICIENT_FUNDS');
    expect(await amendMessages(big.id)).toEqual([]);
    const amends = (await h.app.inject({ url: `/api/v1/orders/${big.id}/amends`, headers: bob.auth })).json();
    expect(amends.items).toEqual([expect.objectContaining({ status: 'rejected', reason: 'INSUFFICIENT_FUNDS' })]);
  });

  it('bad amends are 4xx with stable codes and change nothing', async () => {
    const o = await placeBuy();
    await h.db.pool.query(`UPDATE orders.orders SET filled_lots = 20, status = 'partially_filled' WHERE id = $1`, [
      o.id,
    ]);
    const cases: Array<[object, number, string]> = [
      [{}, 400, 'AMEND_NO_CHANGE'],
      [{ price: '60000', quantity: '0.5' }, 400, 'AMEND_NO_CHANGE'],
      [{ quantity: '0.2' }, 400, 'QUANTITY_BELOW_FILLED'],
      [{ quantity: '0.001' }, 400, 'INVALID_LOT'],
      [{ price: '60000.001' }, 400, 'INVALID_TICK'],
      [{ price: '1e5' }, 400, 'INVALID_PRICE'],
      [{ price: 60000 }, 400, 'VALIDATION_ERROR'],
      [{ quantity: '0.4', extra: true }, 400, 'VALIDATION_ERROR'],
      [{ quantity: '0.4', amendSeq: 0 }, 400, 'VALIDATION_ERROR'],
    ];
    for (const [body, status, code] of cases) {
      const r = await patch(o.id, body);
      expect([JSON.stringify(body), r.statusCode, r.json().error?.code]).toEqual([JSON.stringify(body), status, code]);
    }
    // price band around the last trade
    await h.db.pool.query(
      `INSERT INTO orders.market_state (market, last_trade_ticks, last_trade_seq, last_trade_at)
       VALUES ('BTC-USD', 60000, 1, now()) ON CONFLICT (market) DO UPDATE SET last_trade_ticks = 60000`,
    );
    expect((await patch(o.id, { price: '90000' })).json().error.code).toBe('PRICE_OUT_OF_BAND');
    await h.db.pool.query(`UPDATE orders.market_state SET last_trade_ticks = NULL WHERE market = 'BTC-USD'`);
    // someone else's order does not exist for you
    expect((await patch(o.id, { quantity: '0.4' }, bob)).statusCode).toBe(404);
    expect((await patch(randomUUID(), { quantity: '0.4' })).statusCode).toBe(404);
    // finished or cancelling orders cannot be amended
    await h.app.inject({ method: 'DELETE', url: `/api/v1/orders/${o.id}`, headers: alice.auth });
    expect((await patch(o.id, { quantity: '0.4' })).json().error.code).toBe('ORDER_NOT_OPEN');
    expect(await amendMessages(o.id)).toEqual([]);
    const { rows } = await h.db.pool.query(`SELECT amend_seq FROM orders.orders WHERE id = $1`, [o.id]);
    expect(rows[0].amend_seq).toBe(0);
  });

  it('an amend stuck on a wallet outage: 503, retried with the same amendSeq, or expired by the sweeper', async () => {
    const o = await placeBuy();
    h.wallet.setDown(true);
    const r = await patch(o.id, { price: '60050', amendSeq: 1 });
    expect(r.statusCode).toBe(503);
    expect(r.json().error.code).toBe('WALLET_UNAVAILABLE');
    h.wallet.setDown(false);
    const retry = await patch(o.id, { price: '60050', amendSeq: 1 });
    expect(retry.statusCode).toBe(200);
    expect(retry.json().amend).toMatchObject({ status: 'sent', topUp: '25.00' });
    expect(await amendMessages(o.id)).toHaveLength(1);

    const o2 = await placeBuy();
    h.wallet.setDown(true);
    expect((await patch(o2.id, { price: '60050' })).statusCode).toBe(503);
    h.wallet.setDown(false);
    expect(await h.app.orderAmends.sweep(60_000)).toEqual([]); // too recent
    const swept = await h.app.orderAmends.sweep(0);
    expect(swept).toHaveLength(1);
    const amends = (await h.app.inject({ url: `/api/v1/orders/${o2.id}/amends`, headers: alice.auth })).json();
    expect(amends.items).toEqual([expect.objectContaining({ status: 'rejected', reason: 'PENDING_EXPIRED' })]);
    expect(await amendMessages(o2.id)).toEqual([]);
    // the next amend (number 2) may go now
    expect((await patch(o2.id, { quantity: '0.4', amendSeq: 2 })).statusCode).toBe(202);
  });
});

describe('topUpFor', () => {
  it('is the most the amend can need whatever fills first', () => {
    const n = (t: bigint, l: bigint) => market.notional(t, l);
    // quantity down only: nothing
    expect(topUpFor(market, 'buy', 6_000_000n, 50n, 6_000_000n, 30n, 0n)).toBe(0n);
    // price up, nothing filled: the whole open part at the difference
    expect(topUpFor(market, 'buy', 6_000_000n, 50n, 6_010_000n, 50n, 0n)).toBe(n(10_000n, 50n));
    // price down and quantity up: worst case is when all but one lot of the old quantity filled first
    const t = topUpFor(market, 'buy', 6_000_000n, 50n, 5_990_000n, 80n, 0n);
    expect(t).toBe(n(5_990_000n, 31n) - n(6_000_000n, 1n));
    // sells hold base: more quantity → more base, price irrelevant
    expect(topUpFor(market, 'sell', 6_000_000n, 50n, 7_000_000n, 60n, 10n)).toBe(market.baseUnits(10n));
  });
});
