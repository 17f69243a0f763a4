/**
 * Issue 17 (icebergs, volatility guard), end to end through the gateway with the SDK:
 *  - an iceberg's hidden part is never visible: not in the REST book, not in the WS book channel, not in the public
 *    trades (each print is at most one shown slice); only its owner sees the whole order;
 *  - a trade that would print outside the band starts a call auction (book phase `auction`, orders collected, the
 *    book may cross), which the engine host ends after auctionSeconds by a journaled command: the uncross prints at
 *    the expected price and settles exactly.
 * BTC-USD runs here with a 1% band and a 10 s auction (MARKETS_FILE); the auction's steps take well under that.
 */
import { writeFileSync } from 'node:fs';
import { DEFAULT_ASSETS, DEFAULT_MARKETS } from '@exchange/contracts/markets';
import type { OrderBook } from '@exchange/sdk';
import { assertLedgerInvariants } from '@exchange/wallet/testing';
import { balance, eventually, orderReaches, trader, useTestStack } from './index.ts';

const marketsFile = `/tmp/e2e-markets-guard-${process.pid}.json`;
const t = useTestStack(() => {
  const markets = DEFAULT_MARKETS.map((m) =>
    m.symbol === 'BTC-USD' ? { ...m, volatilityGuard: { bandBps: 100, auctionSeconds: 10 } } : m,
  );
  writeFileSync(marketsFile, JSON.stringify({ assets: DEFAULT_ASSETS, markets }));
  return { env: { MARKETS_FILE: marketsFile } };
});

it("an iceberg's hidden part is never visible in the book, the WS book channel or the trades", async () => {
  const ice = await trader(t, { ETH: '2.000000000000000000' });
  const buyer = await trader(t, { USD: '100000.00' });
  const watcher = t.client();

  const stream = watcher.stream({ channels: ['book:ETH-USD', 'trades:ETH-USD'] });
  const frames: Array<{ channel?: string; data?: unknown }> = [];
  stream.on('message', (m: { channel?: string; data?: unknown }) => frames.push(m));
  await stream.ready;
  try {
    // ETH-USD: no guard; sell 1.0 showing 0.2 at a time
    const order = await ice.placeOrder({
      market: 'ETH-USD',
      side: 'sell',
      type: 'limit',
      price: '2000',
      quantity: '1.0',
      displayQuantity: '0.2',
    });
    expect(order).toMatchObject({ displayQuantity: '0.2', quantity: '1.0' });
    await eventually(async () => (await watcher.book('ETH-USD')).asks.length === 1, 20_000, 'iceberg in the book');
    expect((await watcher.book('ETH-USD')).asks).toEqual([['2000.0', '0.2']]);

    // 0.5 takes two slices and half of the third: prints 0.2, 0.2, 0.1; 0.1 shows, 0.4 stays hidden
    await buyer.placeOrder({ market: 'ETH-USD', side: 'buy', type: 'limit', price: '2000', quantity: '0.5' });
    const mine = await eventually(
      async () => {
        const o = await ice.getOrder(order.id);
        return o.filledQuantity === '0.5' ? o : undefined;
      },
      30_000,
      'iceberg partially filled',
    );
    expect(mine).toMatchObject({ status: 'partially_filled', remainingQuantity: '0.5', displayQuantity: '0.2' });
    await eventually(
      async () => (await watcher.book('ETH-USD')).asks[0]?.[1] === '0.1',
      20_000,
      'the book shows the rest of the current slice',
    );
    const trades = await eventually(async () => {
      const tr = await watcher.trades('ETH-USD');
      return tr.length === 3 ? tr : undefined;
    });
    expect(trades.map((x) => x.quantity).sort()).toEqual(['0.1', '0.2', '0.2']);

    // nothing public ever showed more than one slice at 2000, nor the order's total or remaining quantity
    const shown: string[] = [];
    for (const f of frames) {
      if (f.channel === 'book:ETH-USD' && f.data) {
        for (const [price, qty] of (f.data as OrderBook).asks) if (price === '2000.0') shown.push(qty);
      }
      if (f.channel === 'trades:ETH-USD' && f.data) shown.push((f.data as { quantity: string }).quantity);
    }
    expect(shown.length).toBeGreaterThan(0);
    for (const q of shown) expect(['0.1', '0.2']).toContain(q);
    const publicText = JSON.stringify([frames, await watcher.book('ETH-USD'), trades]);
    expect(publicText).not.toMatch(/"(1\.0|0\.5|0\.4)"/);
  } finally {
    stream.close();
  }
  await assertLedgerInvariants(t.db.pool);
}, 240_000);

it('a trade outside the band starts a call auction that uncrosses at the expected price', async () => {
  const mm = await trader(t, { BTC: '1.00000000' });
  const bob = await trader(t, { USD: '100000.00' });
  const alice = await trader(t, { BTC: '1.00000000' });

  // the reference: a first trade at 50000 (band ±1%: 49500–50500)
  await mm.placeOrder({ market: 'BTC-USD', side: 'sell', type: 'limit', price: '50000', quantity: '0.1' });
  await bob.placeOrder({ market: 'BTC-USD', side: 'buy', type: 'limit', price: '50000', quantity: '0.1' });
  await eventually(async () => (await bob.trades('BTC-USD')).length === 1, 30_000, 'reference trade');
  await mm.placeOrder({ market: 'BTC-USD', side: 'sell', type: 'limit', price: '51000', quantity: '0.5' });
  await eventually(async () => (await bob.book('BTC-USD')).asks.length === 1, 20_000, 'ask at 51000');

  // bob's buy would print at 51000 (2% away): no trade, the market goes into a call auction
  const big = await bob.placeOrder({
    market: 'BTC-USD',
    side: 'buy',
    type: 'limit',
    price: '51000',
    quantity: '0.3',
  });
  // alice's sell at 50500 is collected, not matched (the book crosses)
  const collected = await alice.placeOrder({
    market: 'BTC-USD',
    side: 'sell',
    type: 'limit',
    price: '50500',
    quantity: '0.2',
  });
  const auction = await eventually(
    async () => {
      const b = await bob.book('BTC-USD');
      return b.phase === 'auction' && b.asks.length === 2 ? b : undefined;
    },
    8_000,
    'auction phase with the collected order',
  );
  // bids 51000 x0.3 against asks 50500 x0.2 and 51000 x0.5: 0.3 executes at 51000, only 0.2 would at 50500
  expect(auction.auction).toEqual({ referencePrice: '50000', indicativePrice: '51000', indicativeQuantity: '0.30' });
  expect(auction.bids).toEqual([['51000', '0.30']]);
  expect((await bob.trades('BTC-USD')).length).toBe(1);

  // the engine host ends the auction (journaled end_auction): everything prints at 51000
  const filled = await orderReaches(bob, big.id, 'filled', 'auction uncrossed', 60_000);
  expect(filled).toMatchObject({ filledQuantity: '0.30', filledNotional: '15300.00' });
  const trades = await bob.trades('BTC-USD');
  expect(
    trades
      .filter((x) => x.price === '51000')
      .map((x) => x.quantity)
      .sort(),
  ).toEqual(['0.10', '0.20']);
  // alice sold 0.2 at 51000 (better than her 50500 limit) as the later order (taker, 20 bps on 10200.00)
  await eventually(async () => (await balance(alice, 'USD')).total === '10179.60', 30_000, 'alice paid');
  expect(await alice.getOrder(collected.id)).toMatchObject({ status: 'filled', filledNotional: '10200.00' });
  await eventually(async () => (await bob.book('BTC-USD')).phase === 'continuous', 20_000, 'continuous again');
  expect((await bob.book('BTC-USD')).asks).toEqual([['51000', '0.40']]);
  await assertLedgerInvariants(t.db.pool);
}, 240_000);
