/**
 * Issue 17 (amend), end to end through the gateway with the SDK: an amend down keeps time priority and releases
 * exactly the freed part of the hold; a price amend loses priority and its extra hold is reserved first and follows
 * exactly; the amend is idempotent by amendSeq; the ledger invariants hold and reconciliation finds nothing.
 */
import type { ExchangeClient } from '@exchange/sdk';
import { assertLedgerInvariants } from '@exchange/wallet/testing';
import { balance, eventually, orderReaches, trader, useTestStack } from './index.ts';

const t = useTestStack();

const applied = async (c: ExchangeClient, orderId: string, seq: number) =>
  eventually(
    async () => {
      const a = (await c.orderAmends(orderId)).items.find((x) => x.amendSeq === seq);
      return a && (a.status === 'applied' || a.status === 'rejected') ? a : undefined;
    },
    30_000,
    `amend ${seq} of ${orderId} answered`,
  );

it('amend down keeps priority and releases the right hold; a price amend loses priority; exact holds', async () => {
  const alice = await trader(t, { USD: '100000.00' });
  const bob = await trader(t, { USD: '100000.00' });
  const carol = await trader(t, { BTC: '5.00000000' });
  const bid = { market: 'BTC-USD', side: 'buy', type: 'limit', price: '50000', timeInForce: 'GTC' } as const;

  // Alice bids first (time priority), then Bob at the same price.
  const a = await alice.placeOrder({ ...bid, quantity: '1.0' });
  await eventually(async () => (await alice.book('BTC-USD')).bids.length > 0, 20_000, 'alice on the book');
  const b = await bob.placeOrder({ ...bid, quantity: '1.0' });
  expect((await balance(alice, 'USD')).held).toBe('50000.00');

  // Alice amends DOWN to 0.4: keeps priority, 0.6 × 50000 = 30000.00 USD comes back.
  const r = await alice.amendOrder(a.id, { quantity: '0.4', amendSeq: 1 });
  expect(r.amend).toMatchObject({ status: 'sent', amendSeq: 1, topUp: '0.00' });
  // the same request again (a client retry) is the same amend
  expect((await alice.amendOrder(a.id, { quantity: '0.4', amendSeq: 1 })).amend.id).toBe(r.amend.id);
  const done = await applied(alice, a.id, 1);
  expect(done).toMatchObject({ status: 'applied', priorityKept: true, holdDelta: '-30000.00' });
  await eventually(async () => (await balance(alice, 'USD')).held === '20000.00', 30_000, 'alice hold reduced');
  expect(await balance(alice, 'USD')).toMatchObject({ total: '100000.00', available: '80000.00' });
  expect(await alice.getOrder(a.id)).toMatchObject({
    quantity: '0.40',
    remainingQuantity: '0.40',
    holdAmount: '20000.00',
  });

  // Bob raises his price by 10: loses nothing in priority he had (he was behind), holds 1.0 × 10 more, exactly.
  const rb = await bob.amendOrder(b.id, { price: '50010' });
  expect(rb.amend.topUp).toBe('10.00');
  expect(await applied(bob, b.id, 1)).toMatchObject({ status: 'applied', priorityKept: false, holdDelta: '10.00' });
  await eventually(async () => (await balance(bob, 'USD')).held === '50010.00', 30_000, 'bob hold grown');
  expect(await balance(bob, 'USD')).toMatchObject({ total: '100000.00', available: '49990.00' });
  // and back down to 50000: he is now BEHIND alice at 50000 (a price change loses priority)
  await bob.amendOrder(b.id, { price: '50000' });
  expect(await applied(bob, b.id, 2)).toMatchObject({ status: 'applied', priorityKept: false, holdDelta: '-10.00' });
  await eventually(async () => (await balance(bob, 'USD')).held === '50000.00', 30_000, 'bob hold back');

  // Carol sells 0.5 at 50000: alice's 0.4 fills first (kept priority), then 0.1 of bob's.
  await carol.placeOrder({ market: 'BTC-USD', side: 'sell', type: 'limit', price: '50000', quantity: '0.5' });
  await orderReaches(alice, a.id, 'filled', 'alice filled first');
  const bobOrder = await orderReaches(bob, b.id, 'partially_filled', 'bob partially filled');
  expect(bobOrder.filledQuantity).toBe('0.10');
  // alice paid exactly 0.4 × 50000 and holds nothing any more
  await eventually(async () => (await balance(alice, 'USD')).held === '0.00', 30_000, 'alice hold released');
  expect(await balance(alice, 'USD')).toMatchObject({ total: '80000.00' });

  // An amend that would cross the book is rejected by the engine; its top-up comes back.
  await carol.placeOrder({ market: 'BTC-USD', side: 'sell', type: 'limit', price: '50100', quantity: '0.1' });
  await eventually(async () => (await bob.book('BTC-USD')).asks.length > 0, 20_000, 'ask on the book');
  const cross = await bob.amendOrder(b.id, { price: '50100' });
  expect(Number(cross.amend.topUp)).toBeGreaterThan(0);
  expect(await applied(bob, b.id, 3)).toMatchObject({ status: 'rejected', reason: 'AMEND_WOULD_TAKE' });
  // bob: 0.9 open at 50000 = 45000.00 held; nothing of the top-up stays held
  await eventually(async () => (await balance(bob, 'USD')).held === '45000.00', 30_000, 'top-up released');
  expect(await bob.getOrder(b.id)).toMatchObject({ price: '50000', holdAmount: '50000.00' });

  await bob.cancelOrder(b.id);
  await eventually(async () => (await balance(bob, 'USD')).held === '0.00', 30_000, 'bob released');
  expect(await balance(bob, 'USD')).toMatchObject({ total: '95000.00' });
  await assertLedgerInvariants(t.db.pool);
}, 240_000);
