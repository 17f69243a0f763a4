/**
 * The order service's internal API for the wallet's reconciliation (x-internal-token, never routed by the gateway):
 *   POST /internal/orders/lookup   { ids }            → the state of each named order that exists
 *   GET  /internal/orders/open?after=&limit=         → open orders (new, partially_filled) by id, paginated
 *   GET  /internal/trades?from=&to=&after=&limit=    → trades on the tape executed in [from, to), paginated
 * The wallet compares them with its order holds: every open order holds funds, no finished order still does; and
 * with its settlements: every trade the engine executed is settled.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Uuid } from './envelope.ts';

export const ORDER_LOOKUP_MAX = 1000;
export const OPEN_ORDERS_PAGE_MAX = 5000;

export const OrderRef = Type.Object({
  id: Uuid(),
  status: Type.String({ description: 'pending, new, partially_filled, filled, cancelled, rejected' }),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});
export type OrderRef = Static<typeof OrderRef>;

export const OrderLookupRequest = Type.Object(
  { ids: Type.Array(Uuid(), { maxItems: ORDER_LOOKUP_MAX }) },
  { additionalProperties: false },
);
export const OrderLookupResponse = Type.Object({ orders: Type.Array(OrderRef) });

export const OpenOrdersQuery = Type.Object({
  after: Type.Optional(Uuid({ description: 'next of the previous page' })),
  limit: Type.Integer({ minimum: 1, maximum: OPEN_ORDERS_PAGE_MAX, default: OPEN_ORDERS_PAGE_MAX }),
});
export const OpenOrdersResponse = Type.Object({
  orders: Type.Array(OrderRef),
  next: Type.Union([Uuid(), Type.Null()]),
});

export const TRADES_PAGE_MAX = 5000;

export const TradeRef = Type.Object({
  tradeId: Uuid(),
  market: Type.String(),
  executedAt: Type.String(),
});
export type TradeRef = Static<typeof TradeRef>;

export const TradesQuery = Type.Object({
  from: Type.String({ format: 'date-time', description: 'executed at or after' }),
  to: Type.String({ format: 'date-time', description: 'executed before' }),
  after: Type.Optional(Uuid({ description: 'next of the previous page (trade id; pages are ordered by trade id)' })),
  limit: Type.Integer({ minimum: 1, maximum: TRADES_PAGE_MAX, default: TRADES_PAGE_MAX }),
});
export const TradesResponse = Type.Object({
  trades: Type.Array(TradeRef),
  next: Type.Union([Uuid(), Type.Null()]),
});

/** Order states that end an order: its hold must have been captured or released. */
export const FINAL_ORDER_STATUSES: ReadonlySet<string> = new Set(['filled', 'cancelled', 'rejected']);
