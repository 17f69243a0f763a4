/**
 * The deterministic heart of one market: an `OrderBook` plus the per-order fill totals the ledger needs, and the
 * derivation of everything a command produces (order updates, trades with ledger amounts, finished orders).
 * No I/O, no clock, no randomness: the same journal commands in the same order give the same results, byte for byte.
 * That is what makes recovery exact (snapshot + journal replay) and lets replay verify itself against the journal.
 */
import {
  OrderBook,
  type BookEvent,
  type OrderBookSnapshot,
  type OrderStatus,
  type PlaceCommand,
} from '@exchange/matching-engine';
import type { PayloadOf } from '@exchange/contracts';
import type { Market } from '@exchange/contracts/markets';
import type { CancelOrderV1, PlaceOrderV1 } from '@exchange/contracts/trading';
import { uuidv5 } from '../uuid.ts';

export type PlacePayload = PayloadOf<typeof PlaceOrderV1>;
export type CancelPayload = PayloadOf<typeof CancelOrderV1>;

/** A command as journaled and replayed. */
export type JournalCommand =
  | {
      kind: 'place';
      messageId: string;
      order: PlacePayload;
      /** A cancel for this order id arrived before the order itself: it never reaches the book. */
      preCancelled?: boolean;
    }
  | { kind: 'cancel'; messageId: string; cancel: CancelPayload };

export interface OrderState {
  orderId: string;
  userId: string;
  status: OrderStatus;
  filledLots: number;
  remainingLots: number;
  /** Sum of price × quantity over its fills, in quote minor units. */
  filledNotional: bigint;
  reason?: string;
}

export interface Fill {
  tradeId: string;
  /** Book event sequence of the trade. */
  bookSeq: number;
  priceTicks: number;
  lots: number;
  takerSide: 'buy' | 'sell';
  maker: { orderId: string; userId: string };
  taker: { orderId: string; userId: string };
  baseAmount: bigint;
  quoteAmount: bigint;
  buyerFee: bigint;
  sellerFee: bigint;
}

export interface ApplyResult {
  /** Journal sequence of this command (1 for the first command of the market). */
  seq: number;
  /** Book event sequence after the command. */
  bookSeq: number;
  events: BookEvent[];
  fills: Fill[];
  /** Final state after this command of every order it touched, in first-touch order (the taker first). */
  orders: OrderState[];
  /** The touched orders that are finished (filled, cancelled, rejected): their holds are released. */
  finished: OrderState[];
}

export interface CoreSnapshot {
  version: 1;
  market: string;
  /** Journal sequence of the last command included. */
  seq: number;
  book: OrderBookSnapshot;
  /** Resting orders' cumulative fills: [orderId, filledLots, filledNotional (quote minor units)], sorted by id. */
  fills: Array<[string, number, string]>;
}

interface Progress {
  filled: number;
  notional: bigint;
}

const FINISHED = new Set<OrderStatus>(['filled', 'cancelled', 'rejected']);

function safeInt(s: string | undefined): number {
  if (s === undefined) return Number.NaN;
  const b = BigInt(s);
  return b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : Number.NaN;
}

export function tradeIdOf(market: string, bookSeq: number): string {
  return uuidv5(`${market}:trade:${bookSeq}`);
}

export class MarketCore {
  readonly market: Market;
  private book: OrderBook;
  private readonly progress = new Map<string, Progress>();
  private _seq = 0;

  constructor(market: Market, snapshot?: CoreSnapshot) {
    this.market = market;
    if (snapshot) {
      if (snapshot.version !== 1 || snapshot.market !== market.symbol) {
        throw new TypeError(
          `engine snapshot of ${snapshot.market} v${snapshot.version} cannot restore ${market.symbol}`,
        );
      }
      this.book = OrderBook.restore(snapshot.book);
      this._seq = snapshot.seq;
      for (const [id, filled, notional] of snapshot.fills)
        this.progress.set(id, { filled, notional: BigInt(notional) });
    } else {
      const maxLots = market.quantityToLots(market.config.maxQuantity);
      this.book = new OrderBook({
        market: market.symbol,
        defaultStp: 'cancel_newest',
        ...(maxLots !== undefined && maxLots <= BigInt(Number.MAX_SAFE_INTEGER)
          ? { maxQuantity: Number(maxLots) }
          : {}),
      });
    }
  }

  /** Journal sequence of the last applied command. */
  get seq(): number {
    return this._seq;
  }

  get bookSeq(): number {
    return this.book.seq;
  }

  get orderBook(): OrderBook {
    return this.book;
  }

  snapshot(): CoreSnapshot {
    const fills: Array<[string, number, string]> = [...this.progress.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([id, p]) => [id, p.filled, p.notional.toString()]);
    return { version: 1, market: this.market.symbol, seq: this._seq, book: this.book.snapshot(), fills };
  }

  /** Apply one command. Never throws for a bad order: the engine rejects it and that is the result. */
  apply(cmd: JournalCommand): ApplyResult {
    const seq = this._seq + 1;
    const touched = new Map<string, OrderState>();
    let events: BookEvent[];
    let protectionIoc = false;
    let placeStatus: { orderId: string; status: OrderStatus; remaining: number } | undefined;

    if (cmd.kind === 'place' && cmd.preCancelled) {
      const o = cmd.order;
      touched.set(o.orderId, {
        orderId: o.orderId,
        userId: o.userId,
        status: 'cancelled',
        filledLots: 0,
        remainingLots: 0,
        filledNotional: 0n,
        reason: 'cancelled_before_place',
      });
      events = [];
    } else if (cmd.kind === 'place') {
      const { engine, converted } = this.toEngine(cmd.order);
      protectionIoc = converted;
      const r = this.book.place(engine);
      events = r.events;
      placeStatus = { orderId: cmd.order.orderId, status: r.status, remaining: r.remainingQuantity };
    } else {
      events = this.book.cancel(cmd.cancel.orderId, cmd.cancel.userId).events;
    }

    const fills: Fill[] = [];
    const get = (orderId: string, userId: string): OrderState => {
      let st = touched.get(orderId);
      if (!st) {
        const p = this.progress.get(orderId);
        const resting = this.book.getOrder(orderId);
        st = {
          orderId,
          userId,
          status: p && p.filled > 0 ? 'partially_filled' : 'new',
          filledLots: p?.filled ?? 0,
          remainingLots: resting?.remaining ?? 0,
          filledNotional: p?.notional ?? 0n,
        };
        touched.set(orderId, st);
      }
      return st;
    };

    for (const ev of events) {
      switch (ev.type) {
        case 'accepted':
          touched.set(ev.orderId, {
            orderId: ev.orderId,
            userId: ev.account,
            status: 'new',
            filledLots: 0,
            remainingLots: ev.quantity,
            filledNotional: 0n,
          });
          break;
        case 'rejected':
          if (ev.command === 'place' && ev.orderId !== null) {
            touched.set(ev.orderId, {
              orderId: ev.orderId,
              userId: ev.account ?? '',
              status: 'rejected',
              filledLots: 0,
              remainingLots: 0,
              filledNotional: 0n,
              reason: ev.reason,
            });
          }
          break;
        case 'trade': {
          const amounts = this.market.fillAmounts(BigInt(ev.price), BigInt(ev.quantity), ev.takerSide);
          const maker = get(ev.makerOrderId, ev.makerAccount);
          maker.filledLots += ev.quantity;
          maker.filledNotional += amounts.quoteAmount;
          maker.remainingLots = ev.makerRemaining;
          maker.status = ev.makerRemaining === 0 ? 'filled' : 'partially_filled';
          const taker = get(ev.takerOrderId, ev.takerAccount);
          taker.filledLots += ev.quantity;
          taker.filledNotional += amounts.quoteAmount;
          taker.remainingLots = ev.takerRemaining;
          taker.status = ev.takerRemaining === 0 ? 'filled' : 'partially_filled';
          fills.push({
            tradeId: tradeIdOf(this.market.symbol, ev.seq),
            bookSeq: ev.seq,
            priceTicks: ev.price,
            lots: ev.quantity,
            takerSide: ev.takerSide,
            maker: { orderId: ev.makerOrderId, userId: ev.makerAccount },
            taker: { orderId: ev.takerOrderId, userId: ev.takerAccount },
            ...amounts,
          });
          break;
        }
        case 'cancelled': {
          const st = get(ev.orderId, ev.account);
          st.status = 'cancelled';
          st.remainingLots = 0;
          st.reason =
            ev.reason === 'user' && cmd.kind === 'cancel'
              ? cmd.cancel.reason
              : ev.reason === 'ioc_remainder' && protectionIoc
                ? 'protection'
                : ev.reason;
          break;
        }
        case 'reduced': {
          const st = get(ev.orderId, ev.account);
          st.remainingLots = ev.remaining;
          break;
        }
        case 'amended':
          break;
      }
    }

    if (placeStatus) {
      const st = touched.get(placeStatus.orderId);
      if (st) {
        st.status = placeStatus.status;
        if (!FINISHED.has(st.status)) st.remainingLots = placeStatus.remaining;
      }
    }

    const orders = [...touched.values()];
    for (const st of orders) {
      if (FINISHED.has(st.status) || !this.book.has(st.orderId)) this.progress.delete(st.orderId);
      else this.progress.set(st.orderId, { filled: st.filledLots, notional: st.filledNotional });
    }
    this._seq = seq;
    return {
      seq,
      bookSeq: this.book.seq,
      events,
      fills,
      orders,
      finished: orders.filter((o) => FINISHED.has(o.status)),
    };
  }

  /**
   * The engine command for an order. A market order's protection price (absolute worst price) becomes the engine's
   * slippage bound from the current best price; when the best price is already beyond it, the order is sent as an
   * IOC limit at the protection price, which cannot trade and is cancelled with reason `protection`.
   */
  private toEngine(o: PlacePayload): { engine: PlaceCommand; converted: boolean } {
    const base = {
      id: o.orderId,
      account: o.userId,
      side: o.side,
      quantity: safeInt(o.quantityLots),
      postOnly: o.postOnly,
      ...(o.stp ? { stp: o.stp } : {}),
    };
    if (o.type === 'limit') {
      return {
        engine: { ...base, type: 'limit', price: safeInt(o.priceTicks), timeInForce: o.timeInForce },
        converted: false,
      };
    }
    const engine: PlaceCommand = { ...base, type: 'market', timeInForce: o.timeInForce };
    if (o.quoteBudgetTickLots !== undefined) engine.quoteBudget = safeInt(o.quoteBudgetTickLots);
    if (o.protectionPriceTicks !== undefined) {
      const p = safeInt(o.protectionPriceTicks);
      const best = o.side === 'buy' ? this.book.bestAsk() : this.book.bestBid();
      if (best !== null) {
        const slip = o.side === 'buy' ? p - best : best - p;
        if (slip < 0) {
          return {
            engine: {
              ...base,
              type: 'limit',
              price: p,
              postOnly: false,
              timeInForce: o.timeInForce === 'FOK' ? 'FOK' : 'IOC',
            },
            converted: true,
          };
        }
        engine.maxSlippageTicks = slip;
      }
    }
    return { engine, converted: false };
  }
}
