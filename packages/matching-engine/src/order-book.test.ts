import { OrderBook } from './index.ts';
import type { BookEvent, PlaceCommand, PlaceResult, StpMode } from './index.ts';

let n = 0;
function lim(side: 'buy' | 'sell', price: number, quantity: number, extra: Partial<PlaceCommand> = {}): PlaceCommand {
  return { id: `o${++n}`, account: 'X', side, type: 'limit', price, quantity, timeInForce: 'GTC', ...extra };
}
function mkt(side: 'buy' | 'sell', quantity: number, extra: Partial<PlaceCommand> = {}): PlaceCommand {
  return { id: `m${++n}`, account: 'T', side, type: 'market', quantity, timeInForce: 'IOC', ...extra };
}
const types = (events: BookEvent[]) => events.map((e) => e.type);
const fillsOf = (r: PlaceResult) => r.fills.map((f) => [f.makerOrderId, f.price, f.quantity]);

/** asks at 101 x5 (A), 101 x5 (B), 102 x5 (C); bids at 99 x5 (D), 98 x5 (E) */
function seeded(options: { defaultStp?: StpMode } = {}): OrderBook {
  const b = new OrderBook({ market: 'BTC-USD', ...options });
  b.place({ ...lim('sell', 101, 5), id: 'a1', account: 'A' });
  b.place({ ...lim('sell', 101, 5), id: 'b1', account: 'B' });
  b.place({ ...lim('sell', 102, 5), id: 'c1', account: 'C' });
  b.place({ ...lim('buy', 99, 5), id: 'd1', account: 'D' });
  b.place({ ...lim('buy', 98, 5), id: 'e1', account: 'E' });
  return b;
}

describe('construction and queries', () => {
  it('works with only a market and exposes best prices, depth, lookup and iteration', () => {
    const b = seeded();
    expect(b.defaultStp).toBe('cancel_newest');
    expect(b.bestBid()).toBe(99);
    expect(b.bestAsk()).toBe(101);
    expect(b.orderCount).toBe(5);
    expect(b.depth(1)).toEqual({
      bids: [{ price: 99, quantity: 5, orders: 1 }],
      asks: [{ price: 101, quantity: 10, orders: 2 }],
    });
    expect(b.depth().asks).toHaveLength(2);
    expect(b.getOrder('b1')).toEqual({
      id: 'b1',
      account: 'B',
      side: 'sell',
      price: 101,
      quantity: 5,
      remaining: 5,
      filled: 0,
      timeInForce: 'GTC',
      postOnly: false,
      stp: 'cancel_newest',
      prioritySeq: 2,
    });
    expect(b.getOrder('nope')).toBeUndefined();
    expect([...b.orders()].map((o) => o.id)).toEqual(['d1', 'e1', 'a1', 'b1', 'c1']);
    expect([...b.orders('sell')].map((o) => o.id)).toEqual(['a1', 'b1', 'c1']);
    expect(b.seq).toBe(5);
  });

  it('throws only for programmer errors', () => {
    expect(() => new OrderBook({ market: '' })).toThrow(TypeError);
    expect(() => new OrderBook({ market: 'X', defaultStp: 'bogus' as StpMode })).toThrow(TypeError);
    expect(() => new OrderBook({ market: 'X' }).place(null as unknown as PlaceCommand)).toThrow(TypeError);
  });
});

describe('matching and time in force', () => {
  it('fills in price-time priority and rests the remainder of a GTC limit', () => {
    const b = seeded();
    const r = b.place({ ...lim('buy', 102, 12), account: 'T' });
    expect(fillsOf(r)).toEqual([
      ['a1', 101, 5],
      ['b1', 101, 5],
      ['c1', 102, 2],
    ]);
    expect(r.status).toBe('filled');
    expect(r.fills[0]).toMatchObject({ takerAccount: 'T', makerAccount: 'A', takerSide: 'buy', makerRemaining: 0 });
    const r2 = b.place({ ...lim('buy', 103, 10), account: 'T' });
    expect(r2).toMatchObject({ status: 'partially_filled', filledQuantity: 3, remainingQuantity: 7 });
    expect(b.bestBid()).toBe(103);
    expect(b.getOrder(r2.orderId!)).toMatchObject({ remaining: 7, filled: 3, quantity: 10 });
  });

  it('IOC cancels the remainder with reason ioc_remainder', () => {
    const b = seeded();
    const r = b.place({ ...lim('buy', 101, 12, { timeInForce: 'IOC' }), account: 'T' });
    expect(r).toMatchObject({
      status: 'cancelled',
      filledQuantity: 10,
      cancelledQuantity: 2,
      cancelReason: 'ioc_remainder',
    });
    expect(types(r.events)).toEqual(['accepted', 'trade', 'trade', 'cancelled']);
    expect(b.bestBid()).toBe(99);
    const r2 = b.place({ ...lim('buy', 100, 1, { timeInForce: 'IOC' }), account: 'T' });
    expect(r2).toMatchObject({ status: 'cancelled', cancelledQuantity: 1, cancelReason: 'ioc_remainder' });
  });

  it('FOK fills completely or is rejected without touching the book', () => {
    const b = seeded();
    const before = JSON.stringify(b.snapshot().asks);
    const r = b.place({ ...lim('buy', 101, 11, { timeInForce: 'FOK' }), account: 'T' });
    expect(r).toMatchObject({ status: 'rejected', rejectReason: 'FOK_NOT_FILLABLE', fills: [] });
    expect(r.events[0]).toMatchObject({ type: 'rejected', reason: 'FOK_NOT_FILLABLE', command: 'place' });
    expect(JSON.stringify(b.snapshot().asks)).toBe(before);
    const ok = b.place({ ...lim('buy', 102, 15, { timeInForce: 'FOK' }), account: 'T' });
    expect(ok).toMatchObject({ status: 'filled', filledQuantity: 15 });
    expect(b.bestAsk()).toBeNull();
  });

  it('FOK does not count own orders that STP would not trade with (except cancel_oldest, which removes them)', () => {
    const b = seeded();
    expect(b.place({ ...lim('buy', 102, 12, { timeInForce: 'FOK' }), account: 'A' }).rejectReason).toBe(
      'FOK_NOT_FILLABLE',
    );
    const r = b.place({ ...lim('buy', 102, 10, { timeInForce: 'FOK', stp: 'cancel_oldest' }), account: 'A' });
    expect(r.status).toBe('filled');
    expect(types(r.events)).toEqual(['accepted', 'cancelled', 'trade', 'trade']);
    expect(r.events[1]).toMatchObject({ orderId: 'a1', reason: 'stp' });
  });

  it('post-only rests when it does not cross and is rejected when it would take', () => {
    const b = seeded();
    expect(b.place(lim('buy', 100, 1, { postOnly: true })).status).toBe('new');
    const r = b.place(lim('buy', 101, 1, { postOnly: true }));
    expect(r).toMatchObject({ status: 'rejected', rejectReason: 'POST_ONLY_WOULD_TAKE' });
    expect(b.place(lim('sell', 100, 1, { postOnly: true })).rejectReason).toBe('POST_ONLY_WOULD_TAKE');
    expect(b.place(lim('buy', 100, 1, { postOnly: true, timeInForce: 'IOC' })).rejectReason).toBe('INVALID_POST_ONLY');
  });
});

describe('market orders and protection', () => {
  it('sweeps until filled or the side is empty, cancelling the rest (market_no_liquidity)', () => {
    const b = seeded();
    const r = b.place(mkt('buy', 20));
    expect(r).toMatchObject({
      status: 'cancelled',
      filledQuantity: 15,
      cancelledQuantity: 5,
      cancelReason: 'market_no_liquidity',
    });
    const empty = b.place(mkt('buy', 1));
    expect(types(empty.events)).toEqual(['accepted', 'cancelled']);
    expect(empty.cancelReason).toBe('market_no_liquidity');
    expect(b.place(mkt('sell', 6)).fills.map((f) => f.price)).toEqual([99, 98]);
  });

  it('maxSlippageTicks bounds the price relative to the best at arrival', () => {
    const b = seeded();
    const r = b.place(mkt('buy', 20, { maxSlippageTicks: 0 }));
    expect(r).toMatchObject({ filledQuantity: 10, cancelledQuantity: 10, cancelReason: 'protection' });
    expect(b.bestAsk()).toBe(102);
    const b2 = seeded();
    expect(b2.place(mkt('buy', 20, { maxSlippageTicks: 1 }))).toMatchObject({
      filledQuantity: 15,
      cancelReason: 'market_no_liquidity',
    });
  });

  it('quoteBudget caps the notional (price * quantity) and FOK respects it', () => {
    const b = seeded();
    // 5 @ 101 + 5 @ 101 = 1010, then floor(100 / 102) = 0 more
    const r = b.place(mkt('buy', 20, { quoteBudget: 1110 }));
    expect(fillsOf(r)).toEqual([
      ['a1', 101, 5],
      ['b1', 101, 5],
    ]);
    expect(r.cancelReason).toBe('protection');
    expect(b.place(mkt('buy', 3, { quoteBudget: 305, timeInForce: 'FOK' })).rejectReason).toBe('FOK_NOT_FILLABLE');
    expect(b.place(mkt('buy', 3, { quoteBudget: 306, timeInForce: 'FOK' })).status).toBe('filled');
    // partial level: 250 / 102 = 2 lots
    expect(b.place(mkt('buy', 5, { quoteBudget: 250 })).filledQuantity).toBe(0 + 0 + 2);
  });

  it('rejects protection on limit orders and a price or post-only on market orders', () => {
    const b = seeded();
    expect(b.place(lim('buy', 100, 1, { maxSlippageTicks: 1 })).rejectReason).toBe('INVALID_PROTECTION');
    expect(b.place(mkt('buy', 1, { quoteBudget: 0 })).rejectReason).toBe('INVALID_PROTECTION');
    expect(b.place(mkt('buy', 1, { maxSlippageTicks: -1 })).rejectReason).toBe('INVALID_PROTECTION');
    expect(b.place(mkt('buy', 1, { price: 100 })).rejectReason).toBe('INVALID_PRICE');
    expect(b.place(mkt('buy', 1, { postOnly: true })).rejectReason).toBe('INVALID_POST_ONLY');
  });
});

describe('self-trade prevention', () => {
  // resting ask s1 (account S, 5 @ 101) ahead of o1 (account O, 5 @ 101); taker of account S buys
  function book(): OrderBook {
    const b = new OrderBook({ market: 'M', defaultStp: 'none' });
    b.place({ ...lim('sell', 101, 5), id: 's1', account: 'S' });
    b.place({ ...lim('sell', 101, 5), id: 'o1', account: 'O' });
    return b;
  }
  const taker = (stp: StpMode, quantity: number) => ({ ...lim('buy', 101, quantity, { stp }), id: 't', account: 'S' });

  it('none: self-trades are allowed', () => {
    const r = book().place(taker('none', 6));
    expect(fillsOf(r)).toEqual([
      ['s1', 101, 5],
      ['o1', 101, 1],
    ]);
  });

  it('cancel_newest: the taker remainder is cancelled, the resting order stays', () => {
    const b = book();
    const r = b.place(taker('cancel_newest', 6));
    expect(r).toMatchObject({ status: 'cancelled', cancelReason: 'stp', cancelledQuantity: 6, fills: [] });
    expect(b.getOrder('s1')?.remaining).toBe(5);
  });

  it('cancel_oldest: the resting order is cancelled and the taker keeps matching', () => {
    const b = book();
    const r = b.place(taker('cancel_oldest', 6));
    expect(types(r.events)).toEqual(['accepted', 'cancelled', 'trade']);
    expect(r.events[1]).toMatchObject({ orderId: 's1', account: 'S', reason: 'stp', quantity: 5 });
    expect(r).toMatchObject({ status: 'partially_filled', filledQuantity: 5, remainingQuantity: 1 });
    expect(b.has('s1')).toBe(false);
  });

  it('cancel_both: both are cancelled', () => {
    const b = book();
    const r = b.place(taker('cancel_both', 6));
    expect(types(r.events)).toEqual(['accepted', 'cancelled', 'cancelled']);
    expect(r.events.slice(1).map((e) => (e as { orderId: string }).orderId)).toEqual(['s1', 't']);
    expect(r).toMatchObject({ status: 'cancelled', cancelReason: 'stp', cancelledQuantity: 6 });
    expect(b.has('s1')).toBe(false);
    expect(b.getOrder('o1')?.remaining).toBe(5);
  });

  it('decrement: larger taker is reduced by the smaller resting order, which is cancelled', () => {
    const b = book();
    const r = b.place(taker('decrement', 7));
    expect(types(r.events)).toEqual(['accepted', 'cancelled', 'reduced', 'trade']);
    expect(r.events[2]).toMatchObject({ orderId: 't', quantity: 5, remaining: 2, reason: 'stp' });
    expect(r).toMatchObject({ status: 'filled', filledQuantity: 2, cancelledQuantity: 5 });
    expect(b.getOrder('o1')?.remaining).toBe(3);
  });

  it('decrement: smaller taker is cancelled and the resting order reduced, keeping its priority', () => {
    const b = book();
    const r = b.place(taker('decrement', 3));
    expect(types(r.events)).toEqual(['accepted', 'reduced', 'cancelled']);
    expect(r).toMatchObject({ status: 'cancelled', cancelReason: 'stp', cancelledQuantity: 3 });
    expect(b.getOrder('s1')).toMatchObject({ remaining: 2, quantity: 2, prioritySeq: 1 });
    expect([...b.orders('sell')][0]?.id).toBe('s1');
  });

  it('decrement: equal sizes cancel both', () => {
    const b = book();
    const r = b.place(taker('decrement', 5));
    expect(types(r.events)).toEqual(['accepted', 'cancelled', 'cancelled']);
    expect(b.has('s1')).toBe(false);
    expect(r.status).toBe('cancelled');
  });

  it('uses the book default when the order does not set a mode', () => {
    const b = new OrderBook({ market: 'M' });
    b.place({ ...lim('sell', 101, 5), account: 'S' });
    expect(b.place({ ...lim('buy', 101, 5), account: 'S' }).cancelReason).toBe('stp');
  });
});

describe('cancel and amend', () => {
  it('cancel reports whether the order was resting; owner check', () => {
    const b = seeded();
    expect(b.cancel('a1', 'B')).toMatchObject({ resting: false, rejectReason: 'UNKNOWN_ORDER' });
    const r = b.cancel('a1');
    expect(r).toMatchObject({ resting: true, account: 'A', orderId: 'a1' });
    expect(r.events[0]).toMatchObject({ type: 'cancelled', reason: 'user', orderId: 'a1', account: 'A', quantity: 5 });
    expect(b.cancel('a1')).toMatchObject({ resting: false, rejectReason: 'UNKNOWN_ORDER' });
    expect(b.cancel('a1').events[0]).toMatchObject({ type: 'rejected', command: 'cancel', reason: 'UNKNOWN_ORDER' });
  });

  it('quantity down keeps priority', () => {
    const b = seeded();
    const r = b.amend({ id: 'a1', quantity: 2 });
    expect(r).toMatchObject({ ok: true, priorityKept: true, account: 'A' });
    expect(r.events[0]).toMatchObject({ type: 'amended', oldRemaining: 5, remaining: 2, priorityKept: true });
    expect([...b.orders('sell')].map((o) => o.id)).toEqual(['a1', 'b1', 'c1']);
    expect(b.depth(1).asks[0]).toEqual({ price: 101, quantity: 7, orders: 2 });
  });

  it('quantity up or a price change loses priority', () => {
    const b = seeded();
    expect(b.amend({ id: 'a1', quantity: 6 }).priorityKept).toBe(false);
    expect([...b.orders('sell')].map((o) => o.id)).toEqual(['b1', 'a1', 'c1']);
    const r = b.amend({ id: 'c1', price: 101 });
    expect(r.priorityKept).toBe(false);
    expect([...b.orders('sell')].map((o) => o.id)).toEqual(['b1', 'a1', 'c1']);
    expect(b.depth().asks).toEqual([{ price: 101, quantity: 16, orders: 3 }]);
    b.amend({ id: 'b1', price: 103, account: 'B' });
    expect([...b.orders('sell')].map((o) => [o.id, o.price])).toEqual([
      ['a1', 101],
      ['c1', 101],
      ['b1', 103],
    ]);
  });

  it('rejects amends that are invalid, unknown, no-ops or would cross', () => {
    const b = seeded();
    expect(b.amend({ id: 'zz', quantity: 1 }).rejectReason).toBe('UNKNOWN_ORDER');
    expect(b.amend({ id: 'a1', quantity: 1, account: 'B' }).rejectReason).toBe('UNKNOWN_ORDER');
    expect(b.amend({ id: 'a1', quantity: 0 }).rejectReason).toBe('INVALID_QUANTITY');
    expect(b.amend({ id: 'a1', quantity: 1.5 }).rejectReason).toBe('INVALID_QUANTITY');
    expect(b.amend({ id: 'a1', price: -1 }).rejectReason).toBe('INVALID_PRICE');
    expect(b.amend({ id: 'a1', price: 101, quantity: 5 }).rejectReason).toBe('AMEND_NO_CHANGE');
    expect(b.amend({ id: 'a1', price: 99 }).rejectReason).toBe('AMEND_WOULD_TAKE');
    expect(b.amend({ id: 'd1', price: 101 }).rejectReason).toBe('AMEND_WOULD_TAKE');
    expect(b.getOrder('a1')).toMatchObject({ price: 101, remaining: 5 });
  });
});

describe('input validation', () => {
  const bad: Array<[Partial<PlaceCommand> | Record<string, unknown>, string]> = [
    [{ quantity: 0 }, 'INVALID_QUANTITY'],
    [{ quantity: -3 }, 'INVALID_QUANTITY'],
    [{ quantity: 1.5 }, 'INVALID_QUANTITY'],
    [{ quantity: Number.MAX_SAFE_INTEGER + 1 }, 'INVALID_QUANTITY'],
    [{ quantity: NaN }, 'INVALID_QUANTITY'],
    [{ quantity: '5' }, 'INVALID_QUANTITY'],
    [{ price: 0 }, 'INVALID_PRICE'],
    [{ price: -1 }, 'INVALID_PRICE'],
    [{ price: 100.5 }, 'INVALID_PRICE'],
    [{ price: 2 ** 60 }, 'INVALID_PRICE'],
    [{ price: undefined }, 'INVALID_PRICE'],
    [{ id: '' }, 'INVALID_ID'],
    [{ id: 7 }, 'INVALID_ID'],
    [{ account: '' }, 'INVALID_ACCOUNT'],
    [{ side: 'long' }, 'INVALID_SIDE'],
    [{ type: 'stop' }, 'INVALID_TYPE'],
    [{ timeInForce: 'GTD' }, 'INVALID_TIME_IN_FORCE'],
    [{ stp: 'maybe' }, 'INVALID_STP'],
    [{ postOnly: 'yes' }, 'INVALID_POST_ONLY'],
  ];
  it.each(bad)('rejects %p with %s (an event, not an exception)', (patch, reason) => {
    const b = seeded();
    const seq = b.seq;
    const r = b.place({ ...lim('buy', 100, 1), ...patch } as PlaceCommand);
    expect(r).toMatchObject({ status: 'rejected', rejectReason: reason });
    expect(r.events).toEqual([expect.objectContaining({ seq: seq + 1, type: 'rejected', reason })]);
    expect(b.orderCount).toBe(5);
    expect(JSON.parse(JSON.stringify(r.events))).toEqual(r.events);
  });

  it('respects maxPrice / maxQuantity and rejects duplicate resting ids', () => {
    const b = new OrderBook({ market: 'M', maxPrice: 1000, maxQuantity: 10 });
    expect(b.place(lim('buy', 1001, 1)).rejectReason).toBe('INVALID_PRICE');
    expect(b.place(lim('buy', 100, 11)).rejectReason).toBe('INVALID_QUANTITY');
    b.place({ ...lim('buy', 100, 1), id: 'dup' });
    expect(b.place({ ...lim('buy', 100, 1), id: 'dup' }).rejectReason).toBe('DUPLICATE_ORDER_ID');
  });
});

describe('memory', () => {
  it('keeps no trace of filled or cancelled orders', () => {
    const b = new OrderBook({ market: 'M', defaultStp: 'none' });
    for (let i = 0; i < 20_000; i++) {
      b.place({ id: `s${i}`, account: 'A', side: 'sell', type: 'limit', price: 1000 + (i % 50), quantity: 2 });
      if (i % 3 === 0) b.cancel(`s${i}`);
      if (i % 2 === 1) b.place({ id: `b${i}`, account: 'B', side: 'buy', type: 'market', quantity: 3 });
    }
    b.place({ id: 'sweep', account: 'B', side: 'buy', type: 'market', quantity: 1e9 });
    expect(b.orderCount).toBe(0);
    expect(b.levelCount).toEqual({ bids: 0, asks: 0 });
    expect(b.snapshot().asks).toEqual([]);
  });
});

describe('stop orders', () => {
  it('wait off the book, trigger on the last trade price in the same command, and rest with the trigger seq', () => {
    const b = seeded();
    // no trade yet: any stop waits; a sell stop-limit at 100 (limit 98) and a buy stop-loss at 102
    const sl = b.place({ ...lim('sell', 98, 3), id: 's1', account: 'S', stopPrice: 100 });
    expect(sl).toMatchObject({ status: 'new', remainingQuantity: 3 });
    expect(sl.events[0]).toMatchObject({ type: 'accepted', stopPrice: 100, price: 98 });
    b.place({ ...mkt('buy', 2), id: 's2', account: 'S', stopPrice: 102, timeInForce: 'IOC' });
    expect([b.stopCount, b.orderCount, b.depth(5).asks[0]]).toEqual([2, 5, { price: 101, quantity: 10, orders: 2 }]);
    // a plain order without the stop field has no stopPrice key at all (events of plain orders are unchanged)
    const plain = b.place(mkt('sell', 5));
    expect('stopPrice' in plain.events[0]!).toBe(false);
    // that sell traded at 99: last 99 <= 100 triggers s1, which sells into 98 (e1), at priority of its trigger
    expect(types(plain.events)).toEqual(['accepted', 'trade', 'triggered', 'trade']);
    expect(plain.events[2]).toMatchObject({ orderId: 's1', stopPrice: 100, lastPrice: 99 });
    expect(plain.fills.map((f) => f.takerOrderId)).toEqual([plain.orderId]); // own fills only
    expect(b.getStop('s1')).toBeUndefined();
    expect(b.lastPrice).toBe(98);
    // a stop that would trigger at once is rejected; so are bad stop prices, FOK and post-only stops
    expect(b.place({ ...lim('sell', 90, 1), stopPrice: 98 }).rejectReason).toBe('STOP_WOULD_TRIGGER');
    expect(b.place({ ...lim('buy', 110, 1), stopPrice: 98 }).rejectReason).toBe('STOP_WOULD_TRIGGER');
    expect(b.place({ ...lim('buy', 110, 1), stopPrice: 0 }).rejectReason).toBe('INVALID_STOP_PRICE');
    expect(b.place({ ...lim('buy', 110, 1), stopPrice: 104, timeInForce: 'FOK' }).rejectReason).toBe(
      'INVALID_TIME_IN_FORCE',
    );
    expect(b.place({ ...lim('buy', 110, 1), stopPrice: 104, postOnly: true }).rejectReason).toBe('INVALID_POST_ONLY');
    expect(b.place({ ...lim('buy', 110, 1), id: 's2', stopPrice: 104 }).rejectReason).toBe('DUPLICATE_ORDER_ID');
    // a waiting stop is cancelled like an order (owner check included)
    expect(b.cancel('s2', 'X').rejectReason).toBe('UNKNOWN_ORDER');
    expect(b.cancel('s2', 'S').events[0]).toMatchObject({ type: 'cancelled', orderId: 's2', price: null, quantity: 2 });
    expect(b.stopCount).toBe(0);
  });

  it('cascades in accepted order, bounded per command; the rest trigger after the next place', () => {
    const b = new OrderBook({ market: 'T', maxStopTriggers: 2 });
    for (const [id, p] of [
      ['b100', 100],
      ['b99', 99],
      ['b98', 98],
      ['b97', 97],
    ] as const) {
      b.place({ ...lim('buy', p, 1), id, account: 'M' });
    }
    b.place({ ...lim('sell', 100, 1), id: 'first', account: 'T' }); // last = 100
    // three sell stops, accepted in this order: at 99, 98 (both stop-loss) and 97
    b.place({ ...mkt('sell', 1), id: 'st99', account: 'S', stopPrice: 99 });
    b.place({ ...mkt('sell', 1), id: 'st97', account: 'S', stopPrice: 97 });
    b.place({ ...mkt('sell', 1), id: 'st98', account: 'S', stopPrice: 98 });
    const r = b.place({ ...mkt('sell', 1), id: 'push', account: 'T' }); // trades at 99
    const triggered = r.events.filter((e) => e.type === 'triggered').map((e) => (e as { orderId: string }).orderId);
    // 99 triggers st99 (trades at 98), which makes st98 eligible (accepted after st97, but st97 is not eligible yet)
    expect(triggered).toEqual(['st99', 'st98']);
    expect(b.lastPrice).toBe(97); // st98 sold into 97: st97 is eligible but the bound (2) stopped the cascade
    expect(b.getStop('st97')).toBeDefined();
    const next = b.place({ ...lim('buy', 50, 1), id: 'noop', account: 'Z' });
    // the next place (a bid at 50) lets st97 trigger; it sells into that very bid
    expect(types(next.events)).toEqual(['accepted', 'triggered', 'trade']);
    expect(next.events[2]).toMatchObject({ takerOrderId: 'st97', makerOrderId: 'noop', price: 50 });
    expect(next.status).toBe('new'); // the result describes the order before the stops it let trigger ran
  });

  it('snapshots carry stops and the last price; a version 1 snapshot restores with neither', () => {
    const b = seeded();
    b.place(mkt('sell', 1));
    b.place({ ...lim('buy', 105, 2), id: 'stop', account: 'S', stopPrice: 102 });
    const snap = JSON.parse(JSON.stringify(b.snapshot()));
    expect(snap).toMatchObject({ version: 3, lastPrice: 99, stops: [expect.objectContaining({ id: 'stop' })] });
    const r = OrderBook.restore(snap);
    expect(JSON.stringify(r.snapshot())).toBe(JSON.stringify(b.snapshot()));
    const cmd = mkt('buy', 20);
    expect(JSON.stringify(r.place(cmd))).toBe(JSON.stringify(b.place(cmd)));
    const { lastPrice: _l, stops: _s, maxStopTriggers: _m, ...v1 } = snap;
    const old = OrderBook.restore({ ...v1, version: 1 });
    expect([old.lastPrice, old.stopCount, old.orderCount]).toEqual([null, 0, 5]);
  });
});

describe('snapshot / restore', () => {
  it('round-trips through JSON, keeps seq, priorities and options, and continues identically', () => {
    const a = seeded({ defaultStp: 'decrement' });
    a.amend({ id: 'a1', quantity: 3 });
    a.place({ ...lim('buy', 101, 2), id: 'x', account: 'T' });
    const snap = JSON.parse(JSON.stringify(a.snapshot()));
    const b = OrderBook.restore(snap);
    expect(b.seq).toBe(a.seq);
    expect(b.defaultStp).toBe('decrement');
    expect(JSON.stringify(b.snapshot())).toBe(JSON.stringify(a.snapshot()));
    const cmd = { ...lim('buy', 102, 9), id: 'y', account: 'B' };
    expect(JSON.stringify(b.place(cmd))).toBe(JSON.stringify(a.place(cmd)));
    expect(JSON.stringify(b.snapshot())).toBe(JSON.stringify(a.snapshot()));
  });

  it('throws on a corrupt snapshot (programmer error)', () => {
    const snap = seeded().snapshot();
    expect(() => OrderBook.restore({ ...snap, version: 4 as 3 })).toThrow(TypeError);
    expect(() => OrderBook.restore({ ...snap, lastPrice: -1 })).toThrow(TypeError);
    expect(() => OrderBook.restore({ ...snap, asks: [...snap.asks].reverse() })).toThrow(TypeError);
    expect(() => OrderBook.restore({ ...snap, bids: [...snap.bids, snap.bids[0]!] })).toThrow(TypeError);
  });
});

describe('iceberg orders', () => {
  it('shows only the display slice in depth; a taker trades the slice, the refill goes to the back of the level', () => {
    const b = new OrderBook({ market: 'BTC-USD' });
    b.place({ ...lim('sell', 101, 10), id: 'ice', account: 'I', displayQuantity: 3 });
    b.place({ ...lim('sell', 101, 2), id: 'plain', account: 'P' });
    expect(b.depth().asks).toEqual([{ price: 101, quantity: 5, orders: 2 }]);
    expect(b.getOrder('ice')).toMatchObject({ remaining: 10, displayQuantity: 3, visible: 3 });

    const r = b.place({ ...mkt('buy', 4), account: 'T' });
    // 3 from the slice, refill (new priority behind 'plain'), then 1 from 'plain'
    expect(types(r.events)).toEqual(['accepted', 'trade', 'refilled', 'trade']);
    expect(fillsOf(r)).toEqual([
      ['ice', 101, 3],
      ['plain', 101, 1],
    ]);
    expect(r.events[2]).toMatchObject({ orderId: 'ice', visible: 3 });
    expect([...b.orders('sell')].map((o) => o.id)).toEqual(['plain', 'ice']);
    expect(b.depth().asks).toEqual([{ price: 101, quantity: 4, orders: 2 }]);
    expect(b.getOrder('ice')!.prioritySeq).toBe(r.events[2]!.seq);
  });

  it('a taker larger than the level takes the hidden part too, slice by slice', () => {
    const b = new OrderBook({ market: 'BTC-USD' });
    b.place({ ...lim('sell', 101, 7), id: 'ice', account: 'I', displayQuantity: 3 });
    const r = b.place({ ...mkt('buy', 7), account: 'T' });
    expect(types(r.events)).toEqual(['accepted', 'trade', 'refilled', 'trade', 'refilled', 'trade']);
    expect(r.fills.map((f) => f.quantity)).toEqual([3, 3, 1]);
    expect(b.orderCount).toBe(0);
    // FOK counts the hidden part as fillable
    b.place({ ...lim('sell', 101, 7), id: 'ice2', account: 'I', displayQuantity: 2 });
    expect(b.place({ ...mkt('buy', 7), timeInForce: 'FOK', account: 'T' }).status).toBe('filled');
  });

  it('a FOK that would meet its own order after a refill is not fillable (STP)', () => {
    const b = new OrderBook({ market: 'BTC-USD' });
    b.place({ ...lim('sell', 101, 6), id: 'ice', account: 'I', displayQuantity: 2 });
    b.place({ ...lim('sell', 101, 5), id: 'own', account: 'T' });
    // only the first slice (2) comes before the taker's own order
    expect(b.place({ ...mkt('buy', 4), timeInForce: 'FOK', account: 'T' }).rejectReason).toBe('FOK_NOT_FILLABLE');
    expect(b.place({ ...mkt('buy', 2), timeInForce: 'FOK', account: 'T' }).status).toBe('filled');
  });

  it('validates the display quantity', () => {
    const b = new OrderBook({ market: 'BTC-USD' });
    const bad = (extra: Partial<PlaceCommand>) => b.place({ ...lim('buy', 100, 5), ...extra }).rejectReason;
    expect(bad({ displayQuantity: 6 })).toBe('INVALID_DISPLAY_QUANTITY');
    expect(bad({ displayQuantity: 0 })).toBe('INVALID_DISPLAY_QUANTITY');
    expect(bad({ displayQuantity: 1.5 })).toBe('INVALID_DISPLAY_QUANTITY');
    expect(bad({ displayQuantity: 2, timeInForce: 'IOC' })).toBe('INVALID_DISPLAY_QUANTITY');
    expect(bad({ displayQuantity: 2, stopPrice: 120 })).toBe('INVALID_DISPLAY_QUANTITY');
    expect(b.place({ ...mkt('buy', 5), displayQuantity: 2 }).rejectReason).toBe('INVALID_DISPLAY_QUANTITY');
    expect(bad({ displayQuantity: 5 })).toBeNull();
  });

  it('amend down keeps the slice within the open quantity; amend up shows a fresh slice at the back', () => {
    const b = new OrderBook({ market: 'BTC-USD' });
    b.place({ ...lim('buy', 99, 10), id: 'ice', account: 'I', displayQuantity: 4 });
    b.amend({ id: 'ice', quantity: 3 });
    expect(b.getOrder('ice')).toMatchObject({ remaining: 3, visible: 3 });
    expect(b.depth().bids).toEqual([{ price: 99, quantity: 3, orders: 1 }]);
    b.amend({ id: 'ice', quantity: 12 });
    expect(b.getOrder('ice')).toMatchObject({ remaining: 12, visible: 4 });
    expect(b.depth().bids).toEqual([{ price: 99, quantity: 4, orders: 1 }]);
  });
});

describe('volatility guard and call auction', () => {
  /** band 2% around the last price 100: [98, 102] */
  function guarded(): OrderBook {
    const b = new OrderBook({ market: 'BTC-USD', bandBps: 200 });
    b.place({ ...lim('sell', 100, 1), id: 's0', account: 'A' });
    b.place({ ...lim('buy', 100, 1), id: 'b0', account: 'B' }); // last price 100
    b.place({ ...lim('sell', 101, 2), id: 's1', account: 'A' });
    b.place({ ...lim('sell', 105, 5), id: 's2', account: 'A' });
    return b;
  }

  it('a trade outside the band starts an auction instead of printing; orders are collected, then uncrossed', () => {
    const b = guarded();
    const r = b.place({ ...lim('buy', 106, 6), id: 'big', account: 'B' });
    expect(types(r.events)).toEqual(['accepted', 'trade', 'auction_started']);
    expect(r.events[2]).toMatchObject({ referencePrice: 100, lowerPrice: 98, upperPrice: 102, orderId: 'big' });
    expect([r.status, r.filledQuantity, r.remainingQuantity]).toEqual(['partially_filled', 2, 4]);
    expect(b.phase).toBe('auction');
    // crossed book: bid 106 x4 against ask 105 x5
    expect(b.auctionState()).toMatchObject({ indicativePrice: 105, indicativeVolume: 4 });

    // in the auction: market/IOC orders are refused; limits rest without matching, even crossing
    expect(b.place({ ...mkt('buy', 1), account: 'C' }).rejectReason).toBe('MARKET_IN_AUCTION');
    expect(b.place({ ...lim('buy', 110, 1), timeInForce: 'IOC' }).rejectReason).toBe('MARKET_IN_AUCTION');
    const collected = b.place({ ...lim('sell', 103, 3), id: 's3', account: 'C' });
    expect(types(collected.events)).toEqual(['accepted']);
    expect(collected.status).toBe('new');
    // buy 4 @106 vs sells 3 @103 and 5 @105: volume 4 at 105 (imbalance 4) and at 104..103 only 3
    expect(b.auctionState()).toMatchObject({ indicativePrice: 105, indicativeVolume: 4 });

    const end = b.endAuction();
    expect(end).toMatchObject({ ok: true, price: 105, volume: 4 });
    expect(end.fills.map((f) => [f.makerOrderId, f.takerOrderId, f.price, f.quantity, f.auction])).toEqual([
      ['big', 's3', 105, 3, true],
      ['s2', 'big', 105, 1, true],
    ]);
    expect(types(end.events).at(-1)).toBe('auction_ended');
    expect(b.phase).toBe('continuous');
    expect(b.lastPrice).toBe(105);
    expect(b.depth().asks).toEqual([{ price: 105, quantity: 4, orders: 1 }]);
    expect(b.endAuction().rejectReason).toBe('NOT_IN_AUCTION');
  });

  it('tie-breaks: maximum volume, then minimum imbalance, then closest to the reference price', () => {
    const b = guarded();
    b.place({ ...lim('buy', 110, 3), id: 'x', account: 'B' }); // trades 2 @101, then would print 105: auction
    expect(b.phase).toBe('auction');
    b.cancel('x');
    b.cancel('s2');
    // bids 104 x2, asks 102 x2: volume 2 at every price in 102..104, imbalance 0: the closest to 100 is 102
    b.place({ ...lim('buy', 104, 2), id: 'bb', account: 'B' });
    b.place({ ...lim('sell', 102, 2), id: 'ss', account: 'A' });
    expect(b.auctionState()).toMatchObject({ referencePrice: 100, indicativePrice: 102, indicativeVolume: 2 });
    // a bid 103 x5: volume is still 2 everywhere, but only at 104 is the imbalance 0 (buy 2 / sell 2)
    b.place({ ...lim('buy', 103, 5), id: 'b3', account: 'C' });
    expect(b.auctionState()).toMatchObject({ indicativePrice: 104, indicativeVolume: 2 });
  });

  it('market and IOC remainders are cancelled (reason auction); the guard needs a reference price', () => {
    const b = new OrderBook({ market: 'BTC-USD', bandBps: 200 });
    b.place({ ...lim('sell', 150, 1), id: 'far', account: 'A' });
    // no trade yet: no reference, no guard
    expect(b.place({ ...mkt('buy', 1), account: 'B' }).status).toBe('filled');
    b.place({ ...lim('sell', 151, 1), id: 's1', account: 'A' });
    b.place({ ...lim('sell', 160, 1), id: 's2', account: 'A' });
    const r = b.place({ ...mkt('buy', 2), account: 'B' });
    expect(types(r.events)).toEqual(['accepted', 'trade', 'auction_started', 'cancelled']);
    expect(r.cancelReason).toBe('auction');
    expect(b.endAuction()).toMatchObject({ ok: true, price: null, volume: 0 });
  });

  it('snapshot in the middle of an auction restores it exactly', () => {
    const b = guarded();
    b.place({ ...lim('buy', 106, 6), id: 'big', account: 'B' });
    b.place({ ...lim('sell', 103, 3), id: 's3', account: 'C', displayQuantity: 1 });
    const snap = JSON.parse(JSON.stringify(b.snapshot()));
    expect(snap.auction).toMatchObject({ referencePrice: 100 });
    const r = OrderBook.restore(snap);
    expect(r.phase).toBe('auction');
    expect(JSON.stringify(r.endAuction())).toBe(JSON.stringify(b.endAuction()));
    expect(JSON.stringify(r.snapshot())).toBe(JSON.stringify(b.snapshot()));
  });
});
