/**
 * Issue 7, end to end through the gateway with the SDK: two users deposit, cross, and their balances change exactly
 * by price × quantity and fees; partial fills; cancel releases the rest of the hold; the ledger invariants hold.
 */
import { assertLedgerInvariants } from '@exchange/wallet/testing';
import { eventually, newTrader, startTestStack, type TestStack } from './index.ts';

let t: TestStack;
beforeAll(async () => {
  t = await startTestStack();
}, 180_000);
afterAll(async () => t?.close(), 60_000);

const bal = async (c: ReturnType<TestStack['client']>, asset: string) =>
  (await c.balances()).find((b) => b.asset === asset)!;

it('two users cross: exact balances, fees, partial fill, cancel releases the hold', async () => {
  const alice = t.client();
  const bob = t.client();
  await newTrader(alice, { USD: '100000.00' });
  await newTrader(bob, { BTC: '2.00000000' });

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
  expect((await bal(bob, 'BTC')).held).toBe('0.50000000');
  await eventually(async () => (await bob.book('BTC-USD')).asks.length > 0, 20_000, 'sell order on the book');

  const buy = await alice.placeOrder({
    market: 'BTC-USD',
    side: 'buy',
    type: 'limit',
    price: '60000',
    quantity: '0.3',
    timeInForce: 'GTC',
  });
  const filled = await eventually(
    async () => {
      const o = await alice.getOrder(buy.id);
      return o.status === 'filled' ? o : undefined;
    },
    30_000,
    'buy filled',
  );
  expect(filled.filledQuantity).toBe('0.30');
  expect(filled.averagePrice).toMatch(/^60000(\.0+)?$/);
  const partial = await eventually(
    async () => {
      const o = await bob.getOrder(sell.id);
      return o.status === 'partially_filled' ? o : undefined;
    },
    30_000,
    'sell partially filled',
  );
  expect(partial.remainingQuantity).toBe('0.20');

  // Settlement: alice paid 0.3 × 60000 = 18000.00 USD and received 0.3 BTC less the 20 bps taker fee (0.0006);
  // bob delivered 0.3 BTC and received 18000 USD less the 10 bps maker fee (18.00).
  await eventually(async () => (await bal(alice, 'BTC')).total === '0.29940000', 30_000, 'alice credited');
  expect(await bal(alice, 'USD')).toMatchObject({ total: '82000.00', held: '0.00', available: '82000.00' });
  await eventually(async () => (await bal(bob, 'USD')).total === '17982.00', 30_000, 'bob credited');
  expect(await bal(bob, 'BTC')).toMatchObject({ total: '1.70000000', held: '0.20000000', available: '1.50000000' });

  const aliceFills = await alice.fills({ market: 'BTC-USD' });
  expect(aliceFills.items.map((f) => [f.side, f.price, f.quantity])).toEqual([['buy', '60000', '0.30']]);

  // Cancel the rest: the 0.20 BTC still held comes back.
  await bob.cancelOrder(sell.id);
  await eventually(async () => (await bob.getOrder(sell.id)).status === 'cancelled', 30_000, 'cancelled');
  await eventually(async () => (await bal(bob, 'BTC')).held === '0.00000000', 30_000, 'hold released');
  expect(await bal(bob, 'BTC')).toMatchObject({ total: '1.70000000', available: '1.70000000' });

  // Market data saw the trade.
  const trades = await alice.trades('BTC-USD');
  expect(trades[0]).toMatchObject({ price: '60000', quantity: '0.30' });
  await assertLedgerInvariants(t.db.pool);
}, 180_000);
