// Public types of the matching engine. Everything that leaves the engine (results, events, snapshots) is a plain,
// JSON-serialisable object: strings, safe-integer numbers, booleans, null and arrays of those.

export type Side = 'buy' | 'sell';
export type OrderType = 'limit' | 'market';
export type TimeInForce = 'GTC' | 'IOC' | 'FOK';

/**
 * Self-trade prevention mode, decided by the incoming (taker) order when it meets a resting order of the same account.
 * `none` lets the two orders trade with each other.
 */
export type StpMode = 'none' | 'cancel_newest' | 'cancel_oldest' | 'cancel_both' | 'decrement';

export interface PlaceCommand {
  /** Unique order id (unique among resting orders; the order service guarantees global uniqueness). */
  id: string;
  account: string;
  side: Side;
  type: OrderType;
  /** Limit price in ticks (required for limit orders, must be absent for market orders). */
  price?: number | undefined;
  /** Quantity in lots. */
  quantity: number;
  /** Defaults to GTC. A market order never rests, whatever its time in force (FOK makes it all-or-nothing). */
  timeInForce?: TimeInForce | undefined;
  /** Limit orders only: reject instead of taking liquidity. */
  postOnly?: boolean | undefined;
  /** Defaults to the book's `defaultStp`. */
  stp?: StpMode | undefined;
  /** Market orders only: do not trade more than this many ticks away from the best opposite price at arrival. */
  maxSlippageTicks?: number | undefined;
  /** Market orders only: do not trade more than this notional (sum of price * quantity, in tick*lot units). */
  quoteBudget?: number | undefined;
  /**
   * Stop order: wait off the book until the last trade price reaches this price (buy: last >= stopPrice, sell:
   * last <= stopPrice), then run as the limit (stop-limit) or market (stop-loss) order it describes. GTC/IOC only, not
   * post-only. Rejected STOP_WOULD_TRIGGER when the last trade price already meets it.
   */
  stopPrice?: number | undefined;
  /**
   * Iceberg order: only this many lots show in the book (depth) at a time; the rest is hidden but executable. When
   * the shown slice is used up, the next slice (at most displayQuantity) shows at the back of its price level (new
   * time priority, a `refilled` event). GTC limit orders only, not stops; 1 <= displayQuantity <= quantity.
   */
  displayQuantity?: number | undefined;
}

export interface AmendCommand {
  id: string;
  /** Optional owner check: when given and different from the order's account, the amend fails with UNKNOWN_ORDER. */
  account?: string | undefined;
  /** New price in ticks. A different price loses time priority. */
  price?: number | undefined;
  /** New remaining (open) quantity in lots. Lower keeps time priority, higher loses it. */
  quantity?: number | undefined;
}

/** Every reject reason code; codes are stable (part of the journal format). */
export const REJECT_REASONS = [
  'INVALID_ID',
  'INVALID_ACCOUNT',
  'INVALID_SIDE',
  'INVALID_TYPE',
  'INVALID_TIME_IN_FORCE',
  'INVALID_PRICE',
  'INVALID_QUANTITY',
  'INVALID_POST_ONLY',
  'INVALID_STP',
  'INVALID_PROTECTION',
  'DUPLICATE_ORDER_ID',
  'POST_ONLY_WOULD_TAKE',
  'FOK_NOT_FILLABLE',
  'UNKNOWN_ORDER',
  'AMEND_NO_CHANGE',
  'AMEND_WOULD_TAKE',
  'INVALID_STOP_PRICE',
  'STOP_WOULD_TRIGGER',
  'INVALID_DISPLAY_QUANTITY',
  'MARKET_IN_AUCTION',
  'NOT_IN_AUCTION',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

/** Every reason a (part of an) accepted order can be cancelled for. */
export const CANCEL_REASONS = ['user', 'ioc_remainder', 'stp', 'market_no_liquidity', 'protection', 'auction'] as const;
export type CancelReason = (typeof CANCEL_REASONS)[number];

export type CommandKind = 'place' | 'cancel' | 'amend' | 'end_auction';

/** `continuous`: orders match on arrival. `auction`: the volatility guard paused matching; orders are collected. */
export type MarketPhase = 'continuous' | 'auction';

export interface AcceptedEvent {
  seq: number;
  type: 'accepted';
  market: string;
  orderId: string;
  account: string;
  side: Side;
  orderType: OrderType;
  /** null for market orders */
  price: number | null;
  quantity: number;
  timeInForce: TimeInForce;
  postOnly: boolean;
  stp: StpMode;
  maxSlippageTicks: number | null;
  quoteBudget: number | null;
  /** Only on stop orders (absent otherwise, so plain orders' events are unchanged): the trigger price. */
  stopPrice?: number;
  /** Only on iceberg orders: the display quantity. */
  displayQuantity?: number;
}

export interface RejectedEvent {
  seq: number;
  type: 'rejected';
  market: string;
  command: CommandKind;
  /** The id from the command when it was a string, else null. */
  orderId: string | null;
  /** The account from the command (or of the order for cancel/amend) when known, else null. */
  account: string | null;
  reason: RejectReason;
}

export interface TradeEvent {
  seq: number;
  type: 'trade';
  market: string;
  price: number;
  quantity: number;
  takerOrderId: string;
  takerAccount: string;
  takerSide: Side;
  makerOrderId: string;
  makerAccount: string;
  /** Open quantity of the maker after this trade (0: fully filled, removed from the book). */
  makerRemaining: number;
  /** Quantity the taker still wants after this trade. */
  takerRemaining: number;
  /**
   * Only on trades of an auction uncross (absent otherwise): every trade of the uncross prints at the auction price;
   * the order that got its time priority later is the taker.
   */
  auction?: true;
}

export interface CancelledEvent {
  seq: number;
  type: 'cancelled';
  market: string;
  orderId: string;
  account: string;
  side: Side;
  /** null for market orders */
  price: number | null;
  /** The open quantity that was cancelled. */
  quantity: number;
  reason: CancelReason;
}

/** STP `decrement`: an order's open quantity was reduced without trading; the order is still live. */
export interface ReducedEvent {
  seq: number;
  type: 'reduced';
  market: string;
  orderId: string;
  account: string;
  side: Side;
  price: number | null;
  /** Quantity removed. */
  quantity: number;
  /** Open quantity left. */
  remaining: number;
  reason: 'stp';
}

export interface AmendedEvent {
  seq: number;
  type: 'amended';
  market: string;
  orderId: string;
  account: string;
  side: Side;
  oldPrice: number;
  price: number;
  oldRemaining: number;
  remaining: number;
  priorityKept: boolean;
}

/**
 * A stop order's trigger: the last trade price reached its stop price. The order now runs (trades, rests with this
 * event's seq as its time priority, or is cancelled) exactly as if it had just arrived; no second `accepted` event.
 */
export interface TriggeredEvent {
  seq: number;
  type: 'triggered';
  market: string;
  orderId: string;
  account: string;
  side: Side;
  stopPrice: number;
  /** The last trade price that triggered it. */
  lastPrice: number;
}

/**
 * An iceberg's shown slice was used up and the next one shows: the order moved to the back of its price level with
 * this event's seq as its new time priority. Internal (journal) only: public market data never carries it.
 */
export interface RefilledEvent {
  seq: number;
  type: 'refilled';
  market: string;
  orderId: string;
  account: string;
  side: Side;
  price: number;
  /** The new shown slice. */
  visible: number;
}

/**
 * The volatility guard stopped a trade outside [lowerPrice, upperPrice] (the band around referencePrice, the last
 * trade price before the order that hit it): continuous matching is paused and orders are collected until the
 * end_auction command uncrosses the book.
 */
export interface AuctionStartedEvent {
  seq: number;
  type: 'auction_started';
  market: string;
  referencePrice: number;
  lowerPrice: number;
  upperPrice: number;
  /** The order whose next trade would have printed outside the band. */
  orderId: string;
}

/** The auction ended: its trades (if any) precede this event; continuous trading resumes. */
export interface AuctionEndedEvent {
  seq: number;
  type: 'auction_ended';
  market: string;
  referencePrice: number;
  /** The uncross price (of the last round, see OrderBook.endAuction), or null when nothing traded. */
  price: number | null;
  /** Lots traded by the uncross. */
  volume: number;
}

export type BookEvent =
  | AcceptedEvent
  | RejectedEvent
  | TradeEvent
  | CancelledEvent
  | ReducedEvent
  | AmendedEvent
  | TriggeredEvent
  | RefilledEvent
  | AuctionStartedEvent
  | AuctionEndedEvent;

/**
 * - `new`: resting, nothing filled yet
 * - `partially_filled`: resting, some quantity filled
 * - `filled`: completely filled
 * - `cancelled`: not resting and not completely filled (see `cancelReason`; some quantity may have been filled)
 * - `rejected`: never accepted (see `rejectReason`), no effect on the book except the event sequence
 */
export type OrderStatus = 'new' | 'partially_filled' | 'filled' | 'cancelled' | 'rejected';

export interface PlaceResult {
  orderId: string | null;
  account: string | null;
  status: OrderStatus;
  /** Quantity filled by this command. */
  filledQuantity: number;
  /** Open quantity left resting on the book (0 unless status is new/partially_filled). */
  remainingQuantity: number;
  /** Quantity cancelled (IOC remainder, STP, market without liquidity or beyond protection). */
  cancelledQuantity: number;
  rejectReason: RejectReason | null;
  cancelReason: CancelReason | null;
  /** The trades of this command, in execution order (the same objects as the trade events). */
  fills: TradeEvent[];
  /** Every event this command produced, in sequence order. */
  events: BookEvent[];
}

export interface CancelResult {
  orderId: string | null;
  /** The order's account when it was resting, else the account given to cancel (or null). */
  account: string | null;
  /** true when the order was resting and is now cancelled. */
  resting: boolean;
  rejectReason: RejectReason | null;
  events: BookEvent[];
}

export interface EndAuctionResult {
  ok: boolean;
  /** NOT_IN_AUCTION when the market was trading continuously. */
  rejectReason: RejectReason | null;
  price: number | null;
  volume: number;
  fills: TradeEvent[];
  events: BookEvent[];
}

/** The state of a running auction and what its uncross would do now. */
export interface AuctionState {
  referencePrice: number;
  lowerPrice: number;
  upperPrice: number;
  /** Seq of the auction_started event. */
  startSeq: number;
  /** Price the uncross would use now (first round), null when the book does not cross. */
  indicativePrice: number | null;
  /** Lots the first round would trade at indicativePrice. */
  indicativeVolume: number;
}

export interface AmendResult {
  orderId: string | null;
  /** The order's account when it is resting, else the account given to amend (or null). */
  account: string | null;
  ok: boolean;
  rejectReason: RejectReason | null;
  priorityKept: boolean;
  events: BookEvent[];
}

/** A resting order as seen from outside (a copy; mutating it does not affect the book). */
export interface RestingOrder {
  id: string;
  account: string;
  side: Side;
  price: number;
  /** Quantity at acceptance. */
  quantity: number;
  /** Open quantity. */
  remaining: number;
  /** Quantity filled so far. */
  filled: number;
  timeInForce: TimeInForce;
  postOnly: boolean;
  stp: StpMode;
  /** Sequence number of the event that gave the order its current time priority. */
  prioritySeq: number;
  /** Only on icebergs: the display quantity, and the slice shown now (the rest of `remaining` is hidden). */
  displayQuantity?: number;
  visible?: number;
}

/** A stop order waiting for its trigger (not on the book, not in depth). */
export interface StopOrder {
  id: string;
  account: string;
  side: Side;
  type: OrderType;
  /** Limit price of a stop-limit, null for a stop-loss (market). */
  price: number | null;
  stopPrice: number;
  quantity: number;
  timeInForce: TimeInForce;
  stp: StpMode;
  maxSlippageTicks: number | null;
  quoteBudget: number | null;
  /** Seq of its accepted event: stops trigger in this order. */
  seq: number;
}

export interface DepthLevel {
  price: number;
  quantity: number;
  orders: number;
}

export interface Depth {
  bids: DepthLevel[];
  asks: DepthLevel[];
}

export interface OrderBookOptions {
  market: string;
  /** STP mode for orders that do not set one. Default `cancel_newest`. */
  defaultStp?: StpMode | undefined;
  /** Largest accepted price in ticks. Default Number.MAX_SAFE_INTEGER. */
  maxPrice?: number | undefined;
  /** Largest accepted quantity in lots. Default Number.MAX_SAFE_INTEGER. */
  maxQuantity?: number | undefined;
  /** Most stop orders one place command may trigger (the cascade bound). Default 100. */
  maxStopTriggers?: number | undefined;
  /**
   * Volatility guard: half-width of the price band around the last trade price, in basis points (1..10000); a trade
   * that would print outside it starts a call auction instead. 0 or absent: no guard.
   */
  bandBps?: number | undefined;
}

export interface OrderBookSnapshot {
  /**
   * 2 adds `lastPrice`, `stops`, `maxStopTriggers`; 3 adds `bandBps`, `auction` and icebergs' displayQuantity and
   * visible. Older versions restore with none of them.
   */
  version: 1 | 2 | 3;
  market: string;
  defaultStp: StpMode;
  maxPrice: number;
  maxQuantity: number;
  /** Sequence number of the last event emitted. */
  seq: number;
  /** Bids best first, FIFO within a price. */
  bids: RestingOrder[];
  /** Asks best first, FIFO within a price. */
  asks: RestingOrder[];
  /** Price of the last trade (null before the first). */
  lastPrice?: number | null;
  /** Waiting stop orders, in trigger order (accepted seq). */
  stops?: StopOrder[];
  maxStopTriggers?: number;
  bandBps?: number;
  /** The running auction, or null/absent in continuous trading. */
  auction?: { referencePrice: number; lowerPrice: number; upperPrice: number; startSeq: number } | null;
}
