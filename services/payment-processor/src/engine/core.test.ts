import { loadCatalog } from '@exchange/contracts/markets';
import { AmendOrderV1, PlaceOrderV1 } from '@exchange/contracts/trading';
import { generateCommands, orderId, userId } from '../testing/commands.ts';
import { canonical, referenceRun } from '../testing/reference.ts';
import { MarketCore, type AmendPayload, type JournalCommand, type PlacePayload } from './core.ts';
import { messagesFor } from './messages.ts';

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
});
