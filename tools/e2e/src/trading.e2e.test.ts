/**
 * Issue 7, end to end through the gateway with the SDK: two users deposit, cross, and their balances change exactly
 * by price × quantity and fees; partial fills; cancel releases the rest of the hold; the ledger invariants hold.
 */
import { assertLedgerInvariants } from '@exchange/wallet/testing';
import { balance, eventually, orderReaches, trader, useTestStack } from './index.ts';

const t = useTestStack();

it('two users cross: exact balances, fees, partial fill, cancel releases the hold', async () => {
  const alice = await trader(t, { USD: '100000.00' });
  const bob = await trader(t, { BTC: '2.00000000' });

  // Bob rests 0.50 BTC at 60000 (maker); Alice takes 0.30 of it (taker).
  const sell = await bob.placeOrder({
    market: 'BTC-USD',
    side: 'sell',
    type: 'limit',
    price: '60000',
    quantity: '0.5',
    timeInForce: 'GTC',
  });
  expect(sell.status).toBe('new');
  expect((await balance(bob, 'BTC')).held).toBe('0.50000000');
  await eventually(async () => (await bob.book('BTC-USD')).asks.length > 0, 20_000, 'sell order on the book');

  const buy = await alice.placeOrder({
    market: 'BTC-USD',
    side: 'buy',
    type: 'limit',
    price: '60000',
    quantity: '0.3',
    timeInForce: 'GTC',
  });
  const filled = await orderReaches(alice, buy.id, 'filled', 'buy filled');
  expect(filled.filledQuantity).toBe('0.30');
  expect(filled.averagePrice).toMatch(/^60000(\.0+)?$/);
  const partial = await orderReaches(bob, sell.id, 'partially_filled', 'sell partially filled');
  expect(partial.remainingQuantity).toBe('0.20');

  // Settlement: alice paid 0.3 × 60000 = 18000.00 USD and received 0.3 BTC less the 20 bps taker fee (0.0006);
  // bob delivered 0.3 BTC and received 18000 USD less the 10 bps maker fee (18.00).
  await eventually(async () => (await balance(alice, 'BTC')).total === '0.29940000', 30_000, 'alice credited');
  expect(await balance(alice, 'USD')).toMatchObject({ total: '82000.00', held: '0.00', available: '82000.00' });
  await eventually(async () => (await balance(bob, 'USD')).total === '17982.00', 30_000, 'bob credited');
  expect(await balance(bob, 'BTC')).toMatchObject({ total: '1.70000000', held: '0.20000000', available: '1.50000000' });

  const aliceFills = await alice.fills({ market: 'BTC-USD' });
  expect(aliceFills.items.map((f) => [f.side, f.price, f.quantity])).toEqual([['buy', '60000', '0.30']]);

  // Cancel the rest: the 0.20 BTC still held comes back.
  await bob.cancelOrder(sell.id);
  await orderReaches(bob, sell.id, 'cancelled', 'cancelled');
  await eventually(async () => (await balance(bob, 'BTC')).held === '0.00000000', 30_000, 'hold released');
  expect(await balance(bob, 'BTC')).toMatchObject({ total: '1.70000000', available: '1.70000000' });

  // Market data saw the trade.
  const trades = await alice.trades('BTC-USD');
  expect(trades[0]).toMatchObject({ price: '60000', quantity: '0.30' });
  await assertLedgerInvariants(t.db.pool);
}, 180_000);
