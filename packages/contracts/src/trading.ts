/**
 * Messages of the trading flow (order → payment-processor → wallet → order), one definition shared by producer and
 * consumer. Integers that can exceed 2^53 (minor units) are integer strings; ticks/lots are integer strings too and
 * are converted to safe integers only inside the payment-processor, after validation.
 *
 * Routing (see @exchange/messaging): commands go to the direct exchange `exchange.commands`, events to the topic
 * exchange `exchange.events`.
 *   engine.place-order / engine.cancel-order / engine.amend-order
 *                                              → routing key `orders.<MARKET>` → quorum queue `orders.<MARKET>`,
 *                                                single active consumer (payment-processor)
 *   wallet.settle-trade / wallet.release-hold / wallet.adjust-hold
 *                                              → routing key `wallet.settlement` → queue `wallet.settlement`
 *                                                (single active consumer: a release never overtakes a settle)
 *   payout.requested                            → routing key `payouts` → queue `payouts` (payment-processor)
 *   payout.completed / payout.failed            → routing key `wallet.payouts` → queue `wallet.payouts`
 *   engine.order-updated / engine.order-amended / engine.trade-executed / market.book-snapshot
 *                                              → exchange.events, routing key = type + '.' + market
 */
import { Type, type Static } from '@sinclair/typebox';
import {
  defineMessage,
  IntegerString,
  IsoDateTime,
  UnsignedDecimalString,
  UnsignedIntegerString,
  Uuid,
} from './envelope.ts';

export const ROUTES = {
  commandsExchange: 'exchange.commands',
  eventsExchange: 'exchange.events',
  ordersQueue: (market: string) => `orders.${market}`,
  walletSettlementQueue: 'wallet.settlement',
  payoutsQueue: 'payouts',
  walletPayoutsQueue: 'wallet.payouts',
} as const;

const Side = Type.Union([Type.Literal('buy'), Type.Literal('sell')]);
const OrderType = Type.Union([Type.Literal('limit'), Type.Literal('market')]);
const Tif = Type.Union([Type.Literal('GTC'), Type.Literal('IOC'), Type.Literal('FOK')]);
const Stp = Type.Union([
  Type.Literal('cancel_newest'),
  Type.Literal('cancel_oldest'),
  Type.Literal('cancel_both'),
  Type.Literal('decrement'),
]);
/** Why a cancel was sent (CancelOrderV1 `reason`; the engine reports it as the cancelled order's reason). */
export type CancelReason = 'user' | 'admin' | 'halt' | 'cancel_all' | 'disconnect' | 'dead_man_switch';
export const OrderStatus = Type.Union([
  Type.Literal('pending'),
  Type.Literal('new'),
  Type.Literal('partially_filled'),
  Type.Literal('filled'),
  Type.Literal('cancelled'),
  Type.Literal('rejected'),
]);
/** An order's status as the order service reports it (the engine's statuses plus `pending`, before the hold). */
export type OrderStatus = Static<typeof OrderStatus>;
const Market = Type.String({ pattern: '^[A-Z0-9]{2,10}-[A-Z0-9]{2,10}$' });

/** order → payment-processor: put an accepted order (funds already held) into the market's engine. */
export const PlaceOrderV1 = defineMessage({
  type: 'engine.place-order',
  version: 1,
  description: 'An accepted order whose funds are held; the engine matches it.',
  payload: Type.Object({
    orderId: Uuid(),
    userId: Uuid(),
    market: Market,
    side: Side,
    type: OrderType,
    /** Limit price in ticks; absent for market orders. */
    priceTicks: Type.Optional(UnsignedIntegerString()),
    quantityLots: UnsignedIntegerString(),
    timeInForce: Tif,
    postOnly: Type.Boolean(),
    stp: Type.Optional(Stp),
    /** Market buys: the most quote (in tick×lot units) the order may spend — its hold. */
    quoteBudgetTickLots: Type.Optional(UnsignedIntegerString()),
    /** Market orders: the worst price (ticks) they may trade at (price band). */
    protectionPriceTicks: Type.Optional(UnsignedIntegerString()),
    /**
     * Stop orders: the trigger price (ticks). The order waits off the book until the market's last trade price reaches
     * it (buy: at or above, sell: at or below), then runs as the limit (stop-limit) or market (stop-loss) order.
     */
    stopPriceTicks: Type.Optional(UnsignedIntegerString()),
    /** Iceberg orders (GTC limit): the lots shown in the book at a time; the rest is hidden but executable. */
    displayQuantityLots: Type.Optional(UnsignedIntegerString()),
    /** Held funds (minor units of the held asset) — for audit/reconciliation. */
    holdAmount: UnsignedIntegerString(),
    /**
     * The fee rates of the user's tier, resolved by the order service at acceptance (30-day volume) and journaled
     * with the command, so every fill of the order is charged — and replayed — at these rates. Absent: the market's
     * base rates (commands written before fee tiers). A negative maker rate is a rebate.
     */
    makerFeeBps: Type.Optional(Type.Integer({ minimum: -10000, maximum: 10000 })),
    takerFeeBps: Type.Optional(Type.Integer({ minimum: 0, maximum: 10000 })),
    acceptedAt: IsoDateTime(),
  }),
});

/** order → payment-processor: cancel an order (user, admin, halt). Unknown or finished orders are a no-op event. */
export const CancelOrderV1 = defineMessage({
  type: 'engine.cancel-order',
  version: 1,
  payload: Type.Object({
    orderId: Uuid(),
    userId: Uuid(),
    market: Market,
    /** `disconnect`: a cancel-on-disconnect WebSocket session ended; `dead_man_switch`: cancel-all-after fired. */
    reason: Type.Union([
      Type.Literal('user'),
      Type.Literal('admin'),
      Type.Literal('halt'),
      Type.Literal('cancel_all'),
      Type.Literal('disconnect'),
      Type.Literal('dead_man_switch'),
    ]),
    requestedAt: IsoDateTime(),
  }),
});

/**
 * order → payment-processor: change the price and/or the total quantity of a resting limit order. `quantityLots` is
 * the new TOTAL quantity (filled + open): the engine's new open quantity is `quantityLots - filled`. A lower quantity
 * at the same price keeps time priority; anything else loses it. When the amend can need more funds, the order
 * service reserved up to `topUpAmount` (minor units of the order's hold asset) in a separate hold `topUpHoldId`
 * first; the engine rejects the amend (`AMEND_HOLD_EXCEEDED`) if the exact extra hold it needs is more than that.
 */
export const AmendOrderV1 = defineMessage({
  type: 'engine.amend-order',
  version: 1,
  payload: Type.Object({
    amendId: Uuid(),
    orderId: Uuid(),
    userId: Uuid(),
    market: Market,
    priceTicks: Type.Optional(UnsignedIntegerString()),
    quantityLots: Type.Optional(UnsignedIntegerString()),
    topUpHoldId: Type.Optional(Uuid()),
    topUpAmount: Type.Optional(UnsignedIntegerString()),
    requestedAt: IsoDateTime(),
  }),
});

/**
 * payment-processor → everyone: the outcome of an amend. On success the order now has `priceTicks` and
 * `quantityLots` (total) with `remainingLots` open, and its hold changed by `holdDelta` (signed minor units of
 * `holdAsset`); on rejection (`ok: false`, `reason` = engine code) nothing changed but the top-up is released.
 */
export const OrderAmendedV1 = defineMessage({
  type: 'engine.order-amended',
  version: 1,
  payload: Type.Object({
    amendId: Uuid(),
    orderId: Uuid(),
    userId: Uuid(),
    market: Market,
    seq: UnsignedIntegerString(),
    ok: Type.Boolean(),
    reason: Type.Optional(Type.String({ maxLength: 60 })),
    priceTicks: Type.Optional(UnsignedIntegerString()),
    quantityLots: Type.Optional(UnsignedIntegerString()),
    remainingLots: Type.Optional(UnsignedIntegerString()),
    priorityKept: Type.Boolean(),
    holdAsset: Type.String({ maxLength: 10 }),
    holdDelta: IntegerString(),
    at: IsoDateTime(),
  }),
});

/** payment-processor → everyone: an order's state after an engine command. Cumulative, so it can be applied idempotently. */
export const OrderUpdatedV1 = defineMessage({
  type: 'engine.order-updated',
  version: 1,
  payload: Type.Object({
    orderId: Uuid(),
    userId: Uuid(),
    market: Market,
    /** Engine sequence number of the book after this update (per market, strictly increasing). */
    seq: UnsignedIntegerString(),
    status: OrderStatus,
    filledLots: UnsignedIntegerString(),
    remainingLots: UnsignedIntegerString(),
    /** Sum of price×qty over fills, in quote minor units (for average price). */
    filledNotional: UnsignedIntegerString(),
    /** Why it was rejected or cancelled (engine reason code), when it was. */
    reason: Type.Optional(Type.String({ maxLength: 60 })),
    /** A stop order was triggered by this command (it now trades / rests like a new order). */
    stopTriggered: Type.Optional(Type.Boolean()),
    at: IsoDateTime(),
  }),
});

/** payment-processor → everyone: one fill between a maker and a taker. */
export const TradeExecutedV1 = defineMessage({
  type: 'engine.trade-executed',
  version: 1,
  payload: Type.Object({
    tradeId: Uuid(),
    market: Market,
    seq: UnsignedIntegerString(),
    priceTicks: UnsignedIntegerString(),
    quantityLots: UnsignedIntegerString(),
    price: UnsignedDecimalString(),
    quantity: UnsignedDecimalString(),
    takerSide: Side,
    makerOrderId: Uuid(),
    takerOrderId: Uuid(),
    makerUserId: Uuid(),
    takerUserId: Uuid(),
    /** Ledger amounts (minor units), see Market.fillAmounts. */
    baseAmount: UnsignedIntegerString(),
    quoteAmount: UnsignedIntegerString(),
    /** Signed: a maker's rebate is a negative fee (never worth more than the taker's fee on the same trade). */
    buyerFee: IntegerString(),
    sellerFee: IntegerString(),
    at: IsoDateTime(),
  }),
});

/** payment-processor → everyone: aggregated L2 depth after a command (top N levels). */
export const BookSnapshotV1 = defineMessage({
  type: 'market.book-snapshot',
  version: 1,
  payload: Type.Object({
    market: Market,
    seq: UnsignedIntegerString(),
    bids: Type.Array(Type.Tuple([UnsignedDecimalString(), UnsignedDecimalString()]), { maxItems: 200 }),
    asks: Type.Array(Type.Tuple([UnsignedDecimalString(), UnsignedDecimalString()]), { maxItems: 200 }),
    /**
     * Present while the volatility guard holds the market in a call auction (the book may then cross): the price and
     * quantity the uncross would execute now (null/"0" when nothing crosses), and the reference price it started at.
     */
    auction: Type.Optional(
      Type.Object({
        referencePrice: UnsignedDecimalString(),
        indicativePrice: Type.Union([UnsignedDecimalString(), Type.Null()]),
        indicativeQuantity: UnsignedDecimalString(),
      }),
    ),
    at: IsoDateTime(),
  }),
});

const Party = Type.Object({ userId: Uuid(), orderId: Uuid() });

/**
 * payment-processor → wallet: settle one trade (idempotent by tradeId). The buyer's quote hold (holdId = buyer orderId)
 * is captured by quoteAmount and the buyer credited baseAmount - buyerFee; the seller's base hold is captured by
 * baseAmount and the seller credited quoteAmount - sellerFee; fees go to the fee accounts (a negative fee, a maker
 * rebate, is paid from the fee account).
 */
export const SettleTradeV1 = defineMessage({
  type: 'wallet.settle-trade',
  version: 1,
  payload: Type.Object({
    tradeId: Uuid(),
    market: Market,
    baseAsset: Type.String(),
    quoteAsset: Type.String(),
    buyer: Party,
    seller: Party,
    baseAmount: UnsignedIntegerString(),
    quoteAmount: UnsignedIntegerString(),
    /** Signed: a maker's rebate is a negative fee (never worth more than the taker's fee on the same trade). */
    buyerFee: IntegerString(),
    sellerFee: IntegerString(),
    executedAt: IsoDateTime(),
  }),
});

/**
 * payment-processor → wallet: the order is finished (filled, cancelled, rejected); release what is left of its hold.
 * Sent after every settle-trade of the order on the same single-active-consumer queue. A settle that failed once
 * and waits in the retry queue can still be overtaken, so the release names what the order's trades capture in all
 * (`filledBase` of `baseAsset`, `filledQuote` of `quoteAsset`): the wallet releases only once its settlements have captured that much.
 * These fields are optional so that releases published before they existed still apply.
 */
export const ReleaseHoldV1 = defineMessage({
  type: 'wallet.release-hold',
  version: 1,
  payload: Type.Object({
    holdId: Uuid({ description: 'The order id' }),
    userId: Uuid(),
    reason: Type.String({ maxLength: 60 }),
    market: Type.Optional(Type.String({ maxLength: 20, description: 'Market of the order, e.g. BTC-USD' })),
    baseAsset: Type.Optional(Type.String({ maxLength: 10 })),
    quoteAsset: Type.Optional(Type.String({ maxLength: 10 })),
    filledBase: Type.Optional(
      UnsignedIntegerString({ description: 'Base minor units the order bought or sold (its trades, in all)' }),
    ),
    filledQuote: Type.Optional(
      UnsignedIntegerString({ description: 'Quote minor units the order paid or received (its trades, in all)' }),
    ),
  }),
});

/**
 * payment-processor → wallet: an amend changed what an order's hold must reserve. In one transaction the wallet ends
 * the amend's top-up hold (when there is one: its funds become available) and changes the order hold's amount by
 * `delta` (signed minor units of `asset`; the top-up always covers a positive delta). Sent on `wallet.settlement`
 * after the settles of earlier trades and before the order's release. A hold that already ended is left alone.
 */
export const AdjustHoldV1 = defineMessage({
  type: 'wallet.adjust-hold',
  version: 1,
  payload: Type.Object({
    holdId: Uuid({ description: 'The order id' }),
    userId: Uuid(),
    asset: Type.String({ maxLength: 10 }),
    delta: IntegerString({ description: 'Signed change of the hold amount, minor units' }),
    topUpHoldId: Type.Optional(Uuid({ description: 'The amend id: its top-up hold ends here' })),
    reason: Type.String({ maxLength: 60 }),
  }),
});

/** wallet → payment-processor: pay a withdrawal out on the (simulated) rail. Idempotent by withdrawalId. */
export const PayoutRequestedV1 = defineMessage({
  type: 'payout.requested',
  version: 1,
  payload: Type.Object({
    withdrawalId: Uuid(),
    userId: Uuid(),
    asset: Type.String(),
    /** Amount sent to the address (minor units), fee excluded. */
    amount: UnsignedIntegerString(),
    address: Type.String({ maxLength: 128 }),
    requestedAt: IsoDateTime(),
  }),
});

export const PayoutCompletedV1 = defineMessage({
  type: 'payout.completed',
  version: 1,
  payload: Type.Object({ withdrawalId: Uuid(), railTxId: Type.String({ maxLength: 128 }), completedAt: IsoDateTime() }),
});

export const PayoutFailedV1 = defineMessage({
  type: 'payout.failed',
  version: 1,
  payload: Type.Object({ withdrawalId: Uuid(), reason: Type.String({ maxLength: 200 }), failedAt: IsoDateTime() }),
});

/** wallet → everyone: a trade's ledger movements were applied. */
export const TradeSettledV1 = defineMessage({
  type: 'wallet.trade-settled',
  version: 1,
  payload: Type.Object({ tradeId: Uuid(), market: Market, settledAt: IsoDateTime() }),
});

export { IntegerString };
