/** Public market-data read models: L2 book, recent trades, 24h ticker, OHLCV candles. */
import type pg from 'pg';
import { Type, type Static } from '@sinclair/typebox';
import { formatFixed, type Market } from '@exchange/contracts/markets';
import { ORDERS_SCHEMA } from './db/schema.ts';
import { CANDLE_INTERVALS, type CandleInterval } from './events.ts';

/** The orders schema, quoted for SQL text. */
const ORDERS = `"${ORDERS_SCHEMA}"`;
const Level = Type.Tuple([Type.String({ description: 'price' }), Type.String({ description: 'quantity' })]);

export const BookSchema = Type.Object({
  market: Type.String(),
  seq: Type.String({ description: 'Engine sequence number of this snapshot' }),
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
  const { rows } = await pool.query<{ seq: string; bids: [string, string][]; asks: [string, string][]; at: Date }>(
    `SELECT seq, bids, asks, at FROM ${ORDERS}.books WHERE market = $1`,
    [market.symbol],
  );
  const r = rows[0];
  if (!r) return { market: market.symbol, seq: '0', bids: [], asks: [], at: null };
  return {
    market: market.symbol,
    seq: r.seq,
    bids: r.bids.slice(0, depth),
    asks: r.asks.slice(0, depth),
    at: r.at.toISOString(),
  };
}

interface TradeRow {
  trade_id: string;
  market: string;
  seq: string;
  price_ticks: string;
  quantity_lots: string;
  taker_side: 'buy' | 'sell';
  executed_at: Date;
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
  const { rows } = await pool.query<TradeRow>(
    `SELECT * FROM ${ORDERS}.trades WHERE market = $1 ORDER BY seq DESC LIMIT $2`,
    [market.symbol, limit],
  );
  return rows.map((r) => tradeDto(market, r));
}

export async function getTicker(pool: pg.Pool, market: Market, now = new Date()): Promise<Static<typeof TickerSchema>> {
  const { rows } = await pool.query<{
    n: number;
    open_ticks: string | null;
    close_ticks: string | null;
    high: string | null;
    low: string | null;
    vol: string | null;
    qvol: string | null;
  }>(
    `SELECT count(*)::int AS n,
            (array_agg(price_ticks ORDER BY seq ASC))[1] AS open_ticks,
            (array_agg(price_ticks ORDER BY seq DESC))[1] AS close_ticks,
            max(price_ticks) AS high, min(price_ticks) AS low,
            sum(quantity_lots) AS vol, sum(quote_amount) AS qvol
       FROM ${ORDERS}.trades WHERE market = $1 AND executed_at > $2::timestamptz - interval '24 hours'`,
    [market.symbol, now],
  );
  const { rows: st } = await pool.query<{ last_trade_ticks: string | null; last_trade_at: Date | null }>(
    `SELECT last_trade_ticks, last_trade_at FROM ${ORDERS}.market_state WHERE market = $1`,
    [market.symbol],
  );
  const book = await getBook(pool, market, 1);
  const a = rows[0]!;
  const p = (t: string | null | undefined) => (t == null ? null : market.ticksToPrice(BigInt(t)));
  const last = st[0]?.last_trade_ticks ?? null;
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
    lastTradeAt: st[0]?.last_trade_at?.toISOString() ?? null,
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
  const { rows } = await pool.query<{
    open_time: Date;
    open_ticks: string;
    high_ticks: string;
    low_ticks: string;
    close_ticks: string;
    volume_lots: string;
    quote_volume: string;
    trades: number;
  }>(
    `SELECT * FROM ${ORDERS}.candles WHERE market = $1 AND interval = $2 AND open_time >= $3 AND open_time <= $4
      ORDER BY open_time ASC LIMIT $5`,
    [market.symbol, q.interval, from, to, q.limit],
  );
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
