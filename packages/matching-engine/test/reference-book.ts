// A deliberately naive reference order book for property tests: all resting orders in one array, sorted on demand,
// FOK decided by simulating the order on a copy of the book. Slow and obviously correct; it produces the same event
// format as the real engine so that both can be compared byte for byte.
import type {
  AmendCommand,
  BookEvent,
  PlaceCommand,
  RejectReason,
  RestingOrder,
  Side,
  StopOrder,
  StpMode,
} from '../src/types.ts';

const STP = ['none', 'cancel_newest', 'cancel_oldest', 'cancel_both', 'decrement'];
const posInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

export class ReferenceBook {
  market: string;
  defaultStp: StpMode;
  seq = 0;
  resting: RestingOrder[] = [];
  /** Waiting stops in accepted order. */
  stops: StopOrder[] = [];
  lastPrice: number | null = null;
  maxStopTriggers: number;
  bandBps: number;
  /** The running auction, null in continuous trading. */
  auction: { referencePrice: number; lowerPrice: number; upperPrice: number; startSeq: number } | null = null;

  constructor(market: string, defaultStp: StpMode = 'cancel_newest', maxStopTriggers = 100, bandBps = 0) {
    this.market = market;
    this.defaultStp = defaultStp;
    this.maxStopTriggers = maxStopTriggers;
    this.bandBps = bandBps;
  }

  clone(): ReferenceBook {
    const c = new ReferenceBook(this.market, this.defaultStp, this.maxStopTriggers, this.bandBps);
    c.seq = this.seq;
    c.resting = this.resting.map((o) => ({ ...o }));
    c.stops = this.stops.map((o) => ({ ...o }));
    c.lastPrice = this.lastPrice;
    c.auction = this.auction && { ...this.auction };
    return c;
  }

  /** What an order can trade right now: an iceberg only its shown slice. */
  private avail(o: RestingOrder): number {
    return o.displayQuantity === undefined ? o.remaining : o.visible!;
  }

  /** After a trade: remove a filled order, or show an iceberg's next slice at the back (new priority). */
  private afterTrade(o: RestingOrder, events: BookEvent[]): void {
    if (o.remaining === 0) {
      this.resting = this.resting.filter((x) => x !== o);
    } else if (o.displayQuantity !== undefined && o.visible === 0) {
      o.visible = Math.min(o.displayQuantity, o.remaining);
      o.prioritySeq = ++this.seq;
      events.push({
        seq: o.prioritySeq,
        type: 'refilled',
        market: this.market,
        orderId: o.id,
        account: o.account,
        side: o.side,
        price: o.price,
        visible: o.visible,
      });
    }
  }

  /** The band [lo, hi] around the last price, by plain BigInt arithmetic; null without guard or reference. */
  private band(): { ref: number; lo: number; hi: number } | null {
    const ref = this.lastPrice;
    if (this.bandBps === 0 || ref === null) return null;
    const w = Math.max(1, Number((BigInt(ref) * BigInt(this.bandBps)) / 10000n));
    return { ref, lo: ref - w, hi: ref + w };
  }

  /** Naive uncross price: try every candidate, keep the best by (volume desc, imbalance asc, |p-ref| asc, p asc). */
  uncrossPrice(): { price: number; volume: number } | null {
    const ref = this.auction!.referencePrice;
    const bids = this.side('buy');
    const asks = this.side('sell');
    if (!bids.length || !asks.length || bids[0]!.price < asks[0]!.price) return null;
    const lo = asks[0]!.price;
    const hi = bids[0]!.price;
    const prices = new Set(this.resting.map((o) => o.price).filter((p) => p >= lo && p <= hi));
    if (ref >= lo && ref <= hi) prices.add(ref);
    const rows = [...prices].map((p) => {
      const buy = bids.filter((o) => o.price >= p).reduce((a, o) => a + o.remaining, 0);
      const sell = asks.filter((o) => o.price <= p).reduce((a, o) => a + o.remaining, 0);
      return { p, volume: Math.min(buy, sell), imbalance: Math.abs(buy - sell), dist: Math.abs(p - ref) };
    });
    rows.sort((a, b) => b.volume - a.volume || a.imbalance - b.imbalance || a.dist - b.dist || a.p - b.p);
    return { price: rows[0]!.p, volume: rows[0]!.volume };
  }

  endAuction(): BookEvent[] {
    const a = this.auction;
    if (a === null) return this.reject('end_auction', null, null, 'NOT_IN_AUCTION');
    const events: BookEvent[] = [];
    let price: number | null = null;
    let volume = 0;
    for (let u = this.uncrossPrice(); u !== null; u = this.uncrossPrice()) {
      const p = u.price;
      for (;;) {
        const b = this.side('buy')[0];
        const s = this.side('sell')[0];
        if (!b || !s || b.price < p || s.price > p) break;
        const [taker, maker] = b.prioritySeq > s.prioritySeq ? [b, s] : [s, b];
        if (b.account === s.account && taker.stp !== 'none') {
          this.resting = this.resting.filter((x) => x !== taker);
          events.push({
            seq: ++this.seq,
            type: 'cancelled',
            market: this.market,
            orderId: taker.id,
            account: taker.account,
            side: taker.side,
            price: taker.price,
            quantity: taker.remaining,
            reason: 'stp',
          });
          continue;
        }
        const qty = Math.min(this.avail(b), this.avail(s));
        for (const o of [b, s]) {
          o.remaining -= qty;
          o.filled += qty;
          if (o.displayQuantity !== undefined) o.visible! -= qty;
        }
        this.lastPrice = p;
        price = p;
        volume += qty;
        events.push({
          seq: ++this.seq,
          type: 'trade',
          market: this.market,
          price: p,
          quantity: qty,
          takerOrderId: taker.id,
          takerAccount: taker.account,
          takerSide: taker.side,
          makerOrderId: maker.id,
          makerAccount: maker.account,
          makerRemaining: maker.remaining,
          takerRemaining: taker.remaining,
          auction: true,
        });
        this.afterTrade(b, events);
        this.afterTrade(s, events);
      }
    }
    this.auction = null;
    events.push({
      seq: ++this.seq,
      type: 'auction_ended',
      market: this.market,
      referencePrice: a.referencePrice,
      price,
      volume,
    });
    this.triggerStops(events);
    return events;
  }

  /** Resting orders of a side in priority order. */
  side(side: Side): RestingOrder[] {
    return this.resting
      .filter((o) => o.side === side)
      .sort((a, b) => (side === 'buy' ? b.price - a.price : a.price - b.price) || a.prioritySeq - b.prioritySeq);
  }

  private reject(
    command: 'place' | 'cancel' | 'amend' | 'end_auction',
    orderId: unknown,
    account: unknown,
    reason: RejectReason,
  ) {
    return [
      {
        seq: ++this.seq,
        type: 'rejected',
        market: this.market,
        command,
        orderId: typeof orderId === 'string' ? orderId : null,
        account: typeof account === 'string' ? account : null,
        reason,
      } as BookEvent,
    ];
  }

  private validate(c: PlaceCommand): RejectReason | null {
    if (typeof c.id !== 'string' || c.id === '') return 'INVALID_ID';
    if (typeof c.account !== 'string' || c.account === '') return 'INVALID_ACCOUNT';
    if (c.side !== 'buy' && c.side !== 'sell') return 'INVALID_SIDE';
    if (c.type !== 'limit' && c.type !== 'market') return 'INVALID_TYPE';
    if (c.timeInForce !== undefined && !['GTC', 'IOC', 'FOK'].includes(c.timeInForce)) return 'INVALID_TIME_IN_FORCE';
    if (c.stp !== undefined && !STP.includes(c.stp)) return 'INVALID_STP';
    if (c.postOnly !== undefined && typeof c.postOnly !== 'boolean') return 'INVALID_POST_ONLY';
    if (!posInt(c.quantity)) return 'INVALID_QUANTITY';
    if (c.type === 'limit') {
      if (!posInt(c.price)) return 'INVALID_PRICE';
      if (c.maxSlippageTicks !== undefined || c.quoteBudget !== undefined) return 'INVALID_PROTECTION';
      if (c.postOnly === true && (c.timeInForce ?? 'GTC') !== 'GTC') return 'INVALID_POST_ONLY';
    } else {
      if (c.price !== undefined) return 'INVALID_PRICE';
      if (c.postOnly === true) return 'INVALID_POST_ONLY';
      const t = c.maxSlippageTicks;
      if (t !== undefined && !(Number.isSafeInteger(t) && t >= 0)) return 'INVALID_PROTECTION';
      if (c.quoteBudget !== undefined && !posInt(c.quoteBudget)) return 'INVALID_PROTECTION';
    }
    if (c.stopPrice !== undefined) {
      if (!posInt(c.stopPrice)) return 'INVALID_STOP_PRICE';
      if (c.timeInForce === 'FOK') return 'INVALID_TIME_IN_FORCE';
      if (c.postOnly === true) return 'INVALID_POST_ONLY';
    }
    const d = c.displayQuantity;
    if (d !== undefined) {
      if (!posInt(d) || d > c.quantity || c.type !== 'limit' || (c.timeInForce ?? 'GTC') !== 'GTC') {
        return 'INVALID_DISPLAY_QUANTITY';
      }
      if (c.stopPrice !== undefined) return 'INVALID_DISPLAY_QUANTITY';
    }
    if (this.resting.some((o) => o.id === c.id) || this.stops.some((o) => o.id === c.id)) return 'DUPLICATE_ORDER_ID';
    return null;
  }

  /** Naive trigger loop: the first stop in accepted order that the last price reached, until none or the bound. */
  private triggerStops(events: BookEvent[]): void {
    for (let n = 0; n < this.maxStopTriggers; n++) {
      if (this.auction !== null) return;
      const last = this.lastPrice;
      if (last === null) return;
      const s = this.stops.find((o) => (o.side === 'buy' ? last >= o.stopPrice : last <= o.stopPrice));
      if (!s) return;
      this.stops = this.stops.filter((o) => o !== s);
      events.push({
        seq: ++this.seq,
        type: 'triggered',
        market: this.market,
        orderId: s.id,
        account: s.account,
        side: s.side,
        stopPrice: s.stopPrice,
        lastPrice: last,
      });
      const cmd: PlaceCommand = {
        id: s.id,
        account: s.account,
        side: s.side,
        type: s.type,
        quantity: s.quantity,
        ...(s.price !== null ? { price: s.price } : {}),
        ...(s.maxSlippageTicks !== null ? { maxSlippageTicks: s.maxSlippageTicks } : {}),
        ...(s.quoteBudget !== null ? { quoteBudget: s.quoteBudget } : {}),
      };
      const { limit } = this.limitOf(cmd);
      const crosses = (p: number) => (s.side === 'buy' ? p <= limit : p >= limit);
      events.push(...this.execute(cmd, s.timeInForce, s.stp, crosses, false).events);
    }
  }

  private limitOf(c: PlaceCommand): { limit: number; bestOpp: RestingOrder | undefined } {
    const bestOpp = this.side(c.side === 'buy' ? 'sell' : 'buy')[0];
    let limit: number;
    if (c.type === 'limit') limit = c.price!;
    else if (c.maxSlippageTicks !== undefined && bestOpp)
      limit = c.side === 'buy' ? bestOpp.price + c.maxSlippageTicks : bestOpp.price - c.maxSlippageTicks;
    else limit = c.side === 'buy' ? Infinity : -Infinity;
    return { limit, bestOpp };
  }

  place(c: PlaceCommand): BookEvent[] {
    const invalid = this.validate(c);
    if (invalid) return this.reject('place', c.id, c.account, invalid);
    const tif = c.timeInForce ?? 'GTC';
    const stp = c.stp ?? this.defaultStp;
    if (c.stopPrice !== undefined) {
      const last = this.lastPrice;
      if (last !== null && (c.side === 'buy' ? last >= c.stopPrice : last <= c.stopPrice)) {
        return this.reject('place', c.id, c.account, 'STOP_WOULD_TRIGGER');
      }
      const seq = ++this.seq;
      const stop: StopOrder = {
        id: c.id,
        account: c.account,
        side: c.side,
        type: c.type,
        price: c.type === 'limit' ? c.price! : null,
        stopPrice: c.stopPrice,
        quantity: c.quantity,
        timeInForce: tif,
        stp,
        maxSlippageTicks: c.maxSlippageTicks ?? null,
        quoteBudget: c.quoteBudget ?? null,
        seq,
      };
      this.stops.push(stop);
      const events: BookEvent[] = [
        {
          seq,
          type: 'accepted',
          market: this.market,
          orderId: c.id,
          account: c.account,
          side: c.side,
          orderType: c.type,
          price: stop.price,
          quantity: c.quantity,
          timeInForce: tif,
          postOnly: false,
          stp,
          maxSlippageTicks: stop.maxSlippageTicks,
          quoteBudget: stop.quoteBudget,
          stopPrice: c.stopPrice,
        },
      ];
      this.triggerStops(events);
      return events;
    }
    if (this.auction !== null) {
      if (c.type !== 'limit' || tif !== 'GTC') return this.reject('place', c.id, c.account, 'MARKET_IN_AUCTION');
      // collected without matching
      const seq = ++this.seq;
      const o: RestingOrder = {
        id: c.id,
        account: c.account,
        side: c.side,
        price: c.price!,
        quantity: c.quantity,
        remaining: c.quantity,
        filled: 0,
        timeInForce: 'GTC',
        postOnly: c.postOnly === true,
        stp,
        prioritySeq: seq,
      };
      if (c.displayQuantity !== undefined) {
        o.displayQuantity = c.displayQuantity;
        o.visible = Math.min(c.displayQuantity, c.quantity);
      }
      this.resting.push(o);
      return [
        {
          seq,
          type: 'accepted',
          market: this.market,
          orderId: c.id,
          account: c.account,
          side: c.side,
          orderType: 'limit',
          price: c.price!,
          quantity: c.quantity,
          timeInForce: 'GTC',
          postOnly: c.postOnly === true,
          stp,
          maxSlippageTicks: null,
          quoteBudget: null,
          ...(c.displayQuantity !== undefined ? { displayQuantity: c.displayQuantity } : {}),
        },
      ];
    }
    const { limit, bestOpp } = this.limitOf(c);
    const crosses = (p: number) => (c.side === 'buy' ? p <= limit : p >= limit);

    if (c.postOnly && bestOpp && crosses(bestOpp.price))
      return this.reject('place', c.id, c.account, 'POST_ONLY_WOULD_TAKE');
    if (tif === 'FOK') {
      const sim = this.clone();
      const r = sim.execute(c, tif, stp, crosses);
      if (r.filled !== c.quantity) return this.reject('place', c.id, c.account, 'FOK_NOT_FILLABLE');
    }
    const events = this.execute(c, tif, stp, crosses).events;
    this.triggerStops(events);
    return events;
  }

  private execute(
    c: PlaceCommand,
    tif: string,
    stp: StpMode,
    crosses: (p: number) => boolean,
    accept = true,
  ): { events: BookEvent[]; filled: number } {
    const m = this.market;
    const price = c.type === 'limit' ? c.price! : null;
    const events: any[] = [];
    const prioritySeq = this.seq; // a triggered stop's priority: its triggered event
    if (accept)
      events.push({
        seq: ++this.seq,
        type: 'accepted',
        market: m,
        orderId: c.id,
        account: c.account,
        side: c.side,
        orderType: c.type,
        price,
        quantity: c.quantity,
        timeInForce: tif,
        postOnly: c.postOnly === true,
        stp,
        maxSlippageTicks: c.maxSlippageTicks ?? null,
        quoteBudget: c.quoteBudget ?? null,
        ...(c.displayQuantity !== undefined ? { displayQuantity: c.displayQuantity } : {}),
      });
    const band = this.band();
    let remaining = c.quantity;
    let filled = 0;
    let budget = c.quoteBudget ?? Infinity;
    let stopReason: string | null = null;
    const cancelEv = (o: RestingOrder, reason: string, qty = o.remaining) => ({
      seq: ++this.seq,
      type: 'cancelled',
      market: m,
      orderId: o.id,
      account: o.account,
      side: o.side,
      price: o.price,
      quantity: qty,
      reason,
    });
    const removeResting = (o: RestingOrder) => {
      this.resting = this.resting.filter((x) => x !== o);
    };
    while (remaining > 0 && stopReason === null) {
      const maker = this.side(c.side === 'buy' ? 'sell' : 'buy')[0];
      if (!maker) break;
      if (!crosses(maker.price)) break;
      if (band && (maker.price < band.lo || maker.price > band.hi)) {
        // the volatility guard: this trade would print outside the band
        this.auction = { referencePrice: band.ref, lowerPrice: band.lo, upperPrice: band.hi, startSeq: ++this.seq };
        events.push({
          seq: this.seq,
          type: 'auction_started',
          market: m,
          referencePrice: band.ref,
          lowerPrice: band.lo,
          upperPrice: band.hi,
          orderId: c.id,
        });
        break;
      }
      if (maker.account === c.account && stp !== 'none') {
        if (stp === 'cancel_newest') {
          stopReason = 'stp';
        } else if (stp === 'cancel_oldest') {
          events.push(cancelEv(maker, 'stp'));
          removeResting(maker);
        } else if (stp === 'cancel_both') {
          events.push(cancelEv(maker, 'stp'));
          removeResting(maker);
          stopReason = 'stp';
        } else {
          const d = Math.min(maker.remaining, remaining);
          if (maker.remaining === d) {
            events.push(cancelEv(maker, 'stp'));
            removeResting(maker);
          } else {
            maker.remaining -= d;
            maker.quantity -= d;
            if (maker.displayQuantity !== undefined) maker.visible = Math.min(maker.visible!, maker.remaining);
            events.push({
              seq: ++this.seq,
              type: 'reduced',
              market: m,
              orderId: maker.id,
              account: maker.account,
              side: maker.side,
              price: maker.price,
              quantity: d,
              remaining: maker.remaining,
              reason: 'stp',
            });
          }
          remaining -= d;
          const t = { id: c.id, account: c.account, side: c.side, price } as any;
          if (remaining === 0) {
            events.push({ ...cancelEv({ ...t, remaining: d }, 'stp'), price });
            return { events, filled };
          }
          events.push({
            seq: ++this.seq,
            type: 'reduced',
            market: m,
            orderId: c.id,
            account: c.account,
            side: c.side,
            price,
            quantity: d,
            remaining,
            reason: 'stp',
          });
        }
        continue;
      }
      let qty = Math.min(this.avail(maker), remaining);
      if (budget !== Infinity) {
        // largest q with q * price <= budget, by plain search from the top (small numbers in tests)
        let affordable = Math.min(qty, Math.floor(budget / maker.price));
        while (affordable * maker.price > budget) affordable--;
        qty = affordable;
        if (qty === 0) {
          stopReason = 'protection';
          break;
        }
        budget -= qty * maker.price;
      }
      remaining -= qty;
      filled += qty;
      maker.remaining -= qty;
      maker.filled += qty;
      if (maker.displayQuantity !== undefined) maker.visible! -= qty;
      this.lastPrice = maker.price;
      events.push({
        seq: ++this.seq,
        type: 'trade',
        market: m,
        price: maker.price,
        quantity: qty,
        takerOrderId: c.id,
        takerAccount: c.account,
        takerSide: c.side,
        makerOrderId: maker.id,
        makerAccount: maker.account,
        makerRemaining: maker.remaining,
        takerRemaining: remaining,
      });
      this.afterTrade(maker, events);
    }
    if (remaining > 0) {
      let reason = stopReason;
      if (reason === null && this.auction !== null && (c.type === 'market' || tif !== 'GTC')) reason = 'auction';
      if (reason === null && c.type === 'market') {
        const anyLeft = this.side(c.side === 'buy' ? 'sell' : 'buy').length > 0;
        reason = c.maxSlippageTicks !== undefined && anyLeft ? 'protection' : 'market_no_liquidity';
      }
      if (reason === null && tif !== 'GTC') reason = 'ioc_remainder';
      if (reason === null) {
        this.resting.push({
          id: c.id,
          account: c.account,
          side: c.side,
          price: c.price!,
          quantity: filled + remaining,
          remaining,
          filled,
          timeInForce: tif as any,
          postOnly: c.postOnly === true,
          stp,
          prioritySeq: accept ? events[0].seq : prioritySeq,
          ...(c.displayQuantity !== undefined
            ? { displayQuantity: c.displayQuantity, visible: Math.min(c.displayQuantity, remaining) }
            : {}),
        });
      } else {
        events.push({
          seq: ++this.seq,
          type: 'cancelled',
          market: m,
          orderId: c.id,
          account: c.account,
          side: c.side,
          price,
          quantity: remaining,
          reason,
        });
      }
    }
    return { events, filled };
  }

  cancel(id: string, account?: string): BookEvent[] {
    const s = this.stops.find((x) => x.id === id);
    if (s && (account === undefined || s.account === account)) {
      this.stops = this.stops.filter((x) => x !== s);
      return [
        {
          seq: ++this.seq,
          type: 'cancelled',
          market: this.market,
          orderId: s.id,
          account: s.account,
          side: s.side,
          price: s.price,
          quantity: s.quantity,
          reason: 'user',
        },
      ];
    }
    const o = this.resting.find((x) => x.id === id);
    if (!o || (account !== undefined && o.account !== account))
      return this.reject('cancel', id, account, 'UNKNOWN_ORDER');
    this.resting = this.resting.filter((x) => x !== o);
    return [
      {
        seq: ++this.seq,
        type: 'cancelled',
        market: this.market,
        orderId: o.id,
        account: o.account,
        side: o.side,
        price: o.price,
        quantity: o.remaining,
        reason: 'user',
      },
    ];
  }

  amend(c: AmendCommand): BookEvent[] {
    const o = this.resting.find((x) => x.id === c.id);
    if (!o || (c.account !== undefined && o.account !== c.account)) {
      return this.reject('amend', c.id, c.account, 'UNKNOWN_ORDER');
    }
    const price = c.price ?? o.price;
    const quantity = c.quantity ?? o.remaining;
    if (!posInt(price)) return this.reject('amend', c.id, o.account, 'INVALID_PRICE');
    if (!posInt(quantity)) return this.reject('amend', c.id, o.account, 'INVALID_QUANTITY');
    if (price === o.price && quantity === o.remaining) return this.reject('amend', c.id, o.account, 'AMEND_NO_CHANGE');
    const bestOpp = this.side(o.side === 'buy' ? 'sell' : 'buy')[0];
    if (this.auction === null && bestOpp && (o.side === 'buy' ? bestOpp.price <= price : bestOpp.price >= price)) {
      return this.reject('amend', c.id, o.account, 'AMEND_WOULD_TAKE');
    }
    const seq = ++this.seq;
    const oldPrice = o.price;
    const oldRemaining = o.remaining;
    const priorityKept = price === oldPrice && quantity < oldRemaining;
    o.price = price;
    o.remaining = quantity;
    o.quantity = o.filled + quantity;
    if (!priorityKept) o.prioritySeq = seq;
    if (o.displayQuantity !== undefined) {
      o.visible = priorityKept ? Math.min(o.visible!, quantity) : Math.min(o.displayQuantity, quantity);
    }
    return [
      {
        seq,
        type: 'amended',
        market: this.market,
        orderId: o.id,
        account: o.account,
        side: o.side,
        oldPrice,
        price,
        oldRemaining,
        remaining: quantity,
        priorityKept,
      },
    ];
  }
}
