/**
 * Issue 17 (stop orders), end to end through the gateway with the SDK: a stop waits off the book with its funds held;
 * another user's trade moves the last price to its stop price and triggers it in the same engine command; it then
 * trades like a new order and settles exactly (amounts and fees); the ledger invariants hold.
 */
import { assertLedgerInvariants } from '@exchange/wallet/testing';
import { balance, eventually, orderReaches, trader, useTestStack } from './index.ts';

const t = useTestStack();

it("a sell stop-limit triggered by another user's trade settles exactly", async () => {
  const mm = await trader(t, { USD: '100000.00' });
  const alice = await trader(t, { BTC: '1.00000000' });
  const bob = await trader(t, { BTC: '1.00000000' });

  await mm.placeOrder({ market: 'BTC-USD', side: 'buy', type: 'limit', price: '49000', quantity: '0.5' });
  await mm.placeOrder({ market: 'BTC-USD', side: 'buy', type: 'limit', price: '48900', quantity: '0.5' });
  await eventually(async () => (await mm.book('BTC-USD')).bids.length === 2, 20_000, 'bids on the book');

  // Alice: sell 0.6 if the price falls to 49500, at no less than 48900. Held from placement, invisible in the book.
  const stop = await alice.placeOrder({
    market: 'BTC-USD',
    side: 'sell',
    type: 'limit',
    price: '48900',
    quantity: '0.6',
    stopPrice: '49500',
  });
  expect(stop).toMatchObject({ status: 'new', stopPrice: '49500', stopTriggered: false });
  expect(await balance(alice, 'BTC')).toMatchObject({ total: '1.00000000', held: '0.60000000' });
  await new Promise((r) => setTimeout(r, 1500)); // let a book snapshot go out: the stop is not in it
  expect((await alice.book('BTC-USD')).asks).toEqual([]);

  // Bob sells 0.1 at 49000: the trade at 49000 <= 49500 triggers Alice's stop, which sells 0.4 @ 49000 + 0.2 @ 48900.
  await bob.placeOrder({ market: 'BTC-USD', side: 'sell', type: 'limit', price: '49000', quantity: '0.1' });
  const filled = await orderReaches(alice, stop.id, 'filled', 'stop triggered and filled');
  expect(filled).toMatchObject({ stopTriggered: true, filledQuantity: '0.60', filledNotional: '29380.00' });
  const fills = await alice.fills({ orderId: stop.id });
  expect(fills.items.map((f) => [f.price, f.quantity, f.liquidity]).sort()).toEqual([
    ['48900', '0.20', 'taker'],
    ['49000', '0.40', 'taker'],
  ]);
  // 0.4 × 49000 + 0.2 × 48900 = 29380.00, less the 20 bps taker fee per fill (39.20 + 19.56)
  await eventually(async () => (await balance(alice, 'USD')).total === '29321.24', 30_000, 'alice paid');
  expect(await balance(alice, 'BTC')).toMatchObject({ total: '0.40000000', held: '0.00000000' });
  // mm bought 0.5 + 0.2 BTC for 24500 + 9780 USD, less the 10 bps maker fee in BTC (0.0005 + 0.0002)
  await eventually(async () => (await balance(mm, 'BTC')).total === '0.69930000', 30_000, 'mm credited');
  expect(await balance(mm, 'USD')).toMatchObject({ total: '65720.00', held: '14670.00' });
  await assertLedgerInvariants(t.db.pool);
}, 240_000);
