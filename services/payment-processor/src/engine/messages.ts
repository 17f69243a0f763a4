/**
 * What one applied engine command publishes, in outbox order:
 *   1. per fill: `engine.trade-executed` (events) then `wallet.settle-trade` (wallet.settlement queue)
 *   2. `engine.order-updated` for every order the command touched (cumulative state)
 *   3. for an amend: `engine.order-amended`, then `wallet.adjust-hold` when the hold changes or a top-up is to end
 *   4. `wallet.release-hold` for every order the command finished — after all settles of the command, on the same
 *      single-active-consumer queue, so a release never overtakes a settle of its order.
 * Message ids are ordered UUIDs of (market, epoch, journal seq, index) (`orderedUuid`): re-applying a journaled
 * command yields the same messages, and a journal seq reused in another epoch (after a restore or reset) yields
 * other ids.
 */
import type { Envelope } from '@exchange/contracts';
import type { Market } from '@exchange/contracts/markets';
import {
  AdjustHoldV1,
  BookSnapshotV1,
  OrderAmendedV1,
  OrderUpdatedV1,
  ReleaseHoldV1,
  ROUTES,
  SettleTradeV1,
  TradeExecutedV1,
} from '@exchange/contracts/trading';
import type { OrderBook } from '@exchange/matching-engine';
import { orderedUuid } from '../uuid.ts';
import type { ApplyResult, JournalCommand } from './core.ts';

export const PRODUCER = 'payment-processor';
export const WALLET_SETTLEMENT_KEY = ROUTES.walletSettlementQueue;

export interface OutgoingMessage {
  exchange: string;
  routingKey: string;
  message: Envelope;
}

export const eventRoutingKey = (type: string, market: string) => `${type}.${market}`;

function releaseReason(status: string, reason: string | undefined): string {
  return (reason ? `${status}:${reason}` : status).slice(0, 60);
}

export function messagesFor(
  market: Market,
  cmd: JournalCommand,
  r: ApplyResult,
  at: string,
  correlationId?: string,
): OutgoingMessage[] {
  const symbol = market.symbol;
  const out: OutgoingMessage[] = [];
  let i = 0;
  const meta = () => ({
    producer: PRODUCER,
    id: orderedUuid(`${symbol}:${cmd.epoch ?? ''}:messages`, r.seq, i++),
    occurredAt: at,
    causationId: cmd.messageId,
    ...(correlationId ? { correlationId } : {}),
  });
  const event = (message: Envelope) =>
    out.push({
      exchange: ROUTES.eventsExchange,
      routingKey: eventRoutingKey(message.type, symbol),
      message,
    });
  const wallet = (message: Envelope) =>
    out.push({ exchange: ROUTES.commandsExchange, routingKey: WALLET_SETTLEMENT_KEY, message });

  for (const f of r.fills) {
    const buyer = f.takerSide === 'buy' ? f.taker : f.maker;
    const seller = f.takerSide === 'buy' ? f.maker : f.taker;
    event(
      TradeExecutedV1.create(
        {
          tradeId: f.tradeId,
          market: symbol,
          seq: String(f.bookSeq),
          priceTicks: String(f.priceTicks),
          quantityLots: String(f.lots),
          price: market.ticksToPrice(BigInt(f.priceTicks)),
          quantity: market.lotsToQuantity(BigInt(f.lots)),
          takerSide: f.takerSide,
          makerOrderId: f.maker.orderId,
          takerOrderId: f.taker.orderId,
          makerUserId: f.maker.userId,
          takerUserId: f.taker.userId,
          baseAmount: f.baseAmount.toString(),
          quoteAmount: f.quoteAmount.toString(),
          buyerFee: f.buyerFee.toString(),
          sellerFee: f.sellerFee.toString(),
          at,
        },
        meta(),
      ),
    );
    wallet(
      SettleTradeV1.create(
        {
          tradeId: f.tradeId,
          market: symbol,
          baseAsset: market.base.symbol,
          quoteAsset: market.quote.symbol,
          buyer,
          seller,
          baseAmount: f.baseAmount.toString(),
          quoteAmount: f.quoteAmount.toString(),
          buyerFee: f.buyerFee.toString(),
          sellerFee: f.sellerFee.toString(),
          executedAt: at,
        },
        meta(),
      ),
    );
  }
  for (const o of r.orders) {
    event(
      OrderUpdatedV1.create(
        {
          orderId: o.orderId,
          userId: o.userId,
          market: symbol,
          seq: String(r.bookSeq),
          status: o.status,
          filledLots: String(o.filledLots),
          remainingLots: String(o.remainingLots),
          filledNotional: o.filledNotional.toString(),
          ...(o.reason ? { reason: o.reason.slice(0, 60) } : {}),
          ...(o.stopTriggered ? { stopTriggered: true } : {}),
          at,
        },
        meta(),
      ),
    );
  }
  const a = r.amend;
  if (a) {
    event(
      OrderAmendedV1.create(
        {
          amendId: a.amendId,
          orderId: a.orderId,
          userId: a.userId,
          market: symbol,
          seq: String(r.bookSeq),
          ok: a.ok,
          ...(a.reason ? { reason: a.reason.slice(0, 60) } : {}),
          ...(a.priceTicks !== undefined ? { priceTicks: String(a.priceTicks) } : {}),
          ...(a.quantityLots !== undefined ? { quantityLots: String(a.quantityLots) } : {}),
          ...(a.remainingLots !== undefined ? { remainingLots: String(a.remainingLots) } : {}),
          priorityKept: a.priorityKept,
          holdAsset: a.holdAsset,
          holdDelta: a.holdDelta.toString(),
          at,
        },
        meta(),
      ),
    );
    if (a.holdDelta !== 0n || a.topUpHoldId !== undefined) {
      wallet(
        AdjustHoldV1.create(
          {
            holdId: a.orderId,
            userId: a.userId,
            asset: a.holdAsset,
            delta: a.holdDelta.toString(),
            ...(a.topUpHoldId !== undefined ? { topUpHoldId: a.topUpHoldId } : {}),
            reason: a.ok ? 'amend' : `amend_rejected:${a.reason ?? ''}`.slice(0, 60),
          },
          meta(),
        ),
      );
    }
  }
  for (const o of r.finished) {
    wallet(
      ReleaseHoldV1.create(
        {
          holdId: o.orderId,
          userId: o.userId,
          reason: releaseReason(o.status, o.reason),
          market: symbol,
          baseAsset: market.base.symbol,
          quoteAsset: market.quote.symbol,
          filledBase: market.baseUnits(BigInt(o.filledLots)).toString(),
          filledQuote: o.filledNotional.toString(),
        },
        meta(),
      ),
    );
  }
  return out;
}

/** Aggregated L2 depth as decimal strings (best first). */
export function bookSnapshotMessage(
  market: Market,
  book: OrderBook,
  depth: number,
  at: string,
  id: string,
): OutgoingMessage {
  const d = book.depth(depth);
  const level = (l: { price: number; quantity: number }): [string, string] => [
    market.ticksToPrice(BigInt(l.price)),
    market.lotsToQuantity(BigInt(l.quantity)),
  ];
  // depth() and the indicative uncross only ever count icebergs' displayed slices: nothing public shows hidden quantity
  const a = book.auctionState(true);
  const auction = a
    ? {
        auction: {
          referencePrice: market.ticksToPrice(BigInt(a.referencePrice)),
          indicativePrice: a.indicativePrice === null ? null : market.ticksToPrice(BigInt(a.indicativePrice)),
          indicativeQuantity: market.lotsToQuantity(BigInt(a.indicativeVolume)),
        },
      }
    : {};
  const message = BookSnapshotV1.create(
    {
      market: market.symbol,
      seq: String(book.seq),
      bids: d.bids.map(level),
      asks: d.asks.map(level),
      ...auction,
      at,
    },
    { producer: PRODUCER, id, occurredAt: at },
  );
  return {
    exchange: ROUTES.eventsExchange,
    routingKey: eventRoutingKey(message.type, market.symbol),
    message,
  };
}
