/**
 * The deterministic heart of one market: an `OrderBook` plus the per-order fill totals the ledger needs, and the
 * derivation of everything a command produces (order updates, trades with ledger amounts, finished orders).
 * No I/O, no clock, no randomness: the same journal commands in the same order give the same results, byte for byte.
 * That is what makes recovery exact (snapshot + journal replay) and lets replay verify itself against the journal.
 */
import {
  OrderBook,
  type AmendedEvent,
  type BookEvent,
  type OrderBookSnapshot,
  type OrderStatus,
  type PlaceCommand,
} from '@exchange/matching-engine';
import type { PayloadOf } from '@exchange/contracts';
import type { FeeRates, Market } from '@exchange/contracts/markets';
import type { AmendOrderV1, CancelOrderV1, PlaceOrderV1 } from '@exchange/contracts/trading';
import { orderedUuid } from '../uuid.ts';

export type PlacePayload = PayloadOf<typeof PlaceOrderV1>;
export type CancelPayload = PayloadOf<typeof CancelOrderV1>;
export type AmendPayload = PayloadOf<typeof AmendOrderV1>;

/**
 * A command as journaled and replayed. `epoch` (absent in journals written before it existed) is the id generation
 * the command was applied in: part of every trade and message id it produced, so ids stay unique even when journal
 * sequence numbers are reused after a restore or reset (see MarketEngine).
 */
export type JournalCommand = (
  | {
      kind: 'place';
      messageId: string;
      order: PlacePayload;
      /** A cancel for this order id arrived before the order itself: it never reaches the book. */
      preCancelled?: boolean;
    }
  | { kind: 'cancel'; messageId: string; cancel: CancelPayload }
  | { kind: 'amend'; messageId: string; amend: AmendPayload }
  | {
      /**
       * End the volatility guard's call auction that started at book seq `startSeq` (the engine host's timer sends
       * it; the book never reads a clock). Uncrosses the book and resumes continuous trading.
       */
      kind: 'end_auction';
      messageId: string;
      startSeq: number;
    }
  | {
      /**
       * A command the engine cannot apply because of its content (invalid payload, wrong market, one the book
       * refuses to process): journaled as what it was; an order it names is rejected (its hold released), a cancel
       * changes nothing (it can be sent again). Never skipped silently, never blocking the market.
       */
      kind: 'reject';
      messageId: string;
      /**
       * `amend`: an amend the engine core threw on (journals from before it existed say `unknown`). The order stays
       * as it is; the amend is answered as rejected and its top-up hold (when it has one) released.
       */
      command: 'place' | 'cancel' | 'amend' | 'unknown';
      orderId?: string;
      userId?: string;
      /** For a rejected amend: its id and its top-up hold. */
      amendId?: string;
      topUpHoldId?: string;
      detail: string;
    }
) & { epoch?: string };

/** Reason on the order (and its hold release) when the engine rejects a command for its content. */
export const INVALID_COMMAND_REASON = 'invalid_command';

export interface OrderState {
  orderId: string;
  userId: string;
  status: OrderStatus;
  filledLots: number;
  remainingLots: number;
  /** Sum of price × quantity over its fills, in quote minor units. */
  filledNotional: bigint;
  reason?: string;
  /** A stop order triggered in this command. */
  stopTriggered?: boolean;
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
  /** For an amend command: its outcome and the exact hold change. */
  amend?: AmendOutcome;
}

export interface AmendOutcome {
  amendId: string;
  orderId: string;
  userId: string;
  ok: boolean;
  /** Engine reject code, or AMEND_HOLD_EXCEEDED (the top-up does not cover the extra hold). */
  reason?: string;
  /** After the amend (present when ok). */
  priceTicks?: number;
  /** New total quantity (filled + open), when ok. */
  quantityLots?: number;
  remainingLots?: number;
  priorityKept: boolean;
  /** Asset of the order's hold (quote for buys, base for sells); the market's quote asset when the order is unknown. */
  holdAsset: string;
  /** Signed change of the order's hold, minor units of holdAsset (0 when rejected). */
  holdDelta: bigint;
  topUpHoldId?: string;
}

export interface CoreSnapshot {
  version: 1;
  market: string;
  /** Journal sequence of the last command included. */
  seq: number;
  book: OrderBookSnapshot;
  /** Resting orders' cumulative fills: [orderId, filledLots, filledNotional (quote minor units)], sorted by id. */
  fills: Array<[string, number, string]>;
  /**
   * Fee rates carried by open orders' place commands: [orderId, makerFeeBps, takerFeeBps], sorted by id. Absent in
   * snapshots taken before fee tiers (their orders trade at the market's base rates, as they were placed).
   */
  feeRates?: Array<[string, number, number]>;
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

export function tradeIdOf(market: string, bookSeq: number, epoch?: string): string {
  return orderedUuid(`${market}:${epoch ?? ''}:trades`, bookSeq);
}

export class MarketCore {
  readonly market: Market;
  private book: OrderBook;
  private readonly progress = new Map<string, Progress>();
  /** The tier rates each open order (resting or waiting stop) was placed with; absent: the market's base rates. */
  private readonly rates = new Map<string, FeeRates>();
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
      for (const [id, makerFeeBps, takerFeeBps] of snapshot.feeRates ?? [])
        this.rates.set(id, { makerFeeBps, takerFeeBps });
    } else {
      const maxLots = market.quantityToLots(market.config.maxQuantity);
      this.book = new OrderBook({
        market: market.symbol,
        defaultStp: 'cancel_newest',
        // The band is part of the engine state from here on (snapshots carry it), so replay never depends on config.
        ...(market.config.volatilityGuard ? { bandBps: market.config.volatilityGuard.bandBps } : {}),
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
    const feeRates: Array<[string, number, number]> = [...this.rates.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([id, r]) => [id, r.makerFeeBps, r.takerFeeBps]);
    return {
      version: 1,
      market: this.market.symbol,
      seq: this._seq,
      book: this.book.snapshot(),
      fills,
      ...(feeRates.length ? { feeRates } : {}),
    };
  }

  /** Apply one command. Never throws for a bad order: the engine rejects it and that is the result. */
  apply(cmd: JournalCommand): ApplyResult {
    const seq = this._seq + 1;
    const touched = new Map<string, OrderState>();
    let events: BookEvent[];
    let protectionIoc = false;
    let placeStatus: { orderId: string; status: OrderStatus; remaining: number } | undefined;
    let amend: AmendOutcome | undefined;
    // With triggered stops the place result describes the placed order before they ran; the events say it all.
    let triggered = false;

    if (cmd.kind === 'reject') {
      events = [];
      if (cmd.command === 'amend' && cmd.amendId && cmd.orderId && cmd.userId) {
        // Answered like any rejected amend (order-amended ok: false, then adjust-hold with delta 0 ending the top-up),
        // so the amend's extra reservation is released by this command's messages, exactly once.
        amend = this.rejectedAmend(
          {
            amendId: cmd.amendId,
            orderId: cmd.orderId,
            userId: cmd.userId,
            ...(cmd.topUpHoldId ? { topUpHoldId: cmd.topUpHoldId } : {}),
          },
          INVALID_COMMAND_REASON,
        );
      }
      if (cmd.command === 'place' && cmd.orderId && cmd.userId && !this.book.has(cmd.orderId)) {
        touched.set(cmd.orderId, {
          orderId: cmd.orderId,
          userId: cmd.userId,
          status: 'rejected',
          filledLots: 0,
          remainingLots: 0,
          filledNotional: 0n,
          reason: INVALID_COMMAND_REASON,
        });
      }
    } else if (cmd.kind === 'place' && cmd.preCancelled) {
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
      // before the book sees it: the order may take (taker rate) in this very command
      const { makerFeeBps, takerFeeBps } = cmd.order;
      if (
        makerFeeBps !== undefined &&
        takerFeeBps !== undefined &&
        !this.rates.has(cmd.order.orderId) &&
        !this.book.has(cmd.order.orderId)
      )
        this.rates.set(cmd.order.orderId, { makerFeeBps, takerFeeBps });
      const { engine, converted } = this.toEngine(cmd.order);
      protectionIoc = converted;
      const r = this.book.place(engine);
      events = r.events;
      placeStatus = { orderId: cmd.order.orderId, status: r.status, remaining: r.remainingQuantity };
    } else if (cmd.kind === 'amend') {
      const r = this.applyAmend(cmd.amend);
      events = r.events;
      amend = r.outcome;
    } else if (cmd.kind === 'end_auction') {
      // only the auction it was scheduled for: a late timer after another auction started must not end that one
      const a = this.book.auctionState();
      events = a !== null && a.startSeq === cmd.startSeq ? this.book.endAuction().events : [];
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
          const amounts = this.market.fillAmounts(
            BigInt(ev.price),
            BigInt(ev.quantity),
            ev.takerSide,
            this.rates.get(ev.makerOrderId),
            this.rates.get(ev.takerOrderId),
          );
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
            tradeId: tradeIdOf(this.market.symbol, ev.seq, cmd.epoch),
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
        case 'triggered': {
          // a stop order came to life: all of its quantity is open (its trades and cancels follow)
          const p = this.progress.get(ev.orderId);
          touched.set(ev.orderId, {
            orderId: ev.orderId,
            userId: ev.account,
            status: 'new',
            filledLots: p?.filled ?? 0,
            remainingLots: this.book.getOrder(ev.orderId)?.remaining ?? 0,
            filledNotional: p?.notional ?? 0n,
            stopTriggered: true,
          });
          triggered = true;
          break;
        }
      }
    }

    if (placeStatus && !triggered) {
      const st = touched.get(placeStatus.orderId);
      if (st) {
        st.status = placeStatus.status;
        if (!FINISHED.has(st.status)) st.remainingLots = placeStatus.remaining;
      }
    }

    const orders = [...touched.values()];
    for (const st of orders) {
      // a waiting stop is not on the book but keeps its rates until it is finished
      if (FINISHED.has(st.status)) this.rates.delete(st.orderId);
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
      ...(amend ? { amend } : {}),
    };
  }

  /**
   * An amend: the new total quantity becomes the new open quantity `total - filled`; the hold must change by the cost
   * of the new open part minus the cost of the old one (buys: notional at the order's price; sells: base units).
   * A positive change larger than the command's top-up is rejected (AMEND_HOLD_EXCEEDED) before the book sees it
   * (no book event, like any decision taken from the book's state, it replays identically).
   */
  /** The outcome of an amend refused as a whole: nothing changes but its top-up hold ends (holdDelta 0). */
  private rejectedAmend(
    a: Pick<AmendPayload, 'amendId' | 'orderId' | 'userId' | 'topUpHoldId'>,
    reason: string,
  ): AmendOutcome {
    const resting = this.book.getOrder(a.orderId);
    const owned = resting !== undefined && resting.account === a.userId;
    return {
      amendId: a.amendId,
      orderId: a.orderId,
      userId: a.userId,
      holdAsset: owned && resting.side === 'sell' ? this.market.base.symbol : this.market.quote.symbol,
      ...(a.topUpHoldId !== undefined ? { topUpHoldId: a.topUpHoldId } : {}),
      ok: false,
      reason,
      priorityKept: false,
      holdDelta: 0n,
    };
  }

  private applyAmend(a: AmendPayload): { events: BookEvent[]; outcome: AmendOutcome } {
    const resting = this.book.getOrder(a.orderId);
    const owned = resting !== undefined && resting.account === a.userId;
    const base = {
      amendId: a.amendId,
      orderId: a.orderId,
      userId: a.userId,
      holdAsset: owned && resting.side === 'sell' ? this.market.base.symbol : this.market.quote.symbol,
      ...(a.topUpHoldId !== undefined ? { topUpHoldId: a.topUpHoldId } : {}),
    };
    const reject = (reason: string, events: BookEvent[]) => ({ events, outcome: this.rejectedAmend(a, reason) });
    const price = a.priceTicks === undefined ? undefined : safeInt(a.priceTicks);
    const quantity = a.quantityLots === undefined || !owned ? undefined : safeInt(a.quantityLots) - resting.filled;
    if (owned && (price === undefined || (Number.isSafeInteger(price) && price > 0))) {
      const newPrice = price ?? resting.price;
      const newRemaining = quantity ?? resting.remaining;
      if (Number.isSafeInteger(newRemaining) && newRemaining > 0) {
        const delta =
          this.holdCost(resting.side, newPrice, newRemaining) -
          this.holdCost(resting.side, resting.price, resting.remaining);
        const topUp = a.topUpAmount === undefined ? 0n : BigInt(a.topUpAmount);
        if (delta > topUp) return reject('AMEND_HOLD_EXCEEDED', []);
      }
    }
    const r = this.book.amend({
      id: a.orderId,
      account: a.userId,
      ...(price !== undefined ? { price } : {}),
      ...(a.quantityLots !== undefined ? { quantity: quantity ?? Number.NaN } : {}),
    });
    if (!r.ok) return reject(r.rejectReason ?? 'UNKNOWN_ORDER', r.events);
    const ev = r.events[0] as AmendedEvent;
    const after = this.book.getOrder(a.orderId)!;
    return {
      events: r.events,
      outcome: {
        ...base,
        ok: true,
        priceTicks: ev.price,
        quantityLots: after.quantity,
        remainingLots: ev.remaining,
        priorityKept: ev.priorityKept,
        holdDelta:
          this.holdCost(ev.side, ev.price, ev.remaining) - this.holdCost(ev.side, ev.oldPrice, ev.oldRemaining),
      },
    };
  }

  /** What the open part of a resting limit order holds: buys the quote notional, sells the base units. */
  private holdCost(side: 'buy' | 'sell', priceTicks: number, lots: number): bigint {
    return side === 'buy'
      ? this.market.notional(BigInt(priceTicks), BigInt(lots))
      : this.market.baseUnits(BigInt(lots));
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
      ...(o.stopPriceTicks !== undefined ? { stopPrice: safeInt(o.stopPriceTicks) } : {}),
      ...(o.displayQuantityLots !== undefined ? { displayQuantity: safeInt(o.displayQuantityLots) } : {}),
    };
    if (o.type === 'limit') {
      return {
        engine: { ...base, type: 'limit', price: safeInt(o.priceTicks), timeInForce: o.timeInForce },
        converted: false,
      };
    }
    if (o.stopPriceTicks !== undefined && o.protectionPriceTicks !== undefined) {
      // A stop-loss runs when triggered, against the book as it is then: its absolute protection price (the band
      // around the stop price) makes it an IOC limit at that price, whose hold covers it whatever the book does.
      return {
        engine: { ...base, type: 'limit', price: safeInt(o.protectionPriceTicks), postOnly: false, timeInForce: 'IOC' },
        converted: true,
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
