/** Public market-data read models: L2 book, recent trades, 24h ticker, OHLCV candles (SQL in repository.ts). */
import type pg from 'pg';
import { Type, type Static } from '@sinclair/typebox';
import { formatFixed, type Market } from '@exchange/contracts/markets';
import { CANDLE_INTERVALS, type CandleInterval } from './candles.ts';
import { candles, findBook, lastTrade, recentTrades, tickerAggregate, type TradeRow } from './repository.ts';

const Level = Type.Tuple([Type.String({ description: 'price' }), Type.String({ description: 'quantity' })]);

export const AuctionSchema = Type.Object(
  {
    referencePrice: Type.String({ description: 'The last trade price before the auction started' }),
    indicativePrice: Type.Union([Type.String(), Type.Null()], {
      description: 'The price the uncross would use now, from the displayed book (null: nothing crosses)',
    }),
    indicativeQuantity: Type.String({ description: 'The quantity the uncross would execute now (displayed book)' }),
  },
  { description: 'The volatility guard paused continuous trading into a call auction (docs/api.md)' },
);
export const BookSchema = Type.Object({
  market: Type.String(),
  seq: Type.String({ description: 'Engine sequence number of this snapshot' }),
  phase: Type.Union([Type.Literal('continuous'), Type.Literal('auction')], {
    description: 'auction: orders are collected without matching (the book may cross) until the uncross',
  }),
  auction: Type.Union([AuctionSchema, Type.Null()]),
  bids: Type.Array(Level),
  asks: Type.Array(Level),
  at: Type.Union([Type.String(), Type.Null()]),
});
export const TradeSchema = Type.Object({
  tradeId: Type.String(),
  market: Type.String(),
  seq: Type.String(),
  price: Type.String(),
  quantity: Type.String(),
  side: Type.Union([Type.Literal('buy'), Type.Literal('sell')], { description: 'Taker side' }),
  at: Type.String(),
});
export const TickerSchema = Type.Object({
  market: Type.String(),
  lastPrice: Type.Union([Type.String(), Type.Null()]),
  bestBid: Type.Union([Type.String(), Type.Null()]),
  bestAsk: Type.Union([Type.String(), Type.Null()]),
  open24h: Type.Union([Type.String(), Type.Null()]),
  high24h: Type.Union([Type.String(), Type.Null()]),
  low24h: Type.Union([Type.String(), Type.Null()]),
  change24h: Type.Union([Type.String(), Type.Null()], { description: 'last - open (signed decimal)' }),
  volume24h: Type.String({ description: 'Base volume' }),
  quoteVolume24h: Type.String(),
  trades24h: Type.Integer(),
  lastTradeAt: Type.Union([Type.String(), Type.Null()]),
});
export const CandleSchema = Type.Object({
  openTime: Type.String(),
  open: Type.String(),
  high: Type.String(),
  low: Type.String(),
  close: Type.String(),
  volume: Type.String(),
  quoteVolume: Type.String(),
  trades: Type.Integer(),
});

export type Book = Static<typeof BookSchema>;
export type TradeDto = Static<typeof TradeSchema>;

export async function getBook(pool: pg.Pool, market: Market, depth: number): Promise<Book> {
  const r = await findBook(pool, market.symbol);
  if (!r) return { market: market.symbol, seq: '0', phase: 'continuous', auction: null, bids: [], asks: [], at: null };
  return {
    market: market.symbol,
    seq: r.seq,
    phase: r.auction ? 'auction' : 'continuous',
    auction: r.auction ?? null,
    bids: r.bids.slice(0, depth),
    asks: r.asks.slice(0, depth),
    at: r.at.toISOString(),
  };
}

export function tradeDto(market: Market, r: TradeRow): TradeDto {
  return {
    tradeId: r.trade_id,
    market: r.market,
    seq: r.seq,
    price: market.ticksToPrice(BigInt(r.price_ticks)),
    quantity: market.lotsToQuantity(BigInt(r.quantity_lots)),
    side: r.taker_side,
    at: r.executed_at.toISOString(),
  };
}

export async function getTrades(pool: pg.Pool, market: Market, limit: number): Promise<TradeDto[]> {
  return (await recentTrades(pool, market.symbol, limit)).map((r) => tradeDto(market, r));
}

export async function getTicker(pool: pg.Pool, market: Market, now = new Date()): Promise<Static<typeof TickerSchema>> {
  const a = await tickerAggregate(pool, market.symbol, now);
  const st = await lastTrade(pool, market.symbol);
  const book = await getBook(pool, market, 1);
  const p = (t: string | null | undefined) => (t == null ? null : market.ticksToPrice(BigInt(t)));
  const last = st?.last_trade_ticks ?? null;
  return {
    market: market.symbol,
    lastPrice: p(last),
    bestBid: book.bids[0]?.[0] ?? null,
    bestAsk: book.asks[0]?.[0] ?? null,
    open24h: p(a.open_ticks),
    high24h: p(a.high),
    low24h: p(a.low),
    change24h:
      a.open_ticks !== null && a.close_ticks !== null
        ? formatFixed((BigInt(a.close_ticks) - BigInt(a.open_ticks)) * market.tick.units, market.tick.scale)
        : null,
    volume24h: market.lotsToQuantity(BigInt(a.vol ?? '0')),
    quoteVolume24h: formatFixed(BigInt(a.qvol ?? '0'), market.quote.precision),
    trades24h: a.n,
    lastTradeAt: st?.last_trade_at?.toISOString() ?? null,
  };
}

export async function getCandles(
  pool: pg.Pool,
  market: Market,
  q: { interval: CandleInterval; from?: string; to?: string; limit: number },
): Promise<Array<Static<typeof CandleSchema>>> {
  const seconds = CANDLE_INTERVALS[q.interval];
  const to = q.to ? new Date(q.to) : new Date();
  const from = q.from ? new Date(q.from) : new Date(to.getTime() - seconds * 1000 * q.limit);
  const rows = await candles(pool, market.symbol, { interval: q.interval, from, to, limit: q.limit });
  return rows.map((r) => ({
    openTime: r.open_time.toISOString(),
    open: market.ticksToPrice(BigInt(r.open_ticks)),
    high: market.ticksToPrice(BigInt(r.high_ticks)),
    low: market.ticksToPrice(BigInt(r.low_ticks)),
    close: market.ticksToPrice(BigInt(r.close_ticks)),
    volume: market.lotsToQuantity(BigInt(r.volume_lots)),
    quoteVolume: formatFixed(BigInt(r.quote_volume), market.quote.precision),
    trades: r.trades,
  }));
}
