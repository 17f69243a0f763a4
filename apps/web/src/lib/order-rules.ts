/**
 * The order form's checks against the market's published rules (GET /api/v1/markets): tick size, lot size,
 * quantity limits, minimum notional and the price band around the last trade, plus the combinations the order
 * service refuses (market orders are IOC/FOK, post-only is GTC limit). The server checks all of it again; this is
 * so a trader sees the rule before sending. Also previews the hold the order will place and the most fee it can pay.
 */
import type { Market, OrderType, Side, TimeInForce } from '@exchange/sdk';
import { bpsOf, compare, isMultipleOf, isPlainDecimal, isZero, multiply } from './decimal.ts';

export interface OrderDraft {
  side: Side;
  type: OrderType;
  price: string;
  quantity: string;
  timeInForce: TimeInForce;
  postOnly: boolean;
  /** Iceberg: the quantity shown at a time ('' for a plain order). */
  displayQuantity?: string;
}

export type Field = 'price' | 'quantity' | 'timeInForce' | 'postOnly' | 'displayQuantity' | 'market';

export interface OrderCheck {
  /** Field → message naming the market's rule. Empty when the order may be sent. */
  errors: Partial<Record<Field, string>>;
  /** What the order will hold (limit orders; a market buy's hold depends on the band, shown by the server). */
  hold: { amount: string; asset: string } | null;
  /** The most the order can pay in fees (taker rate; post-only pays the maker rate), on the asset it receives. */
  fee: { amount: string; asset: string; bps: number } | null;
  notional: string | null;
}

export function checkOrder(market: Market, d: OrderDraft): OrderCheck {
  const errors: OrderCheck['errors'] = {};
  if (market.halted) errors.market = `${market.symbol} is halted${market.haltReason ? `: ${market.haltReason}` : ''}`;

  let price: string | null = null;
  if (d.type === 'limit') {
    if (d.price.trim() === '') errors.price = 'a limit order needs a price';
    else if (!isPlainDecimal(d.price)) errors.price = 'price must be a plain decimal such as 30000.5';
    else if (isZero(d.price)) errors.price = 'price must be greater than zero';
    else if (!isMultipleOf(d.price, market.tickSize))
      errors.price = `price must be a multiple of the tick size ${market.tickSize}`;
    else if (
      market.priceBand &&
      (compare(d.price, market.priceBand.low) < 0 || compare(d.price, market.priceBand.high) > 0)
    )
      errors.price = `price must be within ${market.priceBand.low}–${market.priceBand.high} (${market.priceBandBps / 100}% of the last trade)`;
    else price = d.price;
  }

  let qty: string | null = null;
  if (d.quantity.trim() === '') errors.quantity = 'enter a quantity';
  else if (!isPlainDecimal(d.quantity)) errors.quantity = 'quantity must be a plain decimal such as 0.01';
  else if (!isMultipleOf(d.quantity, market.lotSize))
    errors.quantity = `quantity must be a multiple of the lot size ${market.lotSize}`;
  else if (compare(d.quantity, market.minQuantity) < 0)
    errors.quantity = `quantity must be at least ${market.minQuantity} ${market.base}`;
  else if (compare(d.quantity, market.maxQuantity) > 0)
    errors.quantity = `quantity must be at most ${market.maxQuantity} ${market.base}`;
  else qty = d.quantity;

  if (d.type === 'market' && d.timeInForce === 'GTC') errors.timeInForce = 'a market order is IOC or FOK';
  if (d.postOnly && (d.type !== 'limit' || d.timeInForce !== 'GTC'))
    errors.postOnly = 'post-only orders are GTC limit orders';
  const display = d.displayQuantity?.trim() ?? '';
  if (display !== '') {
    if (d.type !== 'limit' || d.timeInForce !== 'GTC') errors.displayQuantity = 'icebergs are GTC limit orders';
    else if (!isPlainDecimal(display)) errors.displayQuantity = 'display quantity must be a plain decimal such as 0.01';
    else if (!isMultipleOf(display, market.lotSize))
      errors.displayQuantity = `display quantity must be a multiple of the lot size ${market.lotSize}`;
    else if (compare(display, market.minQuantity) < 0)
      errors.displayQuantity = `display quantity must be at least ${market.minQuantity} ${market.base}`;
    else if (qty && compare(display, qty) > 0) errors.displayQuantity = 'display quantity must not exceed the quantity';
  }

  const reference = price ?? (d.type === 'market' ? market.lastPrice : null);
  const notional = reference && qty ? multiply(reference, qty) : null;
  if (notional && compare(notional, market.minNotional) < 0 && !errors.price)
    errors[d.type === 'limit' ? 'price' : 'quantity'] =
      `price × quantity must be at least ${market.minNotional} ${market.quote} (minimum notional)`;
  if (d.type === 'market' && !market.lastPrice && !errors.quantity)
    errors.quantity = `${market.symbol} has no last trade yet; place a limit order instead`;

  let hold: OrderCheck['hold'] = null;
  if (qty && d.side === 'sell') hold = { amount: qty, asset: market.base };
  else if (qty && price) hold = { amount: multiply(price, qty), asset: market.quote };

  // a rebate (negative maker rate, fee tiers) means the most a post-only order can pay is nothing
  const bps = Math.max(0, d.postOnly ? market.makerFeeBps : market.takerFeeBps);
  let fee: OrderCheck['fee'] = null;
  if (qty && d.side === 'buy') fee = { amount: bpsOf(qty, bps), asset: market.base, bps };
  else if (notional && d.side === 'sell') fee = { amount: bpsOf(notional, bps), asset: market.quote, bps };

  return { errors, hold, fee, notional };
}
