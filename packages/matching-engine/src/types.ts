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
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

/** Every reason a (part of an) accepted order can be cancelled for. */
export const CANCEL_REASONS = ['user', 'ioc_remainder', 'stp', 'market_no_liquidity', 'protection'] as const;
export type CancelReason = (typeof CANCEL_REASONS)[number];

export type CommandKind = 'place' | 'cancel' | 'amend';

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

export type BookEvent =
  AcceptedEvent | RejectedEvent | TradeEvent | CancelledEvent | ReducedEvent | AmendedEvent | TriggeredEvent;

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
}

export interface OrderBookSnapshot {
  /** 2 adds `lastPrice`, `stops`, `maxStopTriggers`; a version 1 snapshot restores with none of them. */
  version: 1 | 2;
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
}
