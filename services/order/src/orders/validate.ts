/**
 * Order validation against the market catalog, in exact integer arithmetic (ticks, lots, minor units).
 * `parseOrder` checks what depends only on the request and the market's static rules; `priceChecks` what depends on
 * the last trade (price band, market-order protection and hold, minimum notional of market orders).
 */
import { badRequest } from '@exchange/platform';
import { canonicalJson } from '@exchange/platform';
import type { Market } from '@exchange/contracts/markets';
import { parseAmount } from '@exchange/money';
import { createHash } from 'node:crypto';

export type Side = 'buy' | 'sell';
export type OrderType = 'limit' | 'market';
export type TimeInForce = 'GTC' | 'IOC' | 'FOK';
export type Stp = 'cancel_newest' | 'cancel_oldest' | 'cancel_both' | 'decrement';

export interface PlaceOrderBody {
  market: string;
  side: Side;
  type: OrderType;
  price?: string;
  quantity: string;
  timeInForce?: TimeInForce;
  postOnly?: boolean;
  stp?: Stp;
  clientOrderId?: string;
  /** Stop order: trigger price (the last trade reaches it: buy at or above, sell at or below). */
  stopPrice?: string;
  /** Iceberg order: the quantity shown in the book at a time (GTC limit orders only). */
  displayQuantity?: string;
}

export interface ParsedOrder {
  market: Market;
  side: Side;
  type: OrderType;
  priceTicks: bigint | undefined;
  lots: bigint;
  timeInForce: TimeInForce;
  postOnly: boolean;
  stp: Stp | undefined;
  clientOrderId: string | undefined;
  stopTicks: bigint | undefined;
  /** Iceberg orders: lots shown at a time. */
  displayLots: bigint | undefined;
  /** Same normalised order → same hash ("1.0" and "1" are the same price). */
  requestHash: string;
}

export interface Priced {
  holdAsset: string;
  holdAmount: bigint;
  quoteBudgetTickLots: bigint | undefined;
  protectionPriceTicks: bigint | undefined;
}

const DECIMAL = /^(0|[1-9][0-9]*)(\.[0-9]+)?$/;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const BPS = 10_000n;

export function decimal(value: string, field: 'price' | 'quantity'): void {
  if (!DECIMAL.test(value) || value.length > 40) {
    throw badRequest(
      field === 'price' ? 'INVALID_PRICE' : 'INVALID_QUANTITY',
      `${field} must be a plain decimal string such as "0.015" (no exponent, sign or spaces)`,
      { [field]: value },
    );
  }
}

export function parseOrder(market: Market, body: PlaceOrderBody): ParsedOrder {
  const cfg = market.config;
  const timeInForce: TimeInForce = body.timeInForce ?? (body.type === 'market' ? 'IOC' : 'GTC');
  const postOnly = body.postOnly ?? false;
  let priceTicks: bigint | undefined;
  if (body.type === 'limit') {
    if (body.price === undefined) throw badRequest('PRICE_REQUIRED', 'a limit order needs a price');
    decimal(body.price, 'price');
    priceTicks = market.priceToTicks(body.price);
    if (priceTicks === undefined) {
      throw badRequest('INVALID_TICK', `price must be a multiple of the tick size ${cfg.tickSize}`, {
        tickSize: cfg.tickSize,
      });
    }
    if (priceTicks === 0n) throw badRequest('INVALID_PRICE', 'price must be greater than zero');
    if (priceTicks > MAX_SAFE) throw badRequest('PRICE_OUT_OF_RANGE', 'price is too large');
    if (postOnly && timeInForce !== 'GTC') {
      throw badRequest('INVALID_POST_ONLY', 'postOnly orders must be GTC (IOC/FOK always take liquidity)');
    }
  } else {
    if (body.price !== undefined) throw badRequest('PRICE_NOT_ALLOWED', 'a market order has no price');
    if (timeInForce === 'GTC') throw badRequest('INVALID_TIME_IN_FORCE', 'a market order is IOC or FOK');
    if (postOnly) throw badRequest('INVALID_POST_ONLY', 'a market order cannot be postOnly');
  }
  let stopTicks: bigint | undefined;
  if (body.stopPrice !== undefined) {
    decimal(body.stopPrice, 'price');
    stopTicks = market.priceToTicks(body.stopPrice);
    if (stopTicks === undefined) {
      throw badRequest('INVALID_TICK', `stopPrice must be a multiple of the tick size ${cfg.tickSize}`, {
        tickSize: cfg.tickSize,
      });
    }
    if (stopTicks === 0n || stopTicks > MAX_SAFE) throw badRequest('INVALID_STOP_PRICE', 'stopPrice is out of range');
    if (timeInForce === 'FOK') throw badRequest('INVALID_TIME_IN_FORCE', 'a stop order is GTC or IOC');
    if (postOnly) throw badRequest('INVALID_POST_ONLY', 'a stop order cannot be postOnly');
  }
  decimal(body.quantity, 'quantity');
  const lots = market.quantityToLots(body.quantity);
  if (lots === undefined) {
    throw badRequest('INVALID_LOT', `quantity must be a multiple of the lot size ${cfg.lotSize}`, {
      lotSize: cfg.lotSize,
    });
  }
  const baseUnits = market.baseUnits(lots);
  if (lots === 0n || baseUnits < parseAmount(cfg.minQuantity, market.base.precision)) {
    throw badRequest('QUANTITY_TOO_SMALL', `quantity must be at least ${cfg.minQuantity}`, {
      minQuantity: cfg.minQuantity,
    });
  }
  if (baseUnits > parseAmount(cfg.maxQuantity, market.base.precision)) {
    throw badRequest('QUANTITY_TOO_LARGE', `quantity must be at most ${cfg.maxQuantity}`, {
      maxQuantity: cfg.maxQuantity,
    });
  }
  if (priceTicks !== undefined) {
    if (priceTicks * lots > MAX_SAFE) throw badRequest('PRICE_OUT_OF_RANGE', 'price × quantity is too large');
    checkMinNotional(market, priceTicks, lots);
  }
  const displayLots = body.displayQuantity === undefined ? undefined : parseDisplay(market, body, lots, timeInForce);
  const normalised = {
    market: market.symbol,
    side: body.side,
    type: body.type,
    priceTicks: priceTicks?.toString() ?? null,
    lots: lots.toString(),
    timeInForce,
    postOnly,
    stp: body.stp ?? null,
    // only stop orders carry the key, so the hashes of other orders stay what they were
    ...(stopTicks !== undefined ? { stopPriceTicks: stopTicks.toString() } : {}),
    ...(displayLots !== undefined ? { displayLots: displayLots.toString() } : {}),
  };
  return {
    market,
    side: body.side,
    type: body.type,
    priceTicks,
    lots,
    timeInForce,
    postOnly,
    stp: body.stp,
    clientOrderId: body.clientOrderId,
    stopTicks,
    displayLots,
    requestHash: createHash('sha256').update(canonicalJson(normalised)).digest('hex'),
  };
}

/**
 * An iceberg's display quantity: a GTC limit order (it must be able to rest) that is not a stop, showing at least the
 * market's minimum quantity, a whole number of lots, and at most the order's quantity.
 */
function parseDisplay(market: Market, body: PlaceOrderBody, lots: bigint, timeInForce: TimeInForce): bigint {
  const cfg = market.config;
  const value = body.displayQuantity!;
  if (body.type !== 'limit' || timeInForce !== 'GTC') {
    throw badRequest('INVALID_DISPLAY_QUANTITY', 'displayQuantity needs a GTC limit order (an iceberg rests)');
  }
  if (body.stopPrice !== undefined) {
    throw badRequest('INVALID_DISPLAY_QUANTITY', 'a stop order cannot be an iceberg');
  }
  if (!DECIMAL.test(value) || value.length > 40) {
    throw badRequest('INVALID_DISPLAY_QUANTITY', 'displayQuantity must be a plain decimal string such as "0.1"', {
      displayQuantity: value,
    });
  }
  const display = market.quantityToLots(value);
  if (display === undefined) {
    throw badRequest('INVALID_LOT', `displayQuantity must be a multiple of the lot size ${cfg.lotSize}`, {
      lotSize: cfg.lotSize,
    });
  }
  if (display === 0n || market.baseUnits(display) < parseAmount(cfg.minQuantity, market.base.precision)) {
    throw badRequest('INVALID_DISPLAY_QUANTITY', `displayQuantity must be at least ${cfg.minQuantity}`, {
      minQuantity: cfg.minQuantity,
    });
  }
  if (display > lots) {
    throw badRequest('INVALID_DISPLAY_QUANTITY', 'displayQuantity must not exceed quantity', {
      displayQuantity: value,
    });
  }
  return display;
}

export function checkMinNotional(market: Market, ticks: bigint, lots: bigint): void {
  const min = parseAmount(market.config.minNotional, market.quote.precision, { allowZero: true });
  if (market.notional(ticks, lots) < min) {
    throw badRequest(
      'BELOW_MIN_NOTIONAL',
      `price × quantity must be at least ${market.config.minNotional} ${market.quote.symbol}`,
      { minNotional: market.config.minNotional },
    );
  }
}

/** Price band [last × (1 - band), last × (1 + band)] in ticks (inclusive, rounded inward). */
export function priceBand(market: Market, lastTicks: bigint): { low: bigint; high: bigint } {
  const band = BigInt(market.config.priceBandBps);
  const lowNum = lastTicks * (BPS - band);
  const low = lowNum / BPS + (lowNum % BPS === 0n ? 0n : 1n);
  const high = (lastTicks * (BPS + band)) / BPS;
  return { low: low < 1n ? 1n : low, high };
}

/**
 * The last trades whose price band holds `priceTicks`: `min`..`max` (`max` null when no last trade is too high), found
 * with `priceBand` itself, so a check against this range and `priceChecks` agree on every value. Both edges of the
 * band rise with the last trade, so the last trades that pass form one range: those whose band's high edge reaches
 * the price, up to those whose low edge still does.
 */
export function lastTradeRange(market: Market, priceTicks: bigint): { min: bigint; max: bigint | null } {
  // the first last trade in lo..hi for which `passes` holds (it holds for hi, and for every trade after one it
  // holds for)
  const first = (lo: bigint, hi: bigint, passes: (last: bigint) => boolean) => {
    while (lo < hi) {
      const mid = (lo + hi) / 2n;
      if (passes(mid)) hi = mid;
      else lo = mid + 1n;
    }
    return lo;
  };
  // high(price) >= price: the lowest last trade that passes is at most the price itself
  const min = first(0n, priceTicks, (last) => priceBand(market, last).high >= priceTicks);
  // a band under 100 % has low(last) >= last / BPS, so no last trade from (price + 1) × BPS on passes
  const top = (priceTicks + 1n) * BPS;
  if (priceBand(market, top).low <= priceTicks) return { min, max: null };
  return { min, max: first(priceTicks, top, (last) => priceBand(market, last).low > priceTicks) - 1n };
}

/**
 * Checks that need the reference (last trade) price and the hold the order needs:
 * a buy limit holds notional(price, lots) of quote; a sell holds baseUnits(lots) of base; a market buy holds
 * quantity × protection price (last + band) and carries that as its quote budget. Fees are charged on the received
 * asset, so holds never include them.
 */
export function priceChecks(o: ParsedOrder, lastTradeTicks: bigint | undefined): Priced {
  const m = o.market;
  if (o.stopTicks !== undefined) return stopChecks(o, o.stopTicks, lastTradeTicks);
  if (o.type === 'limit') {
    const ticks = o.priceTicks!;
    if (lastTradeTicks !== undefined) {
      const { low, high } = priceBand(m, lastTradeTicks);
      if (ticks < low || ticks > high) {
        throw badRequest(
          'PRICE_OUT_OF_BAND',
          `price must be within ${m.config.priceBandBps / 100}% of the last trade (${m.ticksToPrice(low)}–${m.ticksToPrice(high)})`,
          { low: m.ticksToPrice(low), high: m.ticksToPrice(high), lastPrice: m.ticksToPrice(lastTradeTicks) },
        );
      }
    }
    return o.side === 'buy'
      ? {
          holdAsset: m.quote.symbol,
          holdAmount: m.notional(ticks, o.lots),
          quoteBudgetTickLots: undefined,
          protectionPriceTicks: undefined,
        }
      : {
          holdAsset: m.base.symbol,
          holdAmount: m.baseUnits(o.lots),
          quoteBudgetTickLots: undefined,
          protectionPriceTicks: undefined,
        };
  }
  if (lastTradeTicks === undefined) {
    throw badRequest('NO_REFERENCE_PRICE', `${m.symbol} has no last trade yet; place a limit order instead`);
  }
  checkMinNotional(m, lastTradeTicks, o.lots);
  const { low, high } = priceBand(m, lastTradeTicks);
  if (o.side === 'buy') {
    if (high * o.lots > MAX_SAFE) throw badRequest('PRICE_OUT_OF_RANGE', 'quantity × price is too large');
    return {
      holdAsset: m.quote.symbol,
      holdAmount: m.notional(high, o.lots),
      quoteBudgetTickLots: high * o.lots,
      protectionPriceTicks: high,
    };
  }
  return {
    holdAsset: m.base.symbol,
    holdAmount: m.baseUnits(o.lots),
    quoteBudgetTickLots: undefined,
    protectionPriceTicks: low,
  };
}

/**
 * A stop order trades when the last price reaches its stop price, so its prices are judged against the stop price
 * rather than the last trade: a stop-limit's limit must be within the price band around the stop price; a stop-loss
 * (market) gets the band's edge beyond the stop price as its protection price (it runs as an IOC limit there) and
 * holds for it: a buy holds quantity × protection price of quote, a sell its base. 400 STOP_WOULD_TRIGGER when the
 * last trade already reached the stop price.
 */
function stopChecks(o: ParsedOrder, stop: bigint, lastTradeTicks: bigint | undefined): Priced {
  const m = o.market;
  if (lastTradeTicks !== undefined && (o.side === 'buy' ? lastTradeTicks >= stop : lastTradeTicks <= stop)) {
    throw badRequest(
      'STOP_WOULD_TRIGGER',
      `the last trade (${m.ticksToPrice(lastTradeTicks)}) already reached the stop price; place a plain order instead`,
      { lastPrice: m.ticksToPrice(lastTradeTicks) },
    );
  }
  const { low, high } = priceBand(m, stop);
  if (o.type === 'limit') {
    const ticks = o.priceTicks!;
    if (ticks < low || ticks > high) {
      throw badRequest(
        'PRICE_OUT_OF_BAND',
        `a stop-limit's price must be within ${m.config.priceBandBps / 100}% of its stop price (${m.ticksToPrice(low)}–${m.ticksToPrice(high)})`,
        { low: m.ticksToPrice(low), high: m.ticksToPrice(high) },
      );
    }
    return {
      holdAsset: o.side === 'buy' ? m.quote.symbol : m.base.symbol,
      holdAmount: o.side === 'buy' ? m.notional(ticks, o.lots) : m.baseUnits(o.lots),
      quoteBudgetTickLots: undefined,
      protectionPriceTicks: undefined,
    };
  }
  checkMinNotional(m, stop, o.lots);
  if (o.side === 'buy') {
    if (high * o.lots > MAX_SAFE) throw badRequest('PRICE_OUT_OF_RANGE', 'quantity × price is too large');
    return {
      holdAsset: m.quote.symbol,
      holdAmount: m.notional(high, o.lots),
      quoteBudgetTickLots: undefined,
      protectionPriceTicks: high,
    };
  }
  return {
    holdAsset: m.base.symbol,
    holdAmount: m.baseUnits(o.lots),
    quoteBudgetTickLots: undefined,
    protectionPriceTicks: low,
  };
}
