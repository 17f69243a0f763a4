/**
 * The SQL of the public market-data read models (books, trades, market_state, candles): the routes' reads, and the
 * projections the engine-event handler (messaging/order-events.ts) writes.
 */
import type pg from 'pg';
import { ORDERS_SCHEMA } from '../db/schema.ts';
import type { CandleInterval } from './candles.ts';

/** The orders schema, quoted for SQL text. */
const ORDERS = `"${ORDERS_SCHEMA}"`;
type Db = Pick<pg.Pool | pg.PoolClient, 'query'>;

export interface BookRow {
  seq: string;
  bids: [string, string][];
  asks: [string, string][];
  auction: { referencePrice: string; indicativePrice: string | null; indicativeQuantity: string } | null;
  at: Date;
}

export interface TradeRow {
  trade_id: string;
  market: string;
  seq: string;
  price_ticks: string;
  quantity_lots: string;
  taker_side: 'buy' | 'sell';
  executed_at: Date;
}

export interface TickerAggregateRow {
  n: number;
  open_ticks: string | null;
  close_ticks: string | null;
  high: string | null;
  low: string | null;
  vol: string | null;
  qvol: string | null;
}

export interface LastTradeRow {
  last_trade_ticks: string | null;
  last_trade_at: Date | null;
}

export interface CandleRow {
  open_time: Date;
  open_ticks: string;
  high_ticks: string;
  low_ticks: string;
  close_ticks: string;
  volume_lots: string;
  quote_volume: string;
  trades: number;
}

/** A trade as the wallet's reconciliation pages through them. */
export interface TradeRefRow {
  trade_id: string;
  market: string;
  executed_at: Date;
}

export async function findBook(pool: pg.Pool, market: string): Promise<BookRow | undefined> {
  const { rows } = await pool.query<BookRow>(
    `SELECT seq, bids, asks, auction, at FROM ${ORDERS}.books WHERE market = $1`,
    [market],
  );
  return rows[0];
}

export async function recentTrades(pool: pg.Pool, market: string, limit: number): Promise<TradeRow[]> {
  const { rows } = await pool.query<TradeRow>(
    `SELECT * FROM ${ORDERS}.trades WHERE market = $1 ORDER BY seq DESC LIMIT $2`,
    [market, limit],
  );
  return rows;
}

/** Count, open, close, high, low and volumes of the market's trades in the 24 hours before `now`. */
export async function tickerAggregate(pool: pg.Pool, market: string, now: Date): Promise<TickerAggregateRow> {
  const { rows } = await pool.query<TickerAggregateRow>(
    `SELECT count(*)::int AS n,
            (array_agg(price_ticks ORDER BY seq ASC))[1] AS open_ticks,
            (array_agg(price_ticks ORDER BY seq DESC))[1] AS close_ticks,
            max(price_ticks) AS high, min(price_ticks) AS low,
            sum(quantity_lots) AS vol, sum(quote_amount) AS qvol
       FROM ${ORDERS}.trades WHERE market = $1 AND executed_at > $2::timestamptz - interval '24 hours'`,
    [market, now],
  );
  return rows[0]!;
}

export async function lastTrade(pool: pg.Pool, market: string): Promise<LastTradeRow | undefined> {
  const { rows } = await pool.query<LastTradeRow>(
    `SELECT last_trade_ticks, last_trade_at FROM ${ORDERS}.market_state WHERE market = $1`,
    [market],
  );
  return rows[0];
}

export async function candles(
  pool: pg.Pool,
  market: string,
  q: { interval: CandleInterval; from: Date; to: Date; limit: number },
): Promise<CandleRow[]> {
  const { rows } = await pool.query<CandleRow>(
    `SELECT * FROM ${ORDERS}.candles WHERE market = $1 AND interval = $2 AND open_time >= $3 AND open_time <= $4
      ORDER BY open_time ASC LIMIT $5`,
    [market, q.interval, q.from, q.to, q.limit],
  );
  return rows;
}

/** Trades of `markets` executed in [from, to), after the trade id `after`, in trade id order. */
export async function tradeRefs(
  pool: pg.Pool,
  q: { markets: string[]; from: string; to: string; after: string | null; limit: number },
): Promise<TradeRefRow[]> {
  const { rows } = await pool.query<TradeRefRow>(
    `SELECT trade_id::text, market, executed_at FROM ${ORDERS}.trades
      WHERE market = ANY($5::text[]) AND executed_at >= $1 AND executed_at < $2
        AND ($3::uuid IS NULL OR trade_id > $3::uuid)
      ORDER BY trade_id LIMIT $4`,
    // by market: the (market, executed_at) index serves the window
    [q.from, q.to, q.after, q.limit, q.markets],
  );
  return rows;
}

/** One trade as `projectTrades` writes it: the tape row, its two fills and the candle buckets it falls in. */
export interface TradeProjection {
  tradeId: string;
  market: string;
  seq: string;
  priceTicks: string;
  quantityLots: string;
  quoteAmount: string;
  baseAmount: string;
  takerSide: 'buy' | 'sell';
  at: string;
  /** Taker first, then maker. */
  fills: Array<{
    orderId: string;
    userId: string;
    side: 'buy' | 'sell';
    liquidity: 'taker' | 'maker';
    fee: string;
    feeAsset: string;
  }>;
  candles: Array<{ interval: CandleInterval; openTime: Date }>;
}

/**
 * The projections of a list of trades in one statement (the tape, the fills, the candles, the fee-tier volume, the
 * last-trade reference); returns the ids of the trades whose tape row is new. A trade already on the tape writes
 * nothing, so a redelivered trade changes nothing. The result is the one applying the trades one after the other in
 * list order gives: a candle, a user's daily volume and the market's last trade are aggregated over the new trades
 * first (ON CONFLICT DO UPDATE may touch a row once per statement), with ties in `seq` broken by list order, as the
 * one-at-a-time comparisons (strictly older open, strictly newer close and last trade) break them. Fills get their
 * ids in list order. `list` must not name a trade id twice.
 */
export async function projectTrades(c: Db, list: TradeProjection[]): Promise<Set<string>> {
  if (list.length === 0) return new Set();
  const fills = list.flatMap((t, n) => t.fills.map((f) => ({ n: n + 1, ...f })));
  const buckets = list.flatMap((t, n) => t.candles.map((k) => ({ n: n + 1, ...k })));
  const { rows } = await c.query<{ trade_id: string }>(
    `WITH x AS (
       SELECT * FROM unnest($1::uuid[], $2::text[], $3::numeric[], $4::numeric[], $5::numeric[], $6::numeric[],
                            $7::text[], $8::timestamptz[], $9::numeric[])
         WITH ORDINALITY AS x(trade_id, market, seq, price_ticks, quantity_lots, quote_amount, taker_side, executed_at,
                              base_amount, n)),
     t AS (
       INSERT INTO ${ORDERS}.trades (trade_id, market, seq, price_ticks, quantity_lots, quote_amount, taker_side, executed_at)
       SELECT trade_id, market, seq, price_ticks, quantity_lots, quote_amount, taker_side, executed_at FROM x ORDER BY n
       ON CONFLICT (trade_id) DO NOTHING
       RETURNING trade_id),
     new AS (SELECT x.* FROM x JOIN t USING (trade_id)),
     y AS (
       SELECT * FROM unnest($10::int[], $11::uuid[], $12::uuid[], $13::text[], $14::text[], $15::numeric[], $16::text[])
         WITH ORDINALITY AS y(n, order_id, user_id, side, liquidity, fee, fee_asset, ord)),
     f AS (
       INSERT INTO ${ORDERS}.fills (trade_id, order_id, user_id, market, side, liquidity, price_ticks, quantity_lots,
         base_amount, quote_amount, fee, fee_asset, executed_at)
       SELECT new.trade_id, y.order_id, y.user_id, new.market, y.side, y.liquidity, new.price_ticks, new.quantity_lots,
              new.base_amount, new.quote_amount, y.fee, y.fee_asset, new.executed_at
         FROM y JOIN new ON new.n = y.n
        ORDER BY y.ord
       ON CONFLICT (trade_id, order_id) DO NOTHING),
     b AS (
       SELECT new.market, i.interval, i.open_time,
              (array_agg(new.price_ticks ORDER BY new.seq, new.n))[1] AS open_ticks, min(new.seq) AS open_seq,
              max(new.price_ticks) AS high_ticks, min(new.price_ticks) AS low_ticks,
              (array_agg(new.price_ticks ORDER BY new.seq DESC, new.n))[1] AS close_ticks, max(new.seq) AS close_seq,
              sum(new.quantity_lots) AS volume_lots, sum(new.quote_amount) AS quote_volume, count(*)::int AS trades
         FROM unnest($17::int[], $18::text[], $19::timestamptz[]) AS i(n, interval, open_time)
         JOIN new ON new.n = i.n
        GROUP BY new.market, i.interval, i.open_time),
     k AS (
       INSERT INTO ${ORDERS}.candles AS k (market, interval, open_time, open_ticks, open_seq, high_ticks, low_ticks,
         close_ticks, close_seq, volume_lots, quote_volume, trades)
       SELECT * FROM b
       ON CONFLICT (market, interval, open_time) DO UPDATE SET
         open_ticks = CASE WHEN EXCLUDED.open_seq < k.open_seq THEN EXCLUDED.open_ticks ELSE k.open_ticks END,
         open_seq = LEAST(k.open_seq, EXCLUDED.open_seq),
         close_ticks = CASE WHEN EXCLUDED.close_seq > k.close_seq THEN EXCLUDED.close_ticks ELSE k.close_ticks END,
         close_seq = GREATEST(k.close_seq, EXCLUDED.close_seq),
         high_ticks = GREATEST(k.high_ticks, EXCLUDED.high_ticks),
         low_ticks = LEAST(k.low_ticks, EXCLUDED.low_ticks),
         volume_lots = k.volume_lots + EXCLUDED.volume_lots,
         quote_volume = k.quote_volume + EXCLUDED.quote_volume,
         trades = k.trades + EXCLUDED.trades),
     v AS (
       INSERT INTO ${ORDERS}.volume_daily AS v (user_id, market, day, quote_volume)
       SELECT y.user_id, new.market, (new.executed_at AT TIME ZONE 'UTC')::date, sum(new.quote_amount)
         FROM y JOIN new ON new.n = y.n
        GROUP BY 1, 2, 3
       ON CONFLICT (user_id, market, day) DO UPDATE SET quote_volume = v.quote_volume + EXCLUDED.quote_volume),
     s AS (
       INSERT INTO ${ORDERS}.market_state AS s (market, last_trade_ticks, last_trade_seq, last_trade_at)
       SELECT DISTINCT ON (market) market, price_ticks, seq, executed_at FROM new ORDER BY market, seq DESC, n
       ON CONFLICT (market) DO UPDATE SET last_trade_ticks = EXCLUDED.last_trade_ticks,
         last_trade_seq = EXCLUDED.last_trade_seq, last_trade_at = EXCLUDED.last_trade_at
       WHERE s.last_trade_seq IS NULL OR s.last_trade_seq < EXCLUDED.last_trade_seq)
     SELECT trade_id::text FROM t`,
    [
      list.map((t) => t.tradeId),
      list.map((t) => t.market),
      list.map((t) => t.seq),
      list.map((t) => t.priceTicks),
      list.map((t) => t.quantityLots),
      list.map((t) => t.quoteAmount),
      list.map((t) => t.takerSide),
      list.map((t) => t.at),
      list.map((t) => t.baseAmount),
      fills.map((f) => f.n),
      fills.map((f) => f.orderId),
      fills.map((f) => f.userId),
      fills.map((f) => f.side),
      fills.map((f) => f.liquidity),
      fills.map((f) => f.fee),
      fills.map((f) => f.feeAsset),
      buckets.map((k) => k.n),
      buckets.map((k) => k.interval),
      buckets.map((k) => k.openTime),
    ],
  );
  return new Set(rows.map((r) => r.trade_id));
}

/** The market's L2 book, replaced when `seq` is newer than the stored one; true when it was. */
export async function upsertBook(c: Db, values: unknown[]): Promise<boolean> {
  const { rowCount } = await c.query(
    `INSERT INTO ${ORDERS}.books AS b (market, seq, bids, asks, auction, at) VALUES ($1,$2,$3,$4,$5,$6)
     ON CONFLICT (market) DO UPDATE SET seq = EXCLUDED.seq, bids = EXCLUDED.bids, asks = EXCLUDED.asks,
       auction = EXCLUDED.auction, at = EXCLUDED.at
     WHERE b.seq < EXCLUDED.seq`,
    values,
  );
  return rowCount === 1;
}
