/**
 * Applies engine events (queue `order.events`, single active consumer, inbox-deduplicated) to the read models:
 * order state, per-user fills, the public trade tape, OHLCV candles, the last-trade reference and the L2 book.
 * Order updates are cumulative and carry the engine's per-market `seq`: an update is applied only when it is newer
 * than the last one applied, so duplicates and out-of-order deliveries are harmless.
 */
import type pg from 'pg';
import type { Envelope } from '@exchange/contracts';
import type { MarketCatalog } from '@exchange/contracts/markets';
import type { PayloadOf } from '@exchange/contracts';
import { BookSnapshotV1, OrderAmendedV1, OrderUpdatedV1, TradeExecutedV1 } from '@exchange/contracts/trading';
import { ORDERS_SCHEMA } from './db/schema.ts';
import type { Logger } from '@exchange/messaging';

/** The orders schema, quoted for SQL text. */
const ORDERS = `"${ORDERS_SCHEMA}"`;

export const CANDLE_INTERVALS = { '1m': 60, '5m': 300, '1h': 3600, '1d': 86400 } as const;
export type CandleInterval = keyof typeof CANDLE_INTERVALS;

export const EVENTS_QUEUE = 'order.events';
export const EVENT_BINDINGS = [
  'engine.order-updated.#',
  'engine.order-amended.#',
  'engine.trade-executed.#',
  'market.book-snapshot.#',
];

export type OrderUpdated = PayloadOf<typeof OrderUpdatedV1>;
export type TradeExecuted = PayloadOf<typeof TradeExecutedV1>;
export type BookSnapshot = PayloadOf<typeof BookSnapshotV1>;
export type OrderAmended = PayloadOf<typeof OrderAmendedV1>;

/** What changed, for callers that want to react after commit. */
export type Applied =
  | { kind: 'order'; applied: boolean }
  | { kind: 'amend'; applied: boolean }
  | { kind: 'trade'; applied: boolean }
  | { kind: 'book'; applied: boolean }
  | { kind: 'ignored' };

export function createEventHandler(opts: { catalog: MarketCatalog; log: Logger }) {
  return async function handle(message: Envelope, client: pg.PoolClient): Promise<Applied> {
    if (OrderUpdatedV1.is(message))
      return { kind: 'order', applied: await applyOrderUpdate(client, message.payload, opts.log) };
    if (TradeExecutedV1.is(message)) {
      return { kind: 'trade', applied: await applyTrade(client, opts.catalog, message.payload, opts.log) };
    }
    if (BookSnapshotV1.is(message)) return { kind: 'book', applied: await applyBook(client, message.payload) };
    if (OrderAmendedV1.is(message)) {
      return { kind: 'amend', applied: await applyAmend(client, message.payload, opts.log) };
    }
    opts.log.warn({ type: message.type, id: message.id }, 'order.events: ignoring a message of unexpected type');
    return { kind: 'ignored' };
  };
}

export async function applyOrderUpdate(c: pg.PoolClient, p: OrderUpdated, log: Logger): Promise<boolean> {
  const { rowCount } = await c.query(
    `UPDATE ${ORDERS}.orders
        SET status = $3, filled_lots = $4, filled_notional = $5, reason = $6, last_seq = $7, updated_at = now(),
            stop_triggered_at = CASE WHEN $8 THEN COALESCE(stop_triggered_at, now()) ELSE stop_triggered_at END
      WHERE id = $1 AND user_id = $2 AND (last_seq IS NULL OR last_seq < $7::numeric)`,
    [p.orderId, p.userId, p.status, p.filledLots, p.filledNotional, p.reason ?? null, p.seq, p.stopTriggered === true],
  );
  if (rowCount === 0) {
    const { rowCount: known } = await c.query(`SELECT 1 FROM ${ORDERS}.orders WHERE id = $1`, [p.orderId]);
    if (!known) log.warn({ orderId: p.orderId, market: p.market }, 'order update for an unknown order ignored');
    return false;
  }
  return true;
}

/**
 * The engine's answer to an amend: the amend row gets its outcome once (`sent`/`pending` → `applied`/`rejected`), and
 * only then, in the same transaction, an applied amend moves the order to its new price, total quantity and hold.
 */
export async function applyAmend(c: pg.PoolClient, p: OrderAmended, log: Logger): Promise<boolean> {
  const { rows } = await c.query<{ order_id: string }>(
    `UPDATE ${ORDERS}.order_amends SET status = $2, reason = $3, priority_kept = $4, hold_delta = $5, updated_at = now()
      WHERE id = $1 AND order_id = $6 AND status IN ('pending', 'sent', 'expiring') RETURNING order_id`,
    [p.amendId, p.ok ? 'applied' : 'rejected', p.reason ?? null, p.ok ? p.priorityKept : null, p.holdDelta, p.orderId],
  );
  if (!rows[0]) {
    const { rowCount } = await c.query(`SELECT 1 FROM ${ORDERS}.order_amends WHERE id = $1`, [p.amendId]);
    if (!rowCount) log.warn({ amendId: p.amendId, orderId: p.orderId }, 'outcome of an unknown amend ignored');
    return false;
  }
  if (p.ok) {
    await c.query(
      `UPDATE ${ORDERS}.orders SET price_ticks = COALESCE($2, price_ticks), quantity_lots = COALESCE($3, quantity_lots),
              hold_amount = hold_amount + $4, updated_at = now()
        WHERE id = $1`,
      [p.orderId, p.priceTicks ?? null, p.quantityLots ?? null, p.holdDelta],
    );
  }
  return true;
}

export async function applyTrade(
  c: pg.PoolClient,
  catalog: MarketCatalog,
  p: TradeExecuted,
  log: Logger,
): Promise<boolean> {
  const m = catalog.market(p.market);
  if (!m) {
    log.warn({ market: p.market, tradeId: p.tradeId }, 'trade for an unknown market ignored');
    return false;
  }
  const ins = await c.query(
    `INSERT INTO ${ORDERS}.trades (trade_id, market, seq, price_ticks, quantity_lots, quote_amount, taker_side, executed_at)
     VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (trade_id) DO NOTHING`,
    [p.tradeId, p.market, p.seq, p.priceTicks, p.quantityLots, p.quoteAmount, p.takerSide, p.at],
  );
  if (ins.rowCount === 0) return false; // already applied
  const makerSide = p.takerSide === 'buy' ? 'sell' : 'buy';
  const parties = [
    { orderId: p.takerOrderId, userId: p.takerUserId, side: p.takerSide, liquidity: 'taker' },
    { orderId: p.makerOrderId, userId: p.makerUserId, side: makerSide, liquidity: 'maker' },
  ];
  for (const x of parties) {
    const buyer = x.side === 'buy';
    await c.query(
      `INSERT INTO ${ORDERS}.fills (trade_id, order_id, user_id, market, side, liquidity, price_ticks, quantity_lots,
         base_amount, quote_amount, fee, fee_asset, executed_at)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13) ON CONFLICT (trade_id, order_id) DO NOTHING`,
      [
        p.tradeId,
        x.orderId,
        x.userId,
        p.market,
        x.side,
        x.liquidity,
        p.priceTicks,
        p.quantityLots,
        p.baseAmount,
        p.quoteAmount,
        buyer ? p.buyerFee : p.sellerFee,
        buyer ? m.base.symbol : m.quote.symbol,
        p.at,
      ],
    );
  }
  const at = new Date(p.at);
  for (const [interval, seconds] of Object.entries(CANDLE_INTERVALS)) {
    const openTime = new Date(Math.floor(at.getTime() / 1000 / seconds) * seconds * 1000);
    await c.query(
      `INSERT INTO ${ORDERS}.candles AS k (market, interval, open_time, open_ticks, open_seq, high_ticks, low_ticks,
         close_ticks, close_seq, volume_lots, quote_volume, trades)
       VALUES ($1,$2,$3,$4,$5,$4,$4,$4,$5,$6,$7,1)
       ON CONFLICT (market, interval, open_time) DO UPDATE SET
         open_ticks = CASE WHEN EXCLUDED.open_seq < k.open_seq THEN EXCLUDED.open_ticks ELSE k.open_ticks END,
         open_seq = LEAST(k.open_seq, EXCLUDED.open_seq),
         close_ticks = CASE WHEN EXCLUDED.close_seq > k.close_seq THEN EXCLUDED.close_ticks ELSE k.close_ticks END,
         close_seq = GREATEST(k.close_seq, EXCLUDED.close_seq),
         high_ticks = GREATEST(k.high_ticks, EXCLUDED.high_ticks),
         low_ticks = LEAST(k.low_ticks, EXCLUDED.low_ticks),
         volume_lots = k.volume_lots + EXCLUDED.volume_lots,
         quote_volume = k.quote_volume + EXCLUDED.quote_volume,
         trades = k.trades + 1`,
      [p.market, interval, openTime, p.priceTicks, p.seq, p.quantityLots, p.quoteAmount],
    );
  }
  await c.query(
    `INSERT INTO ${ORDERS}.market_state AS s (market, last_trade_ticks, last_trade_seq, last_trade_at)
     VALUES ($1,$2,$3,$4)
     ON CONFLICT (market) DO UPDATE SET last_trade_ticks = EXCLUDED.last_trade_ticks,
       last_trade_seq = EXCLUDED.last_trade_seq, last_trade_at = EXCLUDED.last_trade_at
     WHERE s.last_trade_seq IS NULL OR s.last_trade_seq < EXCLUDED.last_trade_seq`,
    [p.market, p.priceTicks, p.seq, p.at],
  );
  return true;
}

export async function applyBook(c: pg.PoolClient, p: BookSnapshot): Promise<boolean> {
  const { rowCount } = await c.query(
    `INSERT INTO ${ORDERS}.books AS b (market, seq, bids, asks, at) VALUES ($1,$2,$3,$4,$5)
     ON CONFLICT (market) DO UPDATE SET seq = EXCLUDED.seq, bids = EXCLUDED.bids, asks = EXCLUDED.asks, at = EXCLUDED.at
     WHERE b.seq < EXCLUDED.seq`,
    [p.market, p.seq, JSON.stringify(p.bids), JSON.stringify(p.asks), p.at],
  );
  return rowCount === 1;
}
