import type {
  AcceptedEvent,
  AmendCommand,
  AmendResult,
  AmendedEvent,
  AuctionEndedEvent,
  AuctionStartedEvent,
  AuctionState,
  BookEvent,
  CancelReason,
  CancelResult,
  CancelledEvent,
  CommandKind,
  Depth,
  DepthLevel,
  EndAuctionResult,
  MarketPhase,
  OrderBookOptions,
  OrderBookSnapshot,
  OrderStatus,
  PlaceCommand,
  PlaceResult,
  ReducedEvent,
  RefilledEvent,
  RejectReason,
  RejectedEvent,
  RestingOrder,
  Side,
  StopOrder,
  StpMode,
  TimeInForce,
  TradeEvent,
  TriggeredEvent,
} from './types.ts';

// Internal representation
// -----------------------
// Each side keeps its price levels in an array sorted by `key` ascending, best level LAST, so that consuming the best
// level (the common case while matching) is an O(1) pop and new levels near the top of book are inserted near the end.
// key = price for bids, -price for asks. A Map price -> level gives O(1) access for adds at an existing price.
// Each level is an intrusive doubly-linked FIFO list of order nodes; a Map id -> node gives O(1) cancel/amend/lookup.
// Nodes and levels are recycled through bounded free lists to keep allocation (and GC pressure) off the hot path.

class OrderNode {
  id = '';
  account = '';
  side: Side = 'buy';
  price = 0;
  /** filled + remaining (changes with amend and STP decrement) */
  quantity = 0;
  remaining = 0;
  filled = 0;
  timeInForce: TimeInForce = 'GTC';
  postOnly = false;
  stp: StpMode = 'none';
  prioritySeq = 0;
  /** Icebergs only: display quantity (0 for a plain order) and the slice shown now. */
  display = 0;
  visible = 0;
  prev: OrderNode | null = null;
  next: OrderNode | null = null;
  level: PriceLevel | null = null;
}

class PriceLevel {
  price = 0;
  key = 0;
  /** Executable open quantity (hidden iceberg parts included). */
  total = 0;
  /** The hidden part of `total` (icebergs' remaining - visible); depth shows total - hidden. */
  hidden = 0;
  count = 0;
  head: OrderNode | null = null;
  tail: OrderNode | null = null;
}

class BookSide {
  /** 1 for bids, -1 for asks: key = price * sign */
  readonly sign: number;
  readonly side: Side;
  /** sorted by key ascending; best level last */
  readonly levels: PriceLevel[] = [];
  readonly byPrice = new Map<number, PriceLevel>();

  constructor(side: Side) {
    this.side = side;
    this.sign = side === 'buy' ? 1 : -1;
  }

  best(): PriceLevel | undefined {
    const n = this.levels.length;
    return n === 0 ? undefined : this.levels[n - 1];
  }

  /** index of the first level whose key is >= key */
  lowerBound(key: number): number {
    const levels = this.levels;
    let lo = 0;
    let hi = levels.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (levels[mid]!.key < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  insertLevel(level: PriceLevel): void {
    const levels = this.levels;
    const n = levels.length;
    // fast paths: new best, or just below the best
    if (n === 0 || levels[n - 1]!.key < level.key) {
      levels.push(level);
    } else {
      levels.splice(this.lowerBound(level.key), 0, level);
    }
    this.byPrice.set(level.price, level);
  }

  removeLevel(level: PriceLevel): void {
    const levels = this.levels;
    const n = levels.length;
    if (levels[n - 1] === level) {
      levels.pop();
    } else {
      const i = this.lowerBound(level.key);
      if (levels[i] !== level) throw new Error('matching-engine: level index corrupted');
      levels.splice(i, 1);
    }
    this.byPrice.delete(level.price);
  }
}

function isStpMode(v: unknown): v is StpMode {
  return v === 'none' || v === 'cancel_newest' || v === 'cancel_oldest' || v === 'cancel_both' || v === 'decrement';
}
const POOL_LIMIT = 65_536;

function isPositiveSafeInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
}
function isNonEmptyString(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0;
}

// Why a sweep stopped before the taker was done.
const STOP_NONE = 0;
const STOP_STP = 1;
const STOP_PROTECTION = 2;

/**
 * A single-market, single-writer limit order book with price-time priority. Deterministic: the same sequence of
 * commands from the same state produces the same events, byte for byte. No I/O, no clock, no randomness.
 */
export class OrderBook {
  readonly market: string;
  readonly defaultStp: StpMode;
  readonly maxPrice: number;
  readonly maxQuantity: number;
  readonly maxStopTriggers: number;
  /** Volatility band half-width in basis points of the reference price; 0: no guard. */
  readonly bandBps: number;

  private readonly bids = new BookSide('buy');
  private readonly asks = new BookSide('sell');
  private readonly byId = new Map<string, OrderNode>();
  private _seq = 0;
  /** Price of the last trade; stops trigger on it. */
  private _lastPrice: number | null = null;
  // Waiting stop orders: by id, and per side sorted most-eligible first (buys by stopPrice ascending, sells by
  // stopPrice descending; seq breaks ties). Empty on the plain path, which then only pays a size check per place.
  private readonly stopsById = new Map<string, StopOrder>();
  private readonly buyStops: StopOrder[] = [];
  private readonly sellStops: StopOrder[] = [];

  /** The running auction (null: continuous trading). The plain path only pays a null check per place. */
  private auction: { referencePrice: number; lowerPrice: number; upperPrice: number; startSeq: number } | null = null;

  private nodePool: OrderNode[] = [];
  private levelPool: PriceLevel[] = [];

  // sweep outputs (avoid allocating a result object per sweep)
  private sweepRemaining = 0;
  private sweepFilled = 0;
  private sweepStop = STOP_NONE;
  private sweepStpCancelled = 0;

  constructor(options: OrderBookOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('OrderBook: options object required');
    if (!isNonEmptyString(options.market)) throw new TypeError('OrderBook: options.market must be a non-empty string');
    const defaultStp = options.defaultStp ?? 'cancel_newest';
    if (!isStpMode(defaultStp)) throw new TypeError(`OrderBook: invalid defaultStp ${String(defaultStp)}`);
    const maxPrice = options.maxPrice ?? Number.MAX_SAFE_INTEGER;
    const maxQuantity = options.maxQuantity ?? Number.MAX_SAFE_INTEGER;
    const maxStopTriggers = options.maxStopTriggers ?? 100;
    if (!isPositiveSafeInt(maxPrice)) throw new TypeError('OrderBook: maxPrice must be a positive safe integer');
    if (!isPositiveSafeInt(maxQuantity)) throw new TypeError('OrderBook: maxQuantity must be a positive safe integer');
    if (!isPositiveSafeInt(maxStopTriggers)) {
      throw new TypeError('OrderBook: maxStopTriggers must be a positive safe integer');
    }
    const bandBps = options.bandBps ?? 0;
    if (!(Number.isSafeInteger(bandBps) && bandBps >= 0 && bandBps <= 10_000)) {
      throw new TypeError('OrderBook: bandBps must be an integer from 0 to 10000');
    }
    this.bandBps = bandBps;
    this.maxStopTriggers = maxStopTriggers;
    this.market = options.market;
    this.defaultStp = defaultStp;
    this.maxPrice = maxPrice;
    this.maxQuantity = maxQuantity;
  }

  /** Sequence number of the last event emitted (0 before the first). */
  get seq(): number {
    return this._seq;
  }

  /** Price of the last trade (null before the first). */
  get lastPrice(): number | null {
    return this._lastPrice;
  }

  get phase(): MarketPhase {
    return this.auction === null ? 'continuous' : 'auction';
  }

  // ---------------------------------------------------------------------------------------------------------------
  // place

  place(cmd: PlaceCommand): PlaceResult {
    if (cmd === null || typeof cmd !== 'object') throw new TypeError('OrderBook.place: command object required');
    const reason = this.validatePlace(cmd);
    if (reason !== null) return this.rejectPlace(cmd, reason);
    if (cmd.stopPrice !== undefined) return this.placeStop(cmd);
    if (this.auction !== null) return this.placeInAuction(cmd);

    const id = cmd.id;
    const account = cmd.account;
    const side = cmd.side;
    const isMarket = cmd.type === 'market';
    const tif: TimeInForce = cmd.timeInForce ?? 'GTC';
    const postOnly = cmd.postOnly === true;
    const stp: StpMode = cmd.stp ?? this.defaultStp;
    const quantity = cmd.quantity;
    const maxSlippageTicks = cmd.maxSlippageTicks ?? null;
    const quoteBudget = cmd.quoteBudget ?? null;
    const opposite = side === 'buy' ? this.asks : this.bids;
    const best = opposite.best();

    const threshold = this.crossThreshold(opposite, side, isMarket, cmd.price, maxSlippageTicks, best);
    const protectedByTicks = isMarket && maxSlippageTicks !== null && best !== undefined;
    // The volatility guard is one more threshold: the sweep stops at the band edge (see afterBandStop).
    const band = this.bandBps === 0 ? -Infinity : this.bandKey(opposite);
    const sweepThreshold = band > threshold ? band : threshold;
    const reference = this._lastPrice;
    const nearBreach = this.breachesNearEdge(opposite, best, threshold, band);

    if (postOnly && best !== undefined && best.key >= threshold) return this.rejectPlace(cmd, 'POST_ONLY_WOULD_TAKE');
    const budget = quoteBudget === null ? Infinity : quoteBudget;
    if (tif === 'FOK' && (nearBreach || !this.canFill(opposite, sweepThreshold, account, stp, quantity, budget))) {
      return this.rejectPlace(cmd, 'FOK_NOT_FILLABLE');
    }
    const display = cmd.displayQuantity ?? 0;

    const fills: TradeEvent[] = [];
    const price = isMarket ? null : (cmd.price as number);
    const accepted: AcceptedEvent = {
      seq: ++this._seq,
      type: 'accepted',
      market: this.market,
      orderId: id,
      account,
      side,
      orderType: isMarket ? 'market' : 'limit',
      price,
      quantity,
      timeInForce: tif,
      postOnly,
      stp,
      maxSlippageTicks,
      quoteBudget,
    };
    if (display !== 0) accepted.displayQuantity = display;
    // an array literal sized for the common case (the order just rests); it grows when there are fills
    const events: BookEvent[] = [accepted];

    let remaining = quantity;
    let filled = 0;
    let stop = STOP_NONE;
    let stpReduced = 0;
    if (best !== undefined && best.key >= sweepThreshold && !nearBreach) {
      this.sweep(opposite, sweepThreshold, id, account, side, price, stp, remaining, budget, events, fills);
      remaining = this.sweepRemaining;
      filled = this.sweepFilled;
      stop = this.sweepStop;
      stpReduced = this.sweepStpCancelled;
    }
    if ((band > threshold || nearBreach) && remaining > 0 && stop === STOP_NONE) {
      this.afterBandStop(opposite, threshold, reference as number, id, events);
    }

    let status: OrderStatus;
    let cancelReason: CancelReason | null = null;
    let cancelledQuantity = 0;
    let resting = 0;
    if (remaining === 0) {
      // Nothing left: either the last of it traded (filled), or STP decrement removed the last of it (the sweep
      // emitted the taker's cancelled event). Quantity removed by decrement is reported as cancelled either way.
      cancelledQuantity = stpReduced;
      if (stop === STOP_STP) {
        status = 'cancelled';
        cancelReason = 'stp';
      } else {
        status = 'filled';
      }
    } else {
      if (stop === STOP_STP) {
        cancelReason = 'stp';
      } else if (this.auction !== null && (isMarket || tif !== 'GTC')) {
        cancelReason = 'auction';
      } else if (isMarket) {
        if (stop === STOP_PROTECTION) cancelReason = 'protection';
        else if (protectedByTicks && opposite.levels.length > 0) cancelReason = 'protection';
        else cancelReason = 'market_no_liquidity';
      } else if (tif !== 'GTC') {
        cancelReason = 'ioc_remainder';
      }
      if (cancelReason === null) {
        // quantity removed by STP decrement is no longer part of the order
        const size = filled + remaining;
        this.rest(id, account, side, cmd.price as number, size, remaining, filled, tif, postOnly, stp, accepted.seq);
        if (display !== 0) this.makeIceberg(this.byId.get(id)!, display);
        resting = remaining;
        cancelledQuantity = stpReduced;
        status = filled > 0 ? 'partially_filled' : 'new';
      } else {
        const ev: CancelledEvent = {
          seq: ++this._seq,
          type: 'cancelled',
          market: this.market,
          orderId: id,
          account,
          side,
          price,
          quantity: remaining,
          reason: cancelReason,
        };
        events.push(ev);
        cancelledQuantity = remaining + stpReduced;
        status = 'cancelled';
      }
    }
    if (this.stopsById.size !== 0) this.processStops(events);
    return {
      orderId: id,
      account,
      status,
      filledQuantity: filled,
      remainingQuantity: resting,
      cancelledQuantity,
      rejectReason: null,
      cancelReason,
      fills,
      events,
    };
  }

  private validatePlace(cmd: PlaceCommand): RejectReason | null {
    if (!isNonEmptyString(cmd.id)) return 'INVALID_ID';
    if (!isNonEmptyString(cmd.account)) return 'INVALID_ACCOUNT';
    const side = cmd.side;
    if (side !== 'buy' && side !== 'sell') return 'INVALID_SIDE';
    const type = cmd.type;
    if (type !== 'limit' && type !== 'market') return 'INVALID_TYPE';
    const tif = cmd.timeInForce;
    if (tif !== undefined && tif !== 'GTC' && tif !== 'IOC' && tif !== 'FOK') return 'INVALID_TIME_IN_FORCE';
    if (cmd.stp !== undefined && !isStpMode(cmd.stp)) return 'INVALID_STP';
    if (cmd.postOnly !== undefined && typeof cmd.postOnly !== 'boolean') return 'INVALID_POST_ONLY';
    if (!isPositiveSafeInt(cmd.quantity) || cmd.quantity > this.maxQuantity) return 'INVALID_QUANTITY';
    if (type === 'limit') {
      if (!isPositiveSafeInt(cmd.price) || cmd.price > this.maxPrice) return 'INVALID_PRICE';
      if (cmd.maxSlippageTicks !== undefined || cmd.quoteBudget !== undefined) return 'INVALID_PROTECTION';
      if (cmd.postOnly === true && cmd.timeInForce !== undefined && cmd.timeInForce !== 'GTC') {
        return 'INVALID_POST_ONLY';
      }
    } else {
      if (cmd.price !== undefined) return 'INVALID_PRICE';
      if (cmd.postOnly === true) return 'INVALID_POST_ONLY';
      const t = cmd.maxSlippageTicks;
      if (t !== undefined && !(typeof t === 'number' && Number.isSafeInteger(t) && t >= 0)) {
        return 'INVALID_PROTECTION';
      }
      if (cmd.quoteBudget !== undefined && !isPositiveSafeInt(cmd.quoteBudget)) return 'INVALID_PROTECTION';
    }
    if (cmd.stopPrice !== undefined) {
      if (!isPositiveSafeInt(cmd.stopPrice) || cmd.stopPrice > this.maxPrice) return 'INVALID_STOP_PRICE';
      if (tif === 'FOK') return 'INVALID_TIME_IN_FORCE';
      if (cmd.postOnly === true) return 'INVALID_POST_ONLY';
    }
    const d = cmd.displayQuantity;
    if (d !== undefined) {
      // an iceberg must be able to rest: GTC limit, not a stop, and show at least one lot of at most its quantity
      if (!isPositiveSafeInt(d) || d > cmd.quantity || type !== 'limit' || (tif !== undefined && tif !== 'GTC')) {
        return 'INVALID_DISPLAY_QUANTITY';
      }
      if (cmd.stopPrice !== undefined) return 'INVALID_DISPLAY_QUANTITY';
    }
    if (this.byId.has(cmd.id) || (this.stopsById.size !== 0 && this.stopsById.has(cmd.id))) {
      return 'DUPLICATE_ORDER_ID';
    }
    return null;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // icebergs

  /** Turn a just-rested node into an iceberg showing at most `display` lots. */
  private makeIceberg(node: OrderNode, display: number): void {
    const visible = display < node.remaining ? display : node.remaining;
    node.display = display;
    node.visible = visible;
    node.level!.hidden += node.remaining - visible;
  }

  /**
   * An iceberg's shown slice is used up with quantity left: show the next slice at the back of its level, with a new
   * time priority (the refilled event's seq).
   */
  private refill(node: OrderNode, events: BookEvent[]): void {
    const level = node.level!;
    const slice = node.display < node.remaining ? node.display : node.remaining;
    node.visible = slice;
    level.hidden -= slice;
    const seq = ++this._seq;
    node.prioritySeq = seq;
    if (level.tail !== node) {
      // move to the tail; totals and count are unchanged
      if (node.prev === null) level.head = node.next;
      else node.prev.next = node.next;
      node.next!.prev = node.prev;
      node.prev = level.tail;
      node.next = null;
      level.tail!.next = node;
      level.tail = node;
    }
    const ev: RefilledEvent = {
      seq,
      type: 'refilled',
      market: this.market,
      orderId: node.id,
      account: node.account,
      side: node.side,
      price: node.price,
      visible: slice,
    };
    events.push(ev);
  }

  /** Set a resting node's open quantity in place (amend down, STP decrement), keeping an iceberg's slice consistent. */
  private setRemaining(node: OrderNode, remaining: number): void {
    const level = node.level!;
    level.total -= node.remaining - remaining;
    if (node.display !== 0) {
      const visible = node.visible < remaining ? node.visible : remaining;
      level.hidden += remaining - visible - (node.remaining - node.visible);
      node.visible = visible;
    }
    node.remaining = remaining;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // volatility guard and call auction

  /**
   * The band as a threshold in `opposite`'s key space (a level may trade iff key >= it), around the last trade price:
   * half-width floor(ref * bandBps / 10000) ticks, at least one tick. -Infinity before the first trade.
   */
  /**
   * Threshold in the opposite side's key space (a level crosses iff level.key >= threshold): the limit price; for a
   * market order its slippage bound from the best opposite price, or no bound.
   */
  private crossThreshold(
    opposite: BookSide,
    side: 'buy' | 'sell',
    isMarket: boolean,
    price: number | null | undefined,
    maxSlippageTicks: number | null | undefined,
    best: PriceLevel | undefined,
  ): number {
    if (!isMarket) return opposite.sign * (price as number);
    if (maxSlippageTicks == null || best === undefined) return -Infinity;
    return opposite.sign * (side === 'buy' ? best.price + maxSlippageTicks : best.price - maxSlippageTicks);
  }

  /**
   * The best opposite price may lie beyond the band's near edge (an offer far below the last price): the very first
   * trade would print outside the band. Later levels are only further away from it, so one check suffices.
   */
  private breachesNearEdge(opposite: BookSide, best: PriceLevel | undefined, threshold: number, band: number): boolean {
    return band !== -Infinity && best !== undefined && best.key >= threshold && best.key > this.nearKey(opposite);
  }

  private bandKey(opposite: BookSide): number {
    const ref = this._lastPrice;
    if (ref === null) return -Infinity;
    const w = bandWidth(ref, this.bandBps);
    return opposite.sign === -1 ? -(ref + w) : ref - w;
  }

  /** The band's near edge in `opposite`'s key space: a level with a larger key is better than the band allows. */
  private nearKey(opposite: BookSide): number {
    const ref = this._lastPrice as number;
    const w = bandWidth(ref, this.bandBps);
    return opposite.sign === -1 ? -(ref - w) : ref + w;
  }

  /**
   * A taker stopped at the band edge. If the book still offers it a price within its own limit (beyond the band),
   * the trade it would make is outside the band: start the auction. `ref`: the last price before this taker swept.
   */
  private afterBandStop(
    opposite: BookSide,
    ownThreshold: number,
    ref: number,
    orderId: string,
    events: BookEvent[],
  ): void {
    const best = opposite.best();
    if (best === undefined || best.key < ownThreshold) return;
    const w = bandWidth(ref, this.bandBps);
    const seq = ++this._seq;
    this.auction = { referencePrice: ref, lowerPrice: ref - w, upperPrice: ref + w, startSeq: seq };
    const ev: AuctionStartedEvent = {
      seq,
      type: 'auction_started',
      market: this.market,
      referencePrice: ref,
      lowerPrice: ref - w,
      upperPrice: ref + w,
      orderId,
    };
    events.push(ev);
  }

  /** During an auction, a (validated, non-stop) order is only collected: GTC limit orders rest, even crossing. */
  private placeInAuction(cmd: PlaceCommand): PlaceResult {
    if (cmd.type !== 'limit' || (cmd.timeInForce !== undefined && cmd.timeInForce !== 'GTC')) {
      return this.rejectPlace(cmd, 'MARKET_IN_AUCTION');
    }
    const stp: StpMode = cmd.stp ?? this.defaultStp;
    const postOnly = cmd.postOnly === true;
    const accepted: AcceptedEvent = {
      seq: ++this._seq,
      type: 'accepted',
      market: this.market,
      orderId: cmd.id,
      account: cmd.account,
      side: cmd.side,
      orderType: 'limit',
      price: cmd.price as number,
      quantity: cmd.quantity,
      timeInForce: 'GTC',
      postOnly,
      stp,
      maxSlippageTicks: null,
      quoteBudget: null,
    };
    const display = cmd.displayQuantity ?? 0;
    if (display !== 0) accepted.displayQuantity = display;
    const q = cmd.quantity;
    this.rest(cmd.id, cmd.account, cmd.side, cmd.price as number, q, q, 0, 'GTC', postOnly, stp, accepted.seq);
    if (display !== 0) this.makeIceberg(this.byId.get(cmd.id)!, display);
    return {
      orderId: cmd.id,
      account: cmd.account,
      status: 'new',
      filledQuantity: 0,
      remainingQuantity: q,
      cancelledQuantity: 0,
      rejectReason: null,
      cancelReason: null,
      fills: [],
      events: [accepted],
    };
  }

  /**
   * The running auction with its indicative uncross, or null in continuous trading. `displayedOnly`: compute the
   * indicative price and volume from the displayed book only (what may be published: hidden iceberg quantity must not
   * show through it); the uncross itself also executes hidden quantity.
   */
  auctionState(displayedOnly = false): AuctionState | null {
    const a = this.auction;
    if (a === null) return null;
    const u = this.uncrossPrice(a.referencePrice, displayedOnly);
    return {
      ...a,
      indicativePrice: u === null ? null : u.price,
      indicativeVolume: u === null ? 0 : u.volume,
    };
  }

  /**
   * The uncross price: among the crossed range's limit prices (and the reference price when inside the range), the
   * one that maximises the executable volume min(buy at or above, sell at or below); ties go to the smallest
   * imbalance |buy - sell|, then the price closest to the reference, then the lower price. Hidden iceberg quantity is
   * executable and counts. null when the book does not cross.
   */
  private uncrossPrice(ref: number, displayedOnly = false): { price: number; volume: number } | null {
    const bb = this.bids.best();
    const ba = this.asks.best();
    if (bb === undefined || ba === undefined || bb.price < ba.price) return null;
    const lo = ba.price;
    const hi = bb.price;
    const candidates: number[] = [];
    for (const l of this.bids.levels) if (l.price >= lo) candidates.push(l.price);
    for (const l of this.asks.levels) if (l.price <= hi) candidates.push(l.price);
    if (ref >= lo && ref <= hi) candidates.push(ref);
    let best: { price: number; volume: number; imbalance: number } | null = null;
    for (const p of candidates) {
      let buy = 0;
      let sell = 0;
      for (const l of this.bids.levels) if (l.price >= p) buy += displayedOnly ? l.total - l.hidden : l.total;
      for (const l of this.asks.levels) if (l.price <= p) sell += displayedOnly ? l.total - l.hidden : l.total;
      const volume = buy < sell ? buy : sell;
      const imbalance = buy > sell ? buy - sell : sell - buy;
      if (
        best === null ||
        volume > best.volume ||
        (volume === best.volume &&
          (imbalance < best.imbalance ||
            (imbalance === best.imbalance &&
              (Math.abs(p - ref) < Math.abs(best.price - ref) ||
                (Math.abs(p - ref) === Math.abs(best.price - ref) && p < best.price)))))
      ) {
        best = { price: p, volume, imbalance };
      }
    }
    return best === null ? null : { price: best.price, volume: best.volume };
  }

  /**
   * End the auction (a journaled command: the host decides when, the book never reads a clock). Uncross: all
   * crossing orders trade at the uncross price (see uncrossPrice), bids and asks each in price-time order; of two
   * orders of one account, the newer is cancelled (reason stp) unless its STP mode is none. When such a cancel leaves
   * the book still crossed, another round runs on what is left. Then continuous trading resumes (stops may trigger).
   */
  endAuction(): EndAuctionResult {
    const a = this.auction;
    if (a === null) {
      const ev = this.rejected('end_auction', null, null, 'NOT_IN_AUCTION');
      return { ok: false, rejectReason: 'NOT_IN_AUCTION', price: null, volume: 0, fills: [], events: [ev] };
    }
    const events: BookEvent[] = [];
    const fills: TradeEvent[] = [];
    let price: number | null = null;
    let volume = 0;
    for (;;) {
      const u = this.uncrossPrice(a.referencePrice);
      if (u === null) break;
      const traded = this.uncrossAt(u.price, events, fills);
      if (traded > 0) {
        price = u.price;
        volume += traded;
      }
    }
    this.auction = null;
    const ev: AuctionEndedEvent = {
      seq: ++this._seq,
      type: 'auction_ended',
      market: this.market,
      referencePrice: a.referencePrice,
      price,
      volume,
    };
    events.push(ev);
    if (this.stopsById.size !== 0) this.processStops(events);
    return { ok: true, rejectReason: null, price, volume, fills, events };
  }

  /** One uncross round at price p; returns the lots traded. Always trades or cancels at least once. */
  private uncrossAt(p: number, events: BookEvent[], fills: TradeEvent[]): number {
    let traded = 0;
    for (;;) {
      const bl = this.bids.best();
      const al = this.asks.best();
      if (bl === undefined || al === undefined || bl.price < p || al.price > p) return traded;
      const b = bl.head!;
      const s = al.head!;
      const bNewer = b.prioritySeq > s.prioritySeq;
      const taker = bNewer ? b : s;
      const maker = bNewer ? s : b;
      if (b.account === s.account && taker.stp !== 'none') {
        this.cancelNode(taker, 'stp', events);
        continue;
      }
      const bAvail = b.display === 0 ? b.remaining : b.visible;
      const sAvail = s.display === 0 ? s.remaining : s.visible;
      const qty = bAvail < sAvail ? bAvail : sAvail;
      for (const n of [b, s]) {
        n.remaining -= qty;
        n.filled += qty;
        n.level!.total -= qty;
        if (n.display !== 0) n.visible -= qty;
      }
      traded += qty;
      this._lastPrice = p;
      const trade: TradeEvent = {
        seq: ++this._seq,
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
      };
      events.push(trade);
      fills.push(trade);
      for (const n of [b, s]) {
        if (n.remaining === 0) this.removeNode(n);
        else if (n.display !== 0 && n.visible === 0) this.refill(n, events);
      }
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // stop orders

  /** Accept a (validated) stop order: it waits off the book until the last trade price reaches its stop price. */
  private placeStop(cmd: PlaceCommand): PlaceResult {
    const stopPrice = cmd.stopPrice as number;
    const last = this._lastPrice;
    if (last !== null && (cmd.side === 'buy' ? last >= stopPrice : last <= stopPrice)) {
      return this.rejectPlace(cmd, 'STOP_WOULD_TRIGGER');
    }
    const isMarket = cmd.type === 'market';
    const stop: StopOrder = {
      id: cmd.id,
      account: cmd.account,
      side: cmd.side,
      type: cmd.type,
      price: isMarket ? null : (cmd.price as number),
      stopPrice,
      quantity: cmd.quantity,
      timeInForce: cmd.timeInForce ?? 'GTC',
      stp: cmd.stp ?? this.defaultStp,
      maxSlippageTicks: cmd.maxSlippageTicks ?? null,
      quoteBudget: cmd.quoteBudget ?? null,
      seq: ++this._seq,
    };
    const accepted: AcceptedEvent = {
      seq: stop.seq,
      type: 'accepted',
      market: this.market,
      orderId: stop.id,
      account: stop.account,
      side: stop.side,
      orderType: stop.type,
      price: stop.price,
      quantity: stop.quantity,
      timeInForce: stop.timeInForce,
      postOnly: false,
      stp: stop.stp,
      maxSlippageTicks: stop.maxSlippageTicks,
      quoteBudget: stop.quoteBudget,
      stopPrice,
    };
    this.insertStop(stop);
    const events: BookEvent[] = [accepted];
    this.processStops(events);
    return {
      orderId: stop.id,
      account: stop.account,
      status: 'new',
      filledQuantity: 0,
      remainingQuantity: stop.quantity,
      cancelledQuantity: 0,
      rejectReason: null,
      cancelReason: null,
      fills: [],
      events,
    };
  }

  private insertStop(stop: StopOrder): void {
    const list = stop.side === 'buy' ? this.buyStops : this.sellStops;
    const dir = stop.side === 'buy' ? 1 : -1;
    // first index that comes after `stop` (more eligible first; equal stop prices by seq)
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const o = list[mid]!;
      const d = (o.stopPrice - stop.stopPrice) * dir;
      if (d < 0 || (d === 0 && o.seq < stop.seq)) lo = mid + 1;
      else hi = mid;
    }
    list.splice(lo, 0, stop);
    this.stopsById.set(stop.id, stop);
  }

  private removeStop(stop: StopOrder): void {
    const list = stop.side === 'buy' ? this.buyStops : this.sellStops;
    list.splice(list.indexOf(stop), 1);
    this.stopsById.delete(stop.id);
  }

  /**
   * Trigger the stops the last trade price has reached, one at a time in accepted-seq order, each running as a taker
   * (which may move the last price and trigger more). At most `maxStopTriggers` per command: the cascade is bounded,
   * and what is still eligible then triggers after the next place command.
   */
  private processStops(events: BookEvent[]): void {
    for (let n = 0; n < this.maxStopTriggers; n++) {
      // no trades during an auction: stops wait for the uncross (which runs this again)
      if (this.auction !== null) return;
      const last = this._lastPrice;
      if (last === null) return;
      let pick: StopOrder | undefined;
      for (const s of this.buyStops) {
        if (s.stopPrice > last) break;
        if (pick === undefined || s.seq < pick.seq) pick = s;
      }
      for (const s of this.sellStops) {
        if (s.stopPrice < last) break;
        if (pick === undefined || s.seq < pick.seq) pick = s;
      }
      if (pick === undefined) return;
      this.removeStop(pick);
      const ev: TriggeredEvent = {
        seq: ++this._seq,
        type: 'triggered',
        market: this.market,
        orderId: pick.id,
        account: pick.account,
        side: pick.side,
        stopPrice: pick.stopPrice,
        lastPrice: last,
      };
      events.push(ev);
      this.runTriggered(pick, ev.seq, events);
    }
  }

  /** A triggered stop runs like a newly arrived GTC/IOC limit or market order (time priority = its trigger seq). */
  private runTriggered(s: StopOrder, prioritySeq: number, events: BookEvent[]): void {
    const isMarket = s.type === 'market';
    const opposite = s.side === 'buy' ? this.asks : this.bids;
    const best = opposite.best();
    const threshold = this.crossThreshold(opposite, s.side, isMarket, s.price, s.maxSlippageTicks, best);
    const protectedByTicks = isMarket && s.maxSlippageTicks !== null && best !== undefined;
    const band = this.bandBps === 0 ? -Infinity : this.bandKey(opposite);
    const sweepThreshold = band > threshold ? band : threshold;
    const reference = this._lastPrice;
    const nearBreach = this.breachesNearEdge(opposite, best, threshold, band);
    let remaining = s.quantity;
    let filled = 0;
    let stop = STOP_NONE;
    if (best !== undefined && best.key >= sweepThreshold && !nearBreach) {
      const budget = s.quoteBudget === null ? Infinity : s.quoteBudget;
      this.sweep(opposite, sweepThreshold, s.id, s.account, s.side, s.price, s.stp, remaining, budget, events, []);
      remaining = this.sweepRemaining;
      filled = this.sweepFilled;
      stop = this.sweepStop;
    }
    if ((band > threshold || nearBreach) && remaining > 0 && stop === STOP_NONE) {
      this.afterBandStop(opposite, threshold, reference as number, s.id, events);
    }
    if (remaining === 0) return;
    let cancelReason: CancelReason | null = null;
    if (stop === STOP_STP) cancelReason = 'stp';
    else if (this.auction !== null && (isMarket || s.timeInForce !== 'GTC')) cancelReason = 'auction';
    else if (isMarket) {
      if (stop === STOP_PROTECTION || (protectedByTicks && opposite.levels.length > 0)) cancelReason = 'protection';
      else cancelReason = 'market_no_liquidity';
    } else if (s.timeInForce !== 'GTC') cancelReason = 'ioc_remainder';
    if (cancelReason === null) {
      const p = s.price as number;
      this.rest(
        s.id,
        s.account,
        s.side,
        p,
        filled + remaining,
        remaining,
        filled,
        s.timeInForce,
        false,
        s.stp,
        prioritySeq,
      );
      return;
    }
    const ev: CancelledEvent = {
      seq: ++this._seq,
      type: 'cancelled',
      market: this.market,
      orderId: s.id,
      account: s.account,
      side: s.side,
      price: s.price,
      quantity: remaining,
      reason: cancelReason,
    };
    events.push(ev);
  }

  private rejectPlace(cmd: PlaceCommand, reason: RejectReason): PlaceResult {
    const orderId = typeof cmd.id === 'string' ? cmd.id : null;
    const account = typeof cmd.account === 'string' ? cmd.account : null;
    const ev = this.rejected('place', orderId, account, reason);
    return {
      orderId,
      account,
      status: 'rejected',
      filledQuantity: 0,
      remainingQuantity: 0,
      cancelledQuantity: 0,
      rejectReason: reason,
      cancelReason: null,
      fills: [],
      events: [ev],
    };
  }

  private rejected(command: CommandKind, orderId: string | null, account: string | null, reason: RejectReason) {
    const ev: RejectedEvent = {
      seq: ++this._seq,
      type: 'rejected',
      market: this.market,
      command,
      orderId,
      account,
      reason,
    };
    return ev;
  }

  /** Pure dry run for FOK: can `quantity` be traded right now (within threshold, budget and STP rules)? */
  private canFill(
    opposite: BookSide,
    threshold: number,
    account: string,
    stp: StpMode,
    quantity: number,
    budget: number,
  ): boolean {
    let need = quantity;
    let budgetLeft = budget;
    const levels = opposite.levels;
    for (let i = levels.length - 1; i >= 0; i--) {
      const level = levels[i]!;
      if (level.key < threshold) return false;
      const p = level.price;
      if (stp === 'none') {
        const take = level.total < need ? level.total : need;
        const affordable = floorDiv(budgetLeft, p);
        if (affordable < take) return false;
        need -= take;
        if (need === 0) return true;
        budgetLeft -= take * p;
      } else if (level.hidden !== 0) {
        const r = this.canFillIcebergLevel(level, account, stp, need, budgetLeft);
        if (r === null) return false;
        if (r.need === 0) return true;
        need = r.need;
        budgetLeft = r.budgetLeft;
      } else {
        for (let node = level.head; node !== null; node = node.next) {
          if (node.account === account) {
            if (stp === 'cancel_oldest') continue;
            return false;
          }
          const take = node.remaining < need ? node.remaining : need;
          const affordable = floorDiv(budgetLeft, p);
          if (affordable < take) return false;
          need -= take;
          if (need === 0) return true;
          budgetLeft -= take * p;
        }
      }
    }
    return false;
  }

  /**
   * canFill for one level holding hidden iceberg quantity, with STP: refills reorder the level while it trades, so
   * simulate the queue. null: the FOK cannot fill (STP stop or budget); else what is still needed after the level.
   */
  private canFillIcebergLevel(
    level: PriceLevel,
    account: string,
    stp: StpMode,
    need: number,
    budget: number,
  ): { need: number; budgetLeft: number } | null {
    const queue: Array<{ own: boolean; rem: number; vis: number; display: number }> = [];
    for (let node = level.head; node !== null; node = node.next) {
      const vis = node.display === 0 ? node.remaining : node.visible;
      queue.push({ own: node.account === account, rem: node.remaining, vis, display: node.display });
    }
    const p = level.price;
    let budgetLeft = budget;
    for (let i = 0; i < queue.length; i++) {
      const e = queue[i]!;
      if (e.own) {
        if (stp === 'cancel_oldest') continue;
        return null;
      }
      const take = e.vis < need ? e.vis : need;
      if (floorDiv(budgetLeft, p) < take) return null;
      need -= take;
      if (need === 0) return { need, budgetLeft };
      budgetLeft -= take * p;
      e.rem -= take;
      e.vis -= take;
      if (e.rem > 0) {
        e.vis = e.display < e.rem ? e.display : e.rem;
        queue.push(e);
      }
    }
    return { need, budgetLeft };
  }

  /**
   * Match an incoming order against `opposite` while levels cross `threshold`. Writes sweepRemaining, sweepFilled,
   * sweepStop and sweepStpCancelled (taker quantity removed by STP decrement).
   */
  private sweep(
    opposite: BookSide,
    threshold: number,
    takerId: string,
    takerAccount: string,
    takerSide: Side,
    takerPrice: number | null,
    stp: StpMode,
    quantity: number,
    budget: number,
    events: BookEvent[],
    fills: TradeEvent[],
  ): void {
    let remaining = quantity;
    let filled = 0;
    let stop = STOP_NONE;
    let stpCancelled = 0;
    let budgetLeft = budget;
    const market = this.market;
    const levels = opposite.levels;
    outer: while (remaining > 0) {
      const n = levels.length;
      if (n === 0) break;
      const level = levels[n - 1]!;
      if (level.key < threshold) break;
      const price = level.price;
      let node = level.head;
      while (node !== null && remaining > 0) {
        const next = node.next;
        if (node.account === takerAccount && stp !== 'none') {
          // self-trade prevention
          if (stp === 'cancel_oldest') {
            this.cancelNode(node, 'stp', events);
          } else if (stp === 'cancel_newest') {
            stop = STOP_STP;
            break outer;
          } else if (stp === 'cancel_both') {
            this.cancelNode(node, 'stp', events);
            stop = STOP_STP;
            break outer;
          } else {
            // decrement: the smaller is cancelled, the larger reduced by the smaller; equal: both cancelled
            const d = node.remaining < remaining ? node.remaining : remaining;
            if (node.remaining === d) {
              this.cancelNode(node, 'stp', events);
            } else {
              this.reduceNode(node, d, events);
            }
            remaining -= d;
            stpCancelled += d;
            if (remaining === 0) {
              const ev: CancelledEvent = {
                seq: ++this._seq,
                type: 'cancelled',
                market,
                orderId: takerId,
                account: takerAccount,
                side: takerSide,
                price: takerPrice,
                quantity: d,
                reason: 'stp',
              };
              events.push(ev);
              stop = STOP_STP;
              break outer;
            } else {
              const ev: ReducedEvent = {
                seq: ++this._seq,
                type: 'reduced',
                market,
                orderId: takerId,
                account: takerAccount,
                side: takerSide,
                price: takerPrice,
                quantity: d,
                remaining,
                reason: 'stp',
              };
              events.push(ev);
            }
          }
          node = next;
          continue;
        }
        // an iceberg trades its shown slice, then refills at the back of the level
        const avail = node.display === 0 ? node.remaining : node.visible;
        let qty = avail < remaining ? avail : remaining;
        if (budgetLeft !== Infinity) {
          const affordable = floorDiv(budgetLeft, price);
          if (affordable < qty) qty = affordable;
          if (qty === 0) {
            stop = STOP_PROTECTION;
            break outer;
          }
          budgetLeft -= qty * price;
        }
        remaining -= qty;
        filled += qty;
        node.remaining -= qty;
        node.filled += qty;
        level.total -= qty;
        if (node.display !== 0) node.visible -= qty;
        const trade: TradeEvent = {
          seq: ++this._seq,
          type: 'trade',
          market,
          price,
          quantity: qty,
          takerOrderId: takerId,
          takerAccount,
          takerSide,
          makerOrderId: node.id,
          makerAccount: node.account,
          makerRemaining: node.remaining,
          takerRemaining: remaining,
        };
        events.push(trade);
        fills.push(trade);
        this._lastPrice = price;
        // A maker with quantity left stays the head: either the taker is done, or the quote budget stopped it and the
        // next pass over the same maker finds nothing affordable.
        if (node.remaining === 0) {
          this.removeNode(node);
          node = next;
        } else if (node.display !== 0 && node.visible === 0) {
          // every node before it in the level is gone, so the level's head is next in line (maybe this node again)
          this.refill(node, events);
          node = level.head;
        }
      }
      // a level emptied by removeNode is already gone from the side; loop re-reads the best level
    }
    this.sweepRemaining = remaining;
    this.sweepFilled = filled;
    this.sweepStop = stop;
    this.sweepStpCancelled = stpCancelled;
  }

  private rest(
    id: string,
    account: string,
    side: Side,
    price: number,
    quantity: number,
    remaining: number,
    filled: number,
    tif: TimeInForce,
    postOnly: boolean,
    stp: StpMode,
    prioritySeq: number,
  ): void {
    const node = this.nodePool.pop() ?? new OrderNode();
    node.id = id;
    node.account = account;
    node.side = side;
    node.price = price;
    node.quantity = quantity;
    node.remaining = remaining;
    node.filled = filled;
    node.timeInForce = tif;
    node.postOnly = postOnly;
    node.stp = stp;
    node.prioritySeq = prioritySeq;
    this.byId.set(id, node);
    this.appendNode(side === 'buy' ? this.bids : this.asks, node);
  }

  private appendNode(bookSide: BookSide, node: OrderNode): void {
    let level = bookSide.byPrice.get(node.price);
    if (level === undefined) {
      level = this.levelPool.pop() ?? new PriceLevel();
      level.price = node.price;
      level.key = bookSide.sign * node.price;
      level.total = 0;
      level.hidden = 0;
      level.count = 0;
      level.head = null;
      level.tail = null;
      bookSide.insertLevel(level);
    }
    node.level = level;
    node.next = null;
    node.prev = level.tail;
    if (level.tail === null) level.head = node;
    else level.tail.next = node;
    level.tail = node;
    level.total += node.remaining;
    if (node.display !== 0) level.hidden += node.remaining - node.visible;
    level.count++;
  }

  /** Unlink a node from its level (removing the level if empty); does not touch byId or the pool. */
  private unlinkNode(node: OrderNode): void {
    const level = node.level!;
    if (node.prev === null) level.head = node.next;
    else node.prev.next = node.next;
    if (node.next === null) level.tail = node.prev;
    else node.next.prev = node.prev;
    level.total -= node.remaining;
    if (node.display !== 0) level.hidden -= node.remaining - node.visible;
    level.count--;
    node.prev = null;
    node.next = null;
    node.level = null;
    if (level.count === 0) {
      (node.side === 'buy' ? this.bids : this.asks).removeLevel(level);
      level.head = null;
      level.tail = null;
      if (this.levelPool.length < POOL_LIMIT) this.levelPool.push(level);
    }
  }

  /** Remove a node from the book entirely and recycle it. */
  private removeNode(node: OrderNode): void {
    this.unlinkNode(node);
    this.byId.delete(node.id);
    node.id = '';
    node.account = '';
    node.display = 0;
    node.visible = 0;
    if (this.nodePool.length < POOL_LIMIT) this.nodePool.push(node);
  }

  private cancelNode(node: OrderNode, reason: CancelReason, events: BookEvent[]): void {
    const ev: CancelledEvent = {
      seq: ++this._seq,
      type: 'cancelled',
      market: this.market,
      orderId: node.id,
      account: node.account,
      side: node.side,
      price: node.price,
      quantity: node.remaining,
      reason,
    };
    events.push(ev);
    this.removeNode(node);
  }

  private reduceNode(node: OrderNode, d: number, events: BookEvent[]): void {
    this.setRemaining(node, node.remaining - d);
    node.quantity -= d;
    const ev: ReducedEvent = {
      seq: ++this._seq,
      type: 'reduced',
      market: this.market,
      orderId: node.id,
      account: node.account,
      side: node.side,
      price: node.price,
      quantity: d,
      remaining: node.remaining,
      reason: 'stp',
    };
    events.push(ev);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // cancel / amend

  /** Cancel a resting order. `account`, when given, must own the order (else UNKNOWN_ORDER). */
  cancel(id: string, account?: string): CancelResult {
    const node = typeof id === 'string' ? this.byId.get(id) : undefined;
    if (node === undefined && this.stopsById.size !== 0 && typeof id === 'string') {
      const s = this.stopsById.get(id);
      if (s !== undefined && (account === undefined || s.account === account)) {
        this.removeStop(s);
        const ev: CancelledEvent = {
          seq: ++this._seq,
          type: 'cancelled',
          market: this.market,
          orderId: s.id,
          account: s.account,
          side: s.side,
          price: s.price,
          quantity: s.quantity,
          reason: 'user',
        };
        return { orderId: id, account: s.account, resting: true, rejectReason: null, events: [ev] };
      }
    }
    if (node === undefined || (account !== undefined && node.account !== account)) {
      const orderId = typeof id === 'string' ? id : null;
      const ev = this.rejected('cancel', orderId, typeof account === 'string' ? account : null, 'UNKNOWN_ORDER');
      return { orderId, account: ev.account, resting: false, rejectReason: 'UNKNOWN_ORDER', events: [ev] };
    }
    const events: BookEvent[] = [];
    const owner = node.account; // read before the node is recycled
    this.cancelNode(node, 'user', events);
    return { orderId: id, account: owner, resting: true, rejectReason: null, events };
  }

  /**
   * Change the price and/or the open quantity of a resting order. Lowering the quantity at the same price keeps time
   * priority; any price change or a quantity increase moves the order to the back of its (new) price level.
   * An amend that would make the order cross the book is rejected (AMEND_WOULD_TAKE) and leaves it untouched.
   */
  amend(cmd: AmendCommand): AmendResult {
    if (cmd === null || typeof cmd !== 'object') throw new TypeError('OrderBook.amend: command object required');
    const id = cmd.id;
    const orderId = typeof id === 'string' ? id : null;
    const node = orderId === null ? undefined : this.byId.get(orderId);
    const cmdAccount = typeof cmd.account === 'string' ? cmd.account : null;
    if (node === undefined || (cmd.account !== undefined && node.account !== cmd.account)) {
      return this.rejectAmend(orderId, cmdAccount, 'UNKNOWN_ORDER');
    }
    const price = cmd.price === undefined ? node.price : cmd.price;
    const quantity = cmd.quantity === undefined ? node.remaining : cmd.quantity;
    if (!isPositiveSafeInt(price) || price > this.maxPrice)
      return this.rejectAmend(orderId, node.account, 'INVALID_PRICE');
    if (!isPositiveSafeInt(quantity) || node.filled + quantity > this.maxQuantity) {
      return this.rejectAmend(orderId, node.account, 'INVALID_QUANTITY');
    }
    if (price === node.price && quantity === node.remaining) {
      return this.rejectAmend(orderId, node.account, 'AMEND_NO_CHANGE');
    }
    const bookSide = node.side === 'buy' ? this.bids : this.asks;
    const opposite = node.side === 'buy' ? this.asks : this.bids;
    const best = opposite.best();
    // during an auction nothing trades, so an amend may cross (the uncross settles it)
    if (this.auction === null && best !== undefined && best.key >= opposite.sign * price) {
      return this.rejectAmend(orderId, node.account, 'AMEND_WOULD_TAKE');
    }
    const oldPrice = node.price;
    const oldRemaining = node.remaining;
    const priorityKept = price === oldPrice && quantity < oldRemaining;
    const seq = ++this._seq;
    if (priorityKept) {
      this.setRemaining(node, quantity);
      node.quantity = node.filled + quantity;
    } else {
      this.unlinkNode(node);
      node.price = price;
      node.remaining = quantity;
      node.quantity = node.filled + quantity;
      node.prioritySeq = seq;
      // an iceberg moved to the back shows a fresh slice
      if (node.display !== 0) node.visible = node.display < quantity ? node.display : quantity;
      this.appendNode(bookSide, node);
    }
    const ev: AmendedEvent = {
      seq,
      type: 'amended',
      market: this.market,
      orderId: node.id,
      account: node.account,
      side: node.side,
      oldPrice,
      price,
      oldRemaining,
      remaining: quantity,
      priorityKept,
    };
    return { orderId, account: ev.account, ok: true, rejectReason: null, priorityKept, events: [ev] };
  }

  private rejectAmend(orderId: string | null, account: string | null, reason: RejectReason): AmendResult {
    const ev = this.rejected('amend', orderId, account, reason);
    return { orderId, account, ok: false, rejectReason: reason, priorityKept: false, events: [ev] };
  }

  // ---------------------------------------------------------------------------------------------------------------
  // queries

  /** Number of resting orders. */
  get orderCount(): number {
    return this.byId.size;
  }

  /** Number of non-empty price levels on each side. */
  get levelCount(): { bids: number; asks: number } {
    return { bids: this.bids.levels.length, asks: this.asks.levels.length };
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** Number of stop orders waiting for their trigger. */
  get stopCount(): number {
    return this.stopsById.size;
  }

  /** A waiting stop order (a copy), or undefined. */
  getStop(id: string): StopOrder | undefined {
    const s = this.stopsById.get(id);
    return s === undefined ? undefined : { ...s };
  }

  /** Waiting stop orders in trigger order (accepted seq), copies. */
  stopOrders(): StopOrder[] {
    return [...this.stopsById.values()].sort((a, b) => a.seq - b.seq).map((s) => ({ ...s }));
  }

  getOrder(id: string): RestingOrder | undefined {
    const node = this.byId.get(id);
    return node === undefined ? undefined : toResting(node);
  }

  bestBid(): number | null {
    const l = this.bids.best();
    return l === undefined ? null : l.price;
  }

  bestAsk(): number | null {
    const l = this.asks.best();
    return l === undefined ? null : l.price;
  }

  /** Resting orders of one side (or both: bids then asks), best price first, FIFO within a price. */
  *orders(side?: Side): IterableIterator<RestingOrder> {
    if (side === undefined || side === 'buy') yield* iterateSide(this.bids);
    if (side === undefined || side === 'sell') yield* iterateSide(this.asks);
  }

  /** Aggregated top `levels` price levels per side, best first. */
  depth(levels = 10): Depth {
    if (!Number.isSafeInteger(levels) || levels < 0) throw new TypeError('OrderBook.depth: levels must be >= 0');
    return { bids: depthOf(this.bids, levels), asks: depthOf(this.asks, levels) };
  }

  // ---------------------------------------------------------------------------------------------------------------
  // snapshot / restore

  snapshot(): OrderBookSnapshot {
    return {
      version: 3,
      market: this.market,
      defaultStp: this.defaultStp,
      maxPrice: this.maxPrice,
      maxQuantity: this.maxQuantity,
      seq: this._seq,
      bids: [...iterateSide(this.bids)],
      asks: [...iterateSide(this.asks)],
      lastPrice: this._lastPrice,
      stops: this.stopOrders(),
      maxStopTriggers: this.maxStopTriggers,
      bandBps: this.bandBps,
      auction: this.auction === null ? null : { ...this.auction },
    };
  }

  static restore(snapshot: OrderBookSnapshot): OrderBook {
    if (
      snapshot === null ||
      typeof snapshot !== 'object' ||
      (snapshot.version !== 1 && snapshot.version !== 2 && snapshot.version !== 3)
    ) {
      throw new TypeError('OrderBook.restore: unsupported snapshot');
    }
    const book = new OrderBook({
      market: snapshot.market,
      defaultStp: snapshot.defaultStp,
      maxPrice: snapshot.maxPrice,
      maxQuantity: snapshot.maxQuantity,
      ...(snapshot.maxStopTriggers !== undefined ? { maxStopTriggers: snapshot.maxStopTriggers } : {}),
      ...(snapshot.bandBps !== undefined ? { bandBps: snapshot.bandBps } : {}),
    });
    const a = snapshot.auction ?? null;
    if (a !== null) {
      if (!isPositiveSafeInt(a.referencePrice) || !Number.isSafeInteger(a.startSeq)) {
        throw new TypeError('OrderBook.restore: bad auction');
      }
      book.auction = {
        referencePrice: a.referencePrice,
        lowerPrice: a.lowerPrice,
        upperPrice: a.upperPrice,
        startSeq: a.startSeq,
      };
    }
    if (!Number.isSafeInteger(snapshot.seq) || snapshot.seq < 0) throw new TypeError('OrderBook.restore: bad seq');
    book._seq = snapshot.seq;
    for (const o of snapshot.bids) book.restoreOrder(o, 'buy');
    for (const o of snapshot.asks) book.restoreOrder(o, 'sell');
    const last = snapshot.lastPrice ?? null;
    if (last !== null && !isPositiveSafeInt(last)) throw new TypeError('OrderBook.restore: bad lastPrice');
    book._lastPrice = last;
    for (const s of snapshot.stops ?? []) {
      if (book.byId.has(s.id) || book.stopsById.has(s.id) || !isPositiveSafeInt(s.stopPrice)) {
        throw new TypeError(`OrderBook.restore: invalid stop order ${String(s.id)}`);
      }
      book.insertStop({ ...s });
    }
    return book;
  }

  private restoreOrder(o: RestingOrder, side: Side): void {
    if (o.side !== side || this.byId.has(o.id) || !isPositiveSafeInt(o.price) || !isPositiveSafeInt(o.remaining)) {
      throw new TypeError(`OrderBook.restore: invalid order ${String(o.id)}`);
    }
    const bookSide = side === 'buy' ? this.bids : this.asks;
    const last = bookSide.levels[0];
    if (last !== undefined && last.price !== o.price && last.key < bookSide.sign * o.price) {
      throw new TypeError('OrderBook.restore: orders not in priority order');
    }
    const node = new OrderNode();
    node.id = o.id;
    node.account = o.account;
    node.side = side;
    node.price = o.price;
    node.quantity = o.quantity;
    node.remaining = o.remaining;
    node.filled = o.filled;
    node.timeInForce = o.timeInForce;
    node.postOnly = o.postOnly;
    node.stp = o.stp;
    node.prioritySeq = o.prioritySeq;
    if (o.displayQuantity !== undefined) {
      const v = o.visible;
      if (!isPositiveSafeInt(o.displayQuantity) || !isPositiveSafeInt(v) || v > o.remaining || v > o.displayQuantity) {
        throw new TypeError(`OrderBook.restore: invalid iceberg ${String(o.id)}`);
      }
      node.display = o.displayQuantity;
      node.visible = v;
    }
    this.byId.set(o.id, node);
    this.appendNode(bookSide, node);
  }
}

/** Band half-width in ticks: floor(ref * bps / 10000) without leaving safe integers, at least one tick. */
function bandWidth(ref: number, bps: number): number {
  const w = Math.floor(ref / 10_000) * bps + Math.floor(((ref % 10_000) * bps) / 10_000);
  return w < 1 ? 1 : w;
}

function toResting(node: OrderNode): RestingOrder {
  const o: RestingOrder = {
    id: node.id,
    account: node.account,
    side: node.side,
    price: node.price,
    quantity: node.quantity,
    remaining: node.remaining,
    filled: node.filled,
    timeInForce: node.timeInForce,
    postOnly: node.postOnly,
    stp: node.stp,
    prioritySeq: node.prioritySeq,
  };
  if (node.display !== 0) {
    o.displayQuantity = node.display;
    o.visible = node.visible;
  }
  return o;
}

function* iterateSide(bookSide: BookSide): IterableIterator<RestingOrder> {
  const levels = bookSide.levels;
  for (let i = levels.length - 1; i >= 0; i--) {
    for (let node = levels[i]!.head; node !== null; node = node.next) yield toResting(node);
  }
}

function depthOf(bookSide: BookSide, n: number): DepthLevel[] {
  const out: DepthLevel[] = [];
  const levels = bookSide.levels;
  for (let i = levels.length - 1; i >= 0 && out.length < n; i--) {
    const l = levels[i]!;
    // only what shows: an iceberg's hidden part never leaves the book through depth
    out.push({ price: l.price, quantity: l.total - l.hidden, orders: l.count });
  }
  return out;
}

/** floor(a / b) for 0 <= a (safe integer or Infinity), b positive safe integer; exact. */
function floorDiv(a: number, b: number): number {
  if (a === Infinity) return Infinity;
  let q = Math.floor(a / b);
  if (q * b > a) q--;
  else if ((q + 1) * b <= a) q++;
  return q;
}
