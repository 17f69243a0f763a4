import fc from 'fast-check';
import { OrderBook } from '../src/order-book.ts';
import type { BookEvent, OrderBookSnapshot, StpMode } from '../src/types.ts';
import { commandsArb, longCommandsArb, runOnEngine, runOnReference } from './commands.ts';
import { ReferenceBook } from './reference-book.ts';

// Bounded so the package test run stays fast; raise with ME_PROPERTY_RUNS=5000 for a deeper search.
const NUM_RUNS = Number(process.env.ME_PROPERTY_RUNS ?? 300);

/** Book never crossed (except during an auction); levels sorted; FIFO (prioritySeq ascending) within a level; quantity = filled + remaining. */
function checkStructure(book: OrderBook): void {
  const bids = [...book.orders('buy')];
  const asks = [...book.orders('sell')];
  const bb = book.bestBid();
  const ba = book.bestAsk();
  expect(bb).toBe(bids[0]?.price ?? null);
  expect(ba).toBe(asks[0]?.price ?? null);
  if (bb !== null && ba !== null && book.phase === 'continuous') expect(bb).toBeLessThan(ba);
  for (const [list, dir] of [
    [bids, -1],
    [asks, 1],
  ] as const) {
    for (let i = 1; i < list.length; i++) {
      const a = list[i - 1]!;
      const b = list[i]!;
      if (a.price === b.price) expect(a.prioritySeq).toBeLessThan(b.prioritySeq);
      else expect(Math.sign(b.price - a.price)).toBe(dir);
    }
    for (const o of list) {
      expect(o.remaining).toBeGreaterThan(0);
      expect(o.quantity).toBe(o.filled + o.remaining);
      if (o.displayQuantity !== undefined) {
        // an iceberg always shows something, never more than its display quantity or what is left
        expect(o.visible).toBeGreaterThan(0);
        expect(o.visible).toBeLessThanOrEqual(Math.min(o.displayQuantity, o.remaining));
      }
    }
  }
  expect(book.orderCount).toBe(bids.length + asks.length);
  // aggregated depth agrees with the orders' shown quantities (icebergs: only the slice)
  const depth = book.depth(1000);
  const agg = (list: typeof bids) => {
    const m = new Map<number, { quantity: number; orders: number }>();
    for (const o of list) {
      const l = m.get(o.price) ?? { quantity: 0, orders: 0 };
      l.quantity += o.visible ?? o.remaining;
      l.orders++;
      m.set(o.price, l);
    }
    return [...m].map(([price, l]) => ({ price, ...l }));
  };
  expect(depth.bids).toEqual(agg(bids));
  expect(depth.asks).toEqual(agg(asks));
}

/**
 * Quantity conservation from the event stream alone: every accepted quantity ends up traded, cancelled, reduced
 * (STP decrement) or still resting; amends set the open quantity explicitly.
 */
class Conservation {
  open = new Map<string, number>();
  /** Accepted stop orders not triggered yet (open, but not on the book). */
  waiting = new Set<string>();
  seq = 0;
  apply(events: BookEvent[]): void {
    for (const e of events) {
      expect(e.seq).toBe(++this.seq);
      const dec = (id: string, q: number) => {
        const left = (this.open.get(id) ?? NaN) - q;
        expect(left).toBeGreaterThanOrEqual(0);
        if (left === 0) this.open.delete(id);
        else this.open.set(id, left);
      };
      switch (e.type) {
        case 'accepted':
          expect(this.open.has(e.orderId)).toBe(false);
          this.open.set(e.orderId, e.quantity);
          if (e.stopPrice !== undefined) this.waiting.add(e.orderId);
          break;
        case 'trade':
          expect(e.quantity).toBeGreaterThan(0);
          dec(e.takerOrderId, e.quantity);
          dec(e.makerOrderId, e.quantity);
          expect(this.open.get(e.makerOrderId) ?? 0).toBe(e.makerRemaining);
          expect(this.open.get(e.takerOrderId) ?? 0).toBe(e.takerRemaining);
          break;
        case 'cancelled':
          expect(this.open.get(e.orderId)).toBe(e.quantity); // a cancel always removes all that is left
          this.waiting.delete(e.orderId);
          dec(e.orderId, e.quantity);
          break;
        case 'reduced':
          dec(e.orderId, e.quantity);
          expect(this.open.get(e.orderId)).toBe(e.remaining);
          break;
        case 'amended':
          expect(this.open.get(e.orderId)).toBe(e.oldRemaining);
          this.open.set(e.orderId, e.remaining);
          break;
        case 'triggered':
          // a waiting stop becomes live with all of its quantity, at a price that reached its stop price
          expect(this.waiting.has(e.orderId)).toBe(true);
          this.waiting.delete(e.orderId);
          expect(e.side === 'buy' ? e.lastPrice >= e.stopPrice : e.lastPrice <= e.stopPrice).toBe(true);
          break;
        case 'refilled':
          // the next slice of an iceberg: no quantity changes hands
          expect(this.open.get(e.orderId)).toBeGreaterThanOrEqual(e.visible);
          break;
        case 'rejected':
        case 'auction_started':
        case 'auction_ended':
          break;
      }
    }
  }
  check(book: OrderBook): void {
    const resting = new Map([...book.orders()].map((o) => [o.id, o.remaining]));
    for (const s of book.stopOrders()) resting.set(s.id, s.quantity);
    expect(resting).toEqual(this.open);
    expect(new Set(book.stopOrders().map((s) => s.id))).toEqual(this.waiting);
  }
}

const stpArb = fc.constantFrom<StpMode>('cancel_newest', 'none', 'decrement');
/** No guard, or a band of 2 to 5 ticks around ~100 so that auctions start often. */
const bandArb = fc.constantFrom(0, 0, 200, 500);

// Short sequences explore edge cases; long ones move the price enough for stops to trigger and cascade.
const SEQUENCES = [
  ['short', commandsArb, NUM_RUNS],
  ['long (stops trigger and cascade)', longCommandsArb, Math.ceil(NUM_RUNS / 3)],
] as const;

describe.each(SEQUENCES)('OrderBook vs naive reference (property, %s sequences)', (_name, arb, runs) => {
  it('produces the same events and the same resting book and stops for random command sequences', () => {
    fc.assert(
      fc.property(
        arb,
        stpArb,
        fc.constantFrom(1, 2, 100),
        bandArb,
        (commands, defaultStp, maxStopTriggers, bandBps) => {
          const book = new OrderBook({ market: 'T', defaultStp, maxStopTriggers, bandBps });
          const ref = new ReferenceBook('T', defaultStp, maxStopTriggers, bandBps);
          const cons = new Conservation();
          for (const c of commands) {
            const got = runOnEngine(book, c);
            const want = runOnReference(ref, c);
            expect(JSON.stringify(got)).toBe(JSON.stringify(want));
            expect(JSON.parse(JSON.stringify(got))).toStrictEqual(got); // plain data only
            cons.apply(got);
            cons.check(book);
            checkStructure(book);
            const snap = book.snapshot();
            expect(snap.bids).toEqual(ref.side('buy'));
            expect(snap.asks).toEqual(ref.side('sell'));
            expect(snap.stops).toEqual(ref.stops);
            expect(snap.lastPrice).toBe(ref.lastPrice);
            expect(snap.auction).toEqual(ref.auction);
            if (ref.auction !== null) {
              const u = ref.uncrossPrice();
              expect(book.auctionState()).toMatchObject({
                indicativePrice: u?.price ?? null,
                indicativeVolume: u?.volume ?? 0,
              });
            }
          }
        },
      ),
      { numRuns: runs },
    );
  });

  it('place results agree with their events', () => {
    fc.assert(
      fc.property(arb, (commands) => {
        const book = new OrderBook({ market: 'T', bandBps: 300 });
        for (const c of commands) {
          if (c.kind !== 'place') {
            runOnEngine(book, c);
            continue;
          }
          const r = book.place(c.cmd);
          // fills are the placed order's own trades: those before any stop it triggered
          const firstTrigger = r.events.findIndex((e) => e.type === 'triggered');
          const own = firstTrigger < 0 ? r.events : r.events.slice(0, firstTrigger);
          expect(r.fills).toEqual(own.filter((e) => e.type === 'trade'));
          const filled = r.fills.reduce((s, f) => s + f.quantity, 0);
          expect(r.filledQuantity).toBe(filled);
          if (r.status === 'rejected') {
            expect(r.events).toHaveLength(1);
            expect(r.rejectReason).not.toBeNull();
            continue;
          }
          expect(filled + r.remainingQuantity + r.cancelledQuantity).toBe(c.cmd.quantity);
          if (c.cmd.stopPrice !== undefined) {
            // a stop waits off the book with all its quantity (it cannot trigger on arrival)
            expect([r.status, filled, book.getStop(c.cmd.id)?.quantity]).toEqual(['new', 0, c.cmd.quantity]);
            continue;
          }
          if (firstTrigger >= 0) continue; // triggered stops may have traded with it since
          const resting = book.getOrder(c.cmd.id);
          if (r.status === 'new' || r.status === 'partially_filled') {
            expect(resting?.remaining).toBe(r.remainingQuantity);
            expect(r.status === 'new').toBe(filled === 0);
          } else {
            expect(resting).toBeUndefined();
            expect(r.remainingQuantity).toBe(0);
          }
          if (r.status === 'filled') expect(r.cancelReason).toBeNull();
          if (r.status === 'cancelled') expect(r.cancelReason).not.toBeNull();
        }
      }),
      { numRuns: Math.ceil(runs / 2) },
    );
  });
});

describe.each(SEQUENCES)('snapshot + replay (property, %s sequences)', (_name, arb, runs) => {
  it('restore at a random point + replay equals the uninterrupted run, byte for byte', () => {
    fc.assert(
      fc.property(arb, fc.nat(), (commands, cut) => {
        const k = cut % (commands.length + 1);
        const straight = new OrderBook({ market: 'T', defaultStp: 'decrement', bandBps: 300 });
        const straightEvents: string[] = [];
        let snap: string | undefined;
        commands.forEach((c, i) => {
          if (i === k) snap = JSON.stringify(straight.snapshot());
          straightEvents.push(JSON.stringify(runOnEngine(straight, c)));
        });
        if (k === commands.length) snap = JSON.stringify(straight.snapshot());

        const restored = OrderBook.restore(JSON.parse(snap!) as OrderBookSnapshot);
        expect(JSON.stringify(restored.snapshot())).toBe(snap);
        for (let i = k; i < commands.length; i++) {
          expect(JSON.stringify(runOnEngine(restored, commands[i]!))).toBe(straightEvents[i]);
        }
        expect(JSON.stringify(restored.snapshot())).toBe(JSON.stringify(straight.snapshot()));
        expect(restored.seq).toBe(straight.seq);
      }),
      { numRuns: runs },
    );
  });
});
