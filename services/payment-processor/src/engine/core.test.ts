import { loadCatalog, Market } from '@exchange/contracts/markets';
import { AmendOrderV1, PlaceOrderV1 } from '@exchange/contracts/trading';
import { generateCommands, orderId, userId } from '../testing/commands.ts';
import { canonical, referenceRun } from '../testing/reference.ts';
import { MarketCore, type AmendPayload, type JournalCommand, type PlacePayload } from './core.ts';
import { bookSnapshotMessage, messagesFor } from './messages.ts';

const market = loadCatalog().market('BTC-USD')!;
const AT = '2026-01-01T00:00:00.000Z';

function place(i: number, u: number, p: Partial<PlacePayload>): JournalCommand {
  const order = PlaceOrderV1.create(
    {
      orderId: orderId(99, i),
      userId: userId(99, u),
      market: 'BTC-USD',
      side: 'buy',
      type: 'limit',
      priceTicks: '30000',
      quantityLots: '10',
      timeInForce: 'GTC',
      postOnly: false,
      holdAmount: '0',
      acceptedAt: AT,
      ...p,
    },
    { producer: 'test' },
  );
  return { kind: 'place', messageId: order.id, order: order.payload };
}

function amend(i: number, p: Partial<AmendPayload> & { orderId: string; userId: string }): JournalCommand {
  const m = AmendOrderV1.create(
    { amendId: orderId(98, i), market: 'BTC-USD', requestedAt: AT, ...p },
    { producer: 'test', id: orderId(97, i) },
  );
  return { kind: 'amend', messageId: m.id, amend: m.payload };
}

describe('MarketCore', () => {
  it('derives fills with Market.fillAmounts, cumulative order updates and releases for finished orders', () => {
    const core = new MarketCore(market);
    const a = core.apply(place(1, 1, { side: 'sell', priceTicks: '30000', quantityLots: '5' }));
    expect(a.orders).toEqual([expect.objectContaining({ status: 'new', remainingLots: 5, filledLots: 0 })]);
    expect(a.finished).toEqual([]);
    core.apply(place(2, 2, { side: 'sell', priceTicks: '30002', quantityLots: '5' }));
    const r = core.apply(place(3, 3, { side: 'buy', priceTicks: '30005', quantityLots: '8' }));
    expect(r.seq).toBe(3);
    expect(r.fills.map((f) => [f.priceTicks, f.lots])).toEqual([
      [30000, 5],
      [30002, 3],
    ]);
    for (const f of r.fills) {
      const want = market.fillAmounts(BigInt(f.priceTicks), BigInt(f.lots), 'buy');
      expect({ b: f.baseAmount, q: f.quoteAmount, bf: f.buyerFee, sf: f.sellerFee }).toEqual({
        b: want.baseAmount,
        q: want.quoteAmount,
        bf: want.buyerFee,
        sf: want.sellerFee,
      });
    }
    // $30000 × 0.05 BTC = $1500.00 = 150000 cents; 0.05 BTC = 5_000_000 sat
    expect(r.fills[0]!.quoteAmount).toBe(150_000n);
    expect(r.fills[0]!.baseAmount).toBe(5_000_000n);
    const byId = new Map(r.orders.map((o) => [o.orderId, o]));
    expect(byId.get(orderId(99, 3))).toMatchObject({ status: 'filled', filledLots: 8, remainingLots: 0 });
    expect(byId.get(orderId(99, 3))!.filledNotional).toBe(150_000n + 30002n * 3n);
    expect(byId.get(orderId(99, 1))).toMatchObject({ status: 'filled', filledLots: 5 });
    expect(byId.get(orderId(99, 2))).toMatchObject({ status: 'partially_filled', filledLots: 3, remainingLots: 2 });
    expect(r.finished.map((o) => o.orderId).sort()).toEqual([orderId(99, 1), orderId(99, 3)].sort());

    // the partially filled maker keeps its cumulative totals across commands
    const r2 = core.apply(place(4, 4, { side: 'buy', priceTicks: '30002', quantityLots: '2' }));
    expect(r2.orders.find((o) => o.orderId === orderId(99, 2))).toMatchObject({
      status: 'filled',
      filledLots: 5,
      filledNotional: 30002n * 5n,
    });

    // outbox order: trade-executed, settle-trade per fill, then updates, then releases after every settle
    const msgs = messagesFor(market, place(3, 3, {}), r, AT).map((m) => m.message.type);
    expect(msgs).toEqual([
      'engine.trade-executed',
      'wallet.settle-trade',
      'engine.trade-executed',
      'wallet.settle-trade',
      'engine.order-updated',
      'engine.order-updated',
      'engine.order-updated',
      'wallet.release-hold',
      'wallet.release-hold',
    ]);
  });

  it('rejects, cancels and pre-cancels with reasons and releases', () => {
    const core = new MarketCore(market);
    const rest = core.apply(place(1, 1, { side: 'sell', priceTicks: '30000' }));
    expect(rest.finished).toEqual([]);
    const po = core.apply(place(2, 2, { side: 'buy', priceTicks: '30000', postOnly: true }));
    expect(po.finished).toEqual([expect.objectContaining({ status: 'rejected', reason: 'POST_ONLY_WOULD_TAKE' })]);
    const cancel = core.apply({
      kind: 'cancel',
      messageId: 'm',
      cancel: { orderId: orderId(99, 1), userId: userId(99, 1), market: 'BTC-USD', reason: 'admin', requestedAt: AT },
    });
    expect(cancel.finished).toEqual([expect.objectContaining({ status: 'cancelled', reason: 'admin' })]);
    const unknown = core.apply({
      kind: 'cancel',
      messageId: 'm2',
      cancel: { orderId: orderId(99, 1), userId: userId(99, 1), market: 'BTC-USD', reason: 'user', requestedAt: AT },
    });
    expect(unknown.orders).toEqual([]);
    expect(unknown.events).toEqual([expect.objectContaining({ type: 'rejected', reason: 'UNKNOWN_ORDER' })]);
    const pre = core.apply({ ...place(3, 3, {}), preCancelled: true } as JournalCommand);
    expect(pre.events).toEqual([]);
    expect(pre.finished).toEqual([expect.objectContaining({ status: 'cancelled', reason: 'cancelled_before_place' })]);
    expect(core.orderBook.orderCount).toBe(0);
  });

  it('applies the absolute protection price of market orders', () => {
    const core = new MarketCore(market);
    core.apply(place(1, 1, { side: 'sell', priceTicks: '30000', quantityLots: '5' }));
    core.apply(place(2, 1, { side: 'sell', priceTicks: '30010', quantityLots: '5' }));
    // protection 30005: takes the 30000 level only
    const m = core.apply(
      place(3, 2, {
        type: 'market',
        priceTicks: undefined,
        quantityLots: '10',
        timeInForce: 'IOC',
        protectionPriceTicks: '30005',
      }),
    );
    expect(m.fills.map((f) => f.priceTicks)).toEqual([30000]);
    expect(m.finished.find((o) => o.orderId === orderId(99, 1))).toMatchObject({ status: 'filled' });
    expect(m.orders.find((o) => o.orderId === orderId(99, 3))).toMatchObject({
      status: 'cancelled',
      reason: 'protection',
      filledLots: 5,
    });
    // best ask already beyond protection: nothing trades
    const n = core.apply(
      place(4, 2, {
        type: 'market',
        priceTicks: undefined,
        quantityLots: '1',
        timeInForce: 'IOC',
        protectionPriceTicks: '30005',
      }),
    );
    expect(n.fills).toEqual([]);
    expect(n.finished).toEqual([expect.objectContaining({ status: 'cancelled', reason: 'protection' })]);
    // quote budget caps a market buy
    const b = core.apply(
      place(5, 3, {
        type: 'market',
        priceTicks: undefined,
        quantityLots: '5',
        timeInForce: 'IOC',
        quoteBudgetTickLots: String(30010 * 2),
      }),
    );
    expect(b.fills.map((f) => f.lots)).toEqual([2]);
  });

  it('amends: total quantity semantics, exact hold delta, top-up bound, priority, messages', () => {
    const core = new MarketCore(market);
    const o1 = orderId(99, 1);
    const u1 = userId(99, 1);
    core.apply(place(1, 1, { side: 'buy', priceTicks: '30000', quantityLots: '10' }));
    core.apply(place(2, 2, { side: 'buy', priceTicks: '30000', quantityLots: '4' }));
    // 3 lots of o1 fill (it is first in time)
    core.apply(place(3, 3, { side: 'sell', priceTicks: '30000', quantityLots: '3' }));
    expect(core.orderBook.getOrder(o1)).toMatchObject({ filled: 3, remaining: 7 });

    // total 8 → open 5: keeps priority; hold shrinks by 2 lots × $300.00 (notional of 30000 ticks × 1 lot = 30000 cents)
    const down = core.apply(amend(1, { orderId: o1, userId: u1, quantityLots: '8' }));
    expect(down.amend).toMatchObject({ ok: true, priorityKept: true, quantityLots: 8, remainingLots: 5 });
    expect(down.amend!.holdDelta).toBe(-market.notional(30000n, 2n));
    expect(down.amend!.holdAsset).toBe('USD');
    expect(
      messagesFor(market, down.events.length ? amend(1, { orderId: o1, userId: u1 }) : place(1, 1, {}), down, AT).map(
        (m) => m.message.type,
      ),
    ).toEqual(['engine.order-amended', 'wallet.adjust-hold']);
    expect([...core.orderBook.orders('buy')].map((o) => o.id)).toEqual([o1, orderId(99, 2)]);

    // a price increase needs more funds than the top-up covers: rejected before the book, nothing changes
    const need = market.notional(30010n, 5n) - market.notional(30000n, 5n);
    const short = core.apply(
      amend(2, {
        orderId: o1,
        userId: u1,
        priceTicks: '30010',
        topUpHoldId: orderId(98, 2),
        topUpAmount: String(need - 1n),
      }),
    );
    expect(short.amend).toMatchObject({ ok: false, reason: 'AMEND_HOLD_EXCEEDED', holdDelta: 0n });
    expect(short.events).toEqual([]);
    const shortMsgs = messagesFor(market, amend(2, { orderId: o1, userId: u1 }), short, AT);
    expect(shortMsgs.map((m) => m.message.type)).toEqual(['engine.order-amended', 'wallet.adjust-hold']);
    expect(shortMsgs[1]!.message.payload).toMatchObject({ delta: '0', topUpHoldId: orderId(98, 2) });
    expect(core.orderBook.getOrder(o1)).toMatchObject({ price: 30000, remaining: 5 });

    // with enough top-up: moves, loses priority, hold grows by exactly `need`
    const up = core.apply(
      amend(3, {
        orderId: o1,
        userId: u1,
        priceTicks: '30010',
        topUpHoldId: orderId(98, 3),
        topUpAmount: String(need),
      }),
    );
    expect(up.amend).toMatchObject({ ok: true, priorityKept: false, priceTicks: 30010, quantityLots: 8 });
    expect(up.amend!.holdDelta).toBe(need);

    // total at or below what is filled: INVALID_QUANTITY from the engine; another user's order: UNKNOWN_ORDER
    expect(core.apply(amend(4, { orderId: o1, userId: u1, quantityLots: '3' })).amend).toMatchObject({
      ok: false,
      reason: 'INVALID_QUANTITY',
    });
    expect(core.apply(amend(5, { orderId: o1, userId: userId(99, 2), quantityLots: '6' })).amend).toMatchObject({
      ok: false,
      reason: 'UNKNOWN_ORDER',
    });
    // a sell's hold is base units
    core.apply(place(6, 4, { side: 'sell', priceTicks: '30100', quantityLots: '6' }));
    const sell = core.apply(amend(6, { orderId: orderId(99, 6), userId: userId(99, 4), quantityLots: '4' }));
    expect(sell.amend).toMatchObject({ ok: true, holdAsset: 'BTC', holdDelta: -market.baseUnits(2n) });
  });

  it('stop orders: wait, trigger on a later trade, report stopTriggered and settle like any order', () => {
    const core = new MarketCore(market);
    core.apply(place(1, 1, { side: 'buy', priceTicks: '30000', quantityLots: '5' }));
    core.apply(place(2, 2, { side: 'buy', priceTicks: '29990', quantityLots: '5' }));
    // a stop-loss sell at 29995 with protection 29900 (an IOC limit at 29900 once triggered)
    const stop = core.apply(
      place(3, 3, {
        side: 'sell',
        type: 'market',
        priceTicks: undefined,
        quantityLots: '8',
        timeInForce: 'IOC',
        stopPriceTicks: '29995',
        protectionPriceTicks: '29900',
      }),
    );
    expect(stop.orders).toEqual([expect.objectContaining({ status: 'new', remainingLots: 8 })]);
    expect(stop.finished).toEqual([]);
    // another user's sell trades at 30000: no trigger (30000 > 29995)
    const t1 = core.apply(place(4, 4, { side: 'sell', priceTicks: '30000', quantityLots: '2' }));
    expect(t1.events.some((e) => e.type === 'triggered')).toBe(false);
    // a sell at 29990 trades 3 @ 30000 then 1 @ 29990: last 29990 <= 29995 triggers the stop in the same command
    const t2 = core.apply(place(5, 4, { side: 'sell', priceTicks: '29990', quantityLots: '4' }));
    expect(t2.events.map((e) => e.type)).toEqual(['accepted', 'trade', 'trade', 'triggered', 'trade', 'cancelled']);
    const st = t2.orders.find((o) => o.orderId === orderId(99, 3))!;
    expect(st).toMatchObject({ status: 'cancelled', filledLots: 4, stopTriggered: true, reason: 'ioc_remainder' });
    const msgs = messagesFor(market, place(5, 4, {}), t2, AT);
    expect(
      msgs.find(
        (m) =>
          m.message.type === 'engine.order-updated' &&
          (m.message.payload as { orderId: string }).orderId === orderId(99, 3),
      )!.message.payload,
    ).toMatchObject({ stopTriggered: true, status: 'cancelled', filledLots: '4' });
    expect(t2.finished.map((o) => o.orderId)).toContain(orderId(99, 3));
    // a waiting stop can be cancelled
    core.apply(place(6, 3, { side: 'buy', priceTicks: '30100', quantityLots: '1', stopPriceTicks: '30050' }));
    const c = core.apply({
      kind: 'cancel',
      messageId: 'c6',
      cancel: { orderId: orderId(99, 6), userId: userId(99, 3), market: 'BTC-USD', reason: 'user', requestedAt: AT },
    });
    expect(c.finished).toEqual([expect.objectContaining({ status: 'cancelled', reason: 'user' })]);
  });

  it('is deterministic with amends and stops too: snapshot + replay equals an uninterrupted run', () => {
    const envelopes = generateCommands(1500, { seed: 8, amends: true, stops: true });
    const ref = referenceRun(market, envelopes);
    const amends = ref.results.filter((r) => r.amend);
    expect(amends.filter((r) => r.amend!.ok && r.amend!.priorityKept).length).toBeGreaterThan(5);
    expect(amends.filter((r) => r.amend!.ok && !r.amend!.priorityKept).length).toBeGreaterThan(5);
    expect(amends.filter((r) => r.amend!.reason === 'AMEND_HOLD_EXCEEDED').length).toBeGreaterThan(0);
    const triggers = ref.results.flatMap((r) => r.events.filter((e) => e.type === 'triggered'));
    expect(triggers.length).toBeGreaterThan(10);
    for (const cut of [1, 400, 901, 1333]) {
      const first = new MarketCore(market);
      for (const c of ref.commands.slice(0, cut)) first.apply(c);
      const resumed = new MarketCore(market, JSON.parse(JSON.stringify(first.snapshot())));
      const rest = ref.commands.slice(cut).map((c) => resumed.apply(c));
      expect(canonical(rest.map((r) => r.events))).toBe(canonical(ref.results.slice(cut).map((r) => r.events)));
      expect(rest.map((r) => r.amend)).toEqual(ref.results.slice(cut).map((r) => r.amend));
      expect(canonical(resumed.snapshot())).toBe(canonical(ref.core.snapshot()));
    }
  });

  it('is deterministic: restoring a snapshot anywhere and continuing equals an uninterrupted run', () => {
    const envelopes = generateCommands(1500, { seed: 7 });
    const ref = referenceRun(market, envelopes);
    expect(ref.results.reduce((n, r) => n + r.fills.length, 0)).toBeGreaterThan(100);
    for (const cut of [1, 250, 777, 1200]) {
      const first = new MarketCore(market);
      for (const c of ref.commands.slice(0, cut)) first.apply(c);
      const snap = JSON.parse(JSON.stringify(first.snapshot()));
      const resumed = new MarketCore(market, snap);
      const rest = ref.commands.slice(cut).map((c) => resumed.apply(c));
      expect(canonical(rest.map((r) => r.events))).toBe(canonical(ref.results.slice(cut).map((r) => r.events)));
      expect(rest.map((r) => r.orders)).toEqual(ref.results.slice(cut).map((r) => r.orders));
      expect(canonical(resumed.snapshot())).toBe(canonical(ref.core.snapshot()));
    }
    // message ids are derived, so a second run gives the same messages
    const again = referenceRun(market, envelopes);
    expect(again.messages.map((m) => m.message)).toEqual(ref.messages.map((m) => m.message));
  });

  it('charges each order the tier rates its place command carried, rebates clamped, and replays them exactly', () => {
    const tiers = [
      { makerFeeBps: 10, takerFeeBps: 20 },
      { makerFeeBps: -1, takerFeeBps: 12 },
      { makerFeeBps: 4, takerFeeBps: 15 },
    ];
    const core = new MarketCore(market);
    // user 1 rests in the rebate tier, user 2 takes at 15 bps; user 3 carries no rates (the market's base rates)
    core.apply(place(1, 1, { side: 'sell', priceTicks: '30000', quantityLots: '5', ...tiers[1] }));
    core.apply(place(2, 3, { side: 'sell', priceTicks: '30001', quantityLots: '5' }));
    const r = core.apply(place(3, 2, { side: 'buy', priceTicks: '30001', quantityLots: '12', ...tiers[2] }));
    // 0.05 BTC at 30000 = 150_000 cents: buyer (taker, 15 bps of 5_000_000 sats) 7_500; seller rebate 1 bp = 15 cents
    expect(r.fills.map((f) => [f.buyerFee, f.sellerFee])).toEqual([
      [7_500n, -15n],
      // 0.05 BTC at 30001 = 150_005 cents: buyer 7_500; the base-rate maker 10 bps = 150.005 → 151
      [7_500n, 151n],
    ]);
    // an order's rates survive a snapshot (here the buyer's, still resting: it takes at 15 bps, rests at 4 bps)
    const restored = new MarketCore(market, JSON.parse(JSON.stringify(core.snapshot())));
    expect(restored.snapshot().feeRates).toEqual([[orderId(99, 3), 4, 15]]);
    const t = restored.apply(place(4, 1, { side: 'sell', priceTicks: '30001', quantityLots: '2', ...tiers[1] }));
    // 0.02 BTC at 30001 = 60_002 cents: the resting buyer is now the maker at 4 bps of 2_000_000 sats = 800; the
    // seller takes at 12 bps of 60_002 cents = 72.0024 → 73
    expect(t.fills.map((f) => [f.buyerFee, f.sellerFee])).toEqual([[800n, 73n]]);
    // finished orders drop their rates
    expect(restored.snapshot().feeRates).toBeUndefined();

    // with every user in some tier, snapshot + replay anywhere gives the same fills (fees included) and messages
    const envelopes = generateCommands(1200, { seed: 9, amends: true, stops: true, feeRates: tiers });
    const ref = referenceRun(market, envelopes);
    const fills = ref.results.flatMap((x) => x.fills);
    expect(fills.filter((f) => f.buyerFee < 0n || f.sellerFee < 0n).length).toBeGreaterThan(10);
    for (const f of fills) {
      // no trade pays out more rebate than its taker pays (valued at the trade price)
      if (f.buyerFee < 0n) expect(-f.buyerFee * f.quoteAmount).toBeLessThanOrEqual(f.sellerFee * f.baseAmount);
      if (f.sellerFee < 0n) expect(-f.sellerFee * f.baseAmount).toBeLessThanOrEqual(f.buyerFee * f.quoteAmount);
    }
    for (const cut of [1, 333, 800]) {
      const first = new MarketCore(market);
      for (const c of ref.commands.slice(0, cut)) first.apply(c);
      const resumed = new MarketCore(market, JSON.parse(JSON.stringify(first.snapshot())));
      const rest = ref.commands.slice(cut).map((c) => resumed.apply(c));
      expect(rest.map((x) => x.fills)).toEqual(ref.results.slice(cut).map((x) => x.fills));
      expect(canonical(resumed.snapshot())).toBe(canonical(ref.core.snapshot()));
    }
    const again = referenceRun(market, envelopes);
    expect(again.messages.map((m) => m.message)).toEqual(ref.messages.map((m) => m.message));
  });
  // The inboxes, trades and settlements are keyed by these ids: ascending ones land on the leaf the last insert touched
  it("gives one epoch's trade and message ids in ascending order, and another epoch other ids", () => {
    const run = (epoch: string) => {
      const core = new MarketCore(market);
      const trades: string[] = [];
      const messages: string[] = [];
      for (let i = 1; i <= 60; i++) {
        const side = i % 2 ? 'sell' : 'buy';
        const cmd = { ...place(i, i % 5, { side, quantityLots: '1' }), epoch };
        const r = core.apply(cmd);
        trades.push(...r.fills.map((f) => f.tradeId));
        messages.push(...messagesFor(market, cmd, r, AT).map((m) => m.message.id));
      }
      return { trades, messages };
    };
    const a = run('epoch-a');
    expect(a.trades).toHaveLength(30);
    for (const ids of [a.trades, a.messages]) expect(ids).toEqual([...new Set(ids)].sort());
    const b = run('epoch-b');
    expect(b.trades.filter((id) => a.trades.includes(id))).toEqual([]);
    expect(b.messages.filter((id) => a.messages.includes(id))).toEqual([]);
  });
});

describe('MarketCore: icebergs and the volatility guard', () => {
  const assets = new Map([
    [market.base.symbol, market.base],
    [market.quote.symbol, market.quote],
  ]);
  const guarded = new Market({ ...market.config, volatilityGuard: { bandBps: 100, auctionSeconds: 5 } }, assets);

  it('publishes only the shown slice of an iceberg; fills and order updates count all of it', () => {
    const core = new MarketCore(market);
    core.apply(place(1, 1, { side: 'sell', priceTicks: '30000', quantityLots: '10', displayQuantityLots: '2' }));
    const book = bookSnapshotMessage(market, core.orderBook, 10, AT, orderId(96, 1)).message.payload as {
      asks: [string, string][];
    };
    expect(book.asks).toEqual([['30000', '0.02']]);
    const r = core.apply(place(2, 2, { side: 'buy', priceTicks: '30000', quantityLots: '5' }));
    expect(r.fills.map((f) => f.lots)).toEqual([2, 2, 1]);
    const maker = r.orders.find((o) => o.orderId === orderId(99, 1))!;
    expect([maker.status, maker.filledLots, maker.remainingLots]).toEqual(['partially_filled', 5, 5]);
    // the public trade messages carry price and quantity per fill, nothing about the hidden rest
    const trades = messagesFor(market, place(2, 2, {}), r, AT).filter(
      (m) => m.message.type === 'engine.trade-executed',
    );
    for (const t of trades) expect(JSON.stringify(t.message.payload)).not.toContain('"remaining');
  });

  it('an auction started by the guard ends by the journaled end_auction command, identically on replay', () => {
    const core = new MarketCore(guarded);
    const cmds: JournalCommand[] = [
      place(1, 1, { side: 'sell', priceTicks: '30000', quantityLots: '1' }),
      place(2, 2, { side: 'buy', priceTicks: '30000', quantityLots: '1' }), // last 30000, band ±300
      place(3, 1, { side: 'sell', priceTicks: '31000', quantityLots: '4' }),
      place(4, 2, { side: 'buy', priceTicks: '31000', quantityLots: '3' }), // would print at 31000: auction
      place(5, 3, { side: 'sell', priceTicks: '30500', quantityLots: '2' }), // collected
    ];
    const results = cmds.map((c) => core.apply(c));
    expect(results[3]!.events.map((e) => e.type)).toEqual(['accepted', 'auction_started']);
    expect(core.orderBook.phase).toBe('auction');
    const book = bookSnapshotMessage(guarded, core.orderBook, 10, AT, orderId(96, 2)).message.payload;
    // bids 31000 x3 against asks 30500 x2, 31000 x4: 3 lots trade at 31000, only 2 would at 30500
    expect(book).toMatchObject({
      auction: { referencePrice: '30000', indicativePrice: '31000', indicativeQuantity: '0.03' },
    });
    const startSeq = core.orderBook.auctionState()!.startSeq;
    const snap = JSON.parse(JSON.stringify(core.snapshot()));

    const stale = core.apply({ kind: 'end_auction', messageId: 'x', startSeq: startSeq + 1 });
    expect(stale.events).toEqual([]); // a timer for another auction does nothing
    const end = core.apply({ kind: 'end_auction', messageId: 'y', startSeq });
    expect(end.fills.map((f) => [f.priceTicks, f.lots])).toEqual([
      [31000, 2],
      [31000, 1],
    ]);
    expect(end.events.at(-1)).toMatchObject({ type: 'auction_ended', price: 31000, volume: 3 });
    expect(core.orderBook.phase).toBe('continuous');
    const buyer = end.orders.find((o) => o.orderId === orderId(99, 4))!;
    expect([buyer.status, buyer.filledLots]).toEqual(['filled', 3]);

    const replayed = new MarketCore(guarded, snap);
    replayed.apply({ kind: 'end_auction', messageId: 'x', startSeq: startSeq + 1 });
    const again = replayed.apply({ kind: 'end_auction', messageId: 'y', startSeq });
    expect(JSON.stringify(again.events)).toBe(JSON.stringify(end.events));
    expect(JSON.stringify(replayed.snapshot())).toBe(JSON.stringify(core.snapshot()));
  });

  it('is deterministic with icebergs, auctions, amends and stops: snapshot + replay equals an uninterrupted run', () => {
    // a band of 15 ticks around ~30000, so that the generated orders (mid ± 25) start auctions often; the host's
    // end_auction commands interleaved where a timer could have fired: after every 5th command
    const guarded = new Market({ ...market.config, volatilityGuard: { bandBps: 5, auctionSeconds: 5 } }, assets);
    const envelopes = generateCommands(1500, { seed: 9, amends: true, stops: true, icebergs: true });
    const plain = referenceRun(guarded, envelopes).commands; // dedupe and journal form of the envelopes
    const straight = new MarketCore(guarded);
    const journal: JournalCommand[] = [];
    const results: ReturnType<MarketCore['apply']>[] = [];
    plain.forEach((c, i) => {
      journal.push(c);
      results.push(straight.apply(c));
      const a = straight.orderBook.auctionState();
      if (a && i % 5 === 4) {
        const end: JournalCommand = { kind: 'end_auction', messageId: `end:${i}`, startSeq: a.startSeq };
        journal.push(end);
        results.push(straight.apply(end));
      }
    });
    const types = results.flatMap((r) => r.events.map((e) => e.type));
    const count = (t: string) => types.filter((x) => x === t).length;
    expect([count('refilled') > 20, count('auction_started') > 5, count('auction_ended') > 5]).toEqual([
      true,
      true,
      true,
    ]);
    for (const cut of [1, 333, 808, 1250]) {
      const first = new MarketCore(guarded);
      for (const c of journal.slice(0, cut)) first.apply(c);
      const resumed = new MarketCore(guarded, JSON.parse(JSON.stringify(first.snapshot())));
      const rest = journal.slice(cut).map((c) => resumed.apply(c));
      expect(canonical(rest.map((r) => r.events))).toBe(canonical(results.slice(cut).map((r) => r.events)));
      expect(rest.map((r) => r.orders)).toEqual(results.slice(cut).map((r) => r.orders));
      expect(canonical(resumed.snapshot())).toBe(canonical(straight.snapshot()));
    }
  });
});
