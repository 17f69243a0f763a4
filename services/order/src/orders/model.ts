import { Type, type Static } from '@sinclair/typebox';
import type { Market, MarketCatalog } from '@exchange/contracts/markets';
import { formatFixed } from '@exchange/contracts/markets';
import type { OrderStatus } from '@exchange/contracts/trading';
import type { FillRow } from './repository.ts';

/** A row of orders.orders as pg returns it (numeric → string). */
export interface OrderRow {
  id: string;
  user_id: string;
  client_order_id: string | null;
  request_hash: string;
  market: string;
  side: 'buy' | 'sell';
  type: 'limit' | 'market';
  price_ticks: string | null;
  quantity_lots: string;
  time_in_force: 'GTC' | 'IOC' | 'FOK';
  post_only: boolean;
  stp: string | null;
  hold_asset: string;
  hold_amount: string;
  quote_budget_tick_lots: string | null;
  protection_price_ticks: string | null;
  status: OrderStatus;
  filled_lots: string;
  filled_notional: string;
  reason: string | null;
  cancel_requested_at: Date | null;
  last_seq: string | null;
  hold_release_pending: boolean;
  amend_seq: number;
  stop_price_ticks: string | null;
  display_lots: string | null;
  stop_triggered_at: Date | null;
  maker_fee_bps: number | null;
  taker_fee_bps: number | null;
  created_at: Date;
  updated_at: Date;
}

export const OPEN_STATUSES: OrderStatus[] = ['new', 'partially_filled'];

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

export const OrderSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    clientOrderId: Nullable(Type.String()),
    market: Type.String(),
    side: Type.Union([Type.Literal('buy'), Type.Literal('sell')]),
    type: Type.Union([Type.Literal('limit'), Type.Literal('market')]),
    price: Nullable(Type.String({ description: 'Limit price (null for market orders)' })),
    quantity: Type.String(),
    timeInForce: Type.Union([Type.Literal('GTC'), Type.Literal('IOC'), Type.Literal('FOK')]),
    postOnly: Type.Boolean(),
    stp: Nullable(Type.String()),
    status: Type.Union(
      [
        Type.Literal('pending'),
        Type.Literal('new'),
        Type.Literal('partially_filled'),
        Type.Literal('filled'),
        Type.Literal('cancelled'),
        Type.Literal('rejected'),
      ],
      { description: '`pending` only while the funds hold is being confirmed' },
    ),
    filledQuantity: Type.String(),
    remainingQuantity: Type.String(),
    averagePrice: Nullable(
      Type.String({ description: 'filledNotional / filledQuantity (null before the first fill)' }),
    ),
    filledNotional: Type.String({ description: 'Sum of price × quantity of the fills, in the quote asset' }),
    holdAsset: Type.String(),
    holdAmount: Type.String({ description: 'Funds reserved for the order (decimal, hold asset)' }),
    cancelRequested: Type.Boolean({ description: 'A cancel was sent to the engine and is not confirmed yet' }),
    amendSeq: Type.Integer({ description: 'Amends requested so far (PATCH); the next amend is amendSeq + 1' }),
    stopPrice: Nullable(Type.String({ description: 'Stop orders: the trigger price (null for other orders)' })),
    displayQuantity: Nullable(
      Type.String({
        description: 'Iceberg orders: the quantity shown in the book at a time (null for other orders; owner only)',
      }),
    ),
    stopTriggered: Type.Boolean({ description: 'A stop order whose trigger price was reached (it is live now)' }),
    makerFeeBps: Type.Integer({
      description:
        'Fee rate of the fills where this order is the maker (your volume tier when it was accepted); negative: a rebate',
    }),
    takerFeeBps: Type.Integer({ description: 'Fee rate of the fills where this order is the taker' }),
    reason: Nullable(Type.String()),
    createdAt: Type.String(),
    updatedAt: Type.String(),
  },
  { title: 'Order' },
);
export type OrderDto = Static<typeof OrderSchema>;

/** Exact average price: filledNotional (quote minor units) / filled quantity, to tick scale + 8 decimals, rounded down. */
export function averagePrice(market: Market, filledNotional: bigint, filledLots: bigint): string | null {
  if (filledLots === 0n) return null;
  // price = notional / 10^qp / (lots × lot) ; lot = lotUnits / 10^lotScale
  const scale = market.tick.scale + 8;
  const num = filledNotional * 10n ** BigInt(market.lot.scale + scale);
  const den = filledLots * market.lot.units * 10n ** BigInt(market.quote.precision);
  return trimZeros(formatFixed(num / den, scale), market.tick.scale);
}

/** Drop trailing zeros beyond `keep` decimals. */
function trimZeros(s: string, keep: number): string {
  if (!s.includes('.')) return s;
  const [w, f = ''] = s.split('.');
  let frac = f;
  while (frac.length > keep && frac.endsWith('0')) frac = frac.slice(0, -1);
  return frac.length ? `${w}.${frac}` : w!;
}

export function toOrderDto(catalog: MarketCatalog, r: OrderRow): OrderDto {
  const m = catalog.market(r.market);
  if (!m) throw new Error(`order ${r.id}: unknown market ${r.market}`);
  const qty = BigInt(r.quantity_lots);
  const filled = BigInt(r.filled_lots);
  const holdAsset = catalog.asset(r.hold_asset);
  return {
    id: r.id,
    clientOrderId: r.client_order_id,
    market: r.market,
    side: r.side,
    type: r.type,
    price: r.price_ticks === null ? null : m.ticksToPrice(BigInt(r.price_ticks)),
    quantity: m.lotsToQuantity(qty),
    timeInForce: r.time_in_force,
    postOnly: r.post_only,
    stp: r.stp,
    status: r.status,
    filledQuantity: m.lotsToQuantity(filled),
    remainingQuantity: m.lotsToQuantity(qty - filled),
    averagePrice: averagePrice(m, BigInt(r.filled_notional), filled),
    filledNotional: formatFixed(BigInt(r.filled_notional), m.quote.precision),
    holdAsset: r.hold_asset,
    holdAmount: formatFixed(BigInt(r.hold_amount), holdAsset?.precision ?? 0),
    cancelRequested: r.cancel_requested_at !== null && (r.status === 'new' || r.status === 'partially_filled'),
    amendSeq: r.amend_seq ?? 0,
    stopPrice: r.stop_price_ticks == null ? null : m.ticksToPrice(BigInt(r.stop_price_ticks)),
    displayQuantity: r.display_lots == null ? null : m.lotsToQuantity(BigInt(r.display_lots)),
    stopTriggered: r.stop_triggered_at != null,
    makerFeeBps: r.maker_fee_bps ?? m.config.makerFeeBps,
    takerFeeBps: r.taker_fee_bps ?? m.config.takerFeeBps,
    reason: r.reason,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  };
}

export const FillSchema = Type.Object({
  id: Type.String(),
  tradeId: Type.String(),
  orderId: Type.String(),
  market: Type.String(),
  side: Type.Union([Type.Literal('buy'), Type.Literal('sell')]),
  liquidity: Type.Union([Type.Literal('maker'), Type.Literal('taker')]),
  price: Type.String(),
  quantity: Type.String(),
  quoteAmount: Type.String(),
  fee: Type.String(),
  feeAsset: Type.String(),
  executedAt: Type.String(),
});
export type FillDto = Static<typeof FillSchema>;

export function toFillDto(catalog: MarketCatalog, r: FillRow): FillDto {
  const m = catalog.market(r.market)!;
  return {
    id: r.id,
    tradeId: r.trade_id,
    orderId: r.order_id,
    market: r.market,
    side: r.side,
    liquidity: r.liquidity,
    price: m.ticksToPrice(BigInt(r.price_ticks)),
    quantity: m.lotsToQuantity(BigInt(r.quantity_lots)),
    quoteAmount: formatFixed(BigInt(r.quote_amount), m.quote.precision),
    fee: formatFixed(BigInt(r.fee), catalog.asset(r.fee_asset)?.precision ?? 0),
    feeAsset: r.fee_asset,
    executedAt: r.executed_at.toISOString(),
  };
}
