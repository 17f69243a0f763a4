import { sql } from 'drizzle-orm';
import {
  bigserial,
  boolean,
  date,
  index,
  integer,
  jsonb,
  numeric,
  pgSchema,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import { featureFlagsTable, idempotencyKeysTable } from '@exchange/platform';
import { deadLetterTable, inboxTable, messageAttemptsTable, outboxTable } from '@exchange/messaging';

/** The order service's own Postgres schema. No other service reads it. */
export const ordersSchema = pgSchema('orders');
export const ORDERS_SCHEMA = 'orders';

const int = (name: string) => numeric(name, { precision: 38, scale: 0 });

/**
 * Orders. `pending` is local only (row written before the wallet hold; the recovery sweeper finishes or releases it);
 * every later status comes from the engine (`engine.order-updated`, applied only when its `seq` is newer).
 */
export const orders = ordersSchema.table(
  'orders',
  {
    id: uuid('id').primaryKey(),
    userId: uuid('user_id').notNull(),
    clientOrderId: text('client_order_id'),
    /** sha256 of the canonical request: same clientOrderId + same hash → same order; other hash → 409. */
    requestHash: text('request_hash').notNull(),
    market: text('market').notNull(),
    side: text('side').notNull(),
    type: text('type').notNull(),
    priceTicks: int('price_ticks'),
    quantityLots: int('quantity_lots').notNull(),
    timeInForce: text('time_in_force').notNull(),
    postOnly: boolean('post_only').notNull().default(false),
    stp: text('stp'),
    holdAsset: text('hold_asset').notNull(),
    /** Minor units of holdAsset reserved in the wallet (hold id = order id). */
    holdAmount: int('hold_amount').notNull(),
    quoteBudgetTickLots: int('quote_budget_tick_lots'),
    protectionPriceTicks: int('protection_price_ticks'),
    status: text('status').notNull(),
    filledLots: int('filled_lots').notNull().default('0'),
    /** Sum of price × quantity of the fills, in quote minor units. */
    filledNotional: int('filled_notional').notNull().default('0'),
    reason: text('reason'),
    cancelRequestedAt: timestamp('cancel_requested_at', { withTimezone: true }),
    /** Engine seq of the last applied update (null: none yet). */
    lastSeq: int('last_seq'),
    /** Set when the recovery sweeper rejected a pending order and still has to release its hold. */
    holdReleasePending: boolean('hold_release_pending').notNull().default(false),
    /** Number of amends requested so far (PATCH /orders/:id); the next amend is `amend_seq + 1`. */
    amendSeq: integer('amend_seq').notNull().default(0),
    /** Stop orders: trigger price in ticks (null: not a stop order). */
    stopPriceTicks: int('stop_price_ticks'),
    /** When the engine triggered the stop (null: waiting, or not a stop order). */
    stopTriggeredAt: timestamp('stop_triggered_at', { withTimezone: true }),
    /** Iceberg orders: lots shown in the book at a time (null: not an iceberg). */
    displayLots: int('display_lots'),
    /**
     * Fee rates of the user's volume tier when the order was accepted (30-day volume at that moment); carried in
     * PlaceOrderV1 and journaled by the engine, so the order's fills are charged at them. Null: orders from before
     * fee tiers (the market's base rates).
     */
    makerFeeBps: integer('maker_fee_bps'),
    takerFeeBps: integer('taker_fee_bps'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('orders_user_client_order_id_idx')
      .on(t.userId, t.clientOrderId)
      .where(sql`${t.clientOrderId} is not null`),
    index('orders_user_id_idx').on(t.userId, t.id),
    index('orders_pending_idx')
      .on(t.createdAt)
      .where(sql`${t.status} = 'pending'`),
    // the per-user open-order cap counts these on every order entry
    index('orders_user_open_idx')
      .on(t.userId)
      .where(sql`${t.status} in ('pending', 'new', 'partially_filled')`),
    // the recovery sweeper's retry of hold releases (rare rows; without it every sweep read the whole table)
    index('orders_hold_release_pending_idx')
      .on(t.createdAt)
      .where(sql`${t.holdReleasePending}`),
    // the wallet's reconciliation pages through open orders by id
    index('orders_open_idx')
      .on(t.id)
      .where(sql`${t.status} in ('new', 'partially_filled')`),
  ],
);

/**
 * Amends of an order (PATCH /api/v1/orders/:id), numbered per order by `amend_seq` (the idempotency key of an amend
 * besides Idempotency-Key). `pending`: written, top-up hold being reserved; `sent`: AmendOrderV1 in the outbox;
 * `applied` / `rejected`: the engine's answer (engine.order-amended), or rejected locally (funds, expiry).
 */
export const orderAmends = ordersSchema.table(
  'order_amends',
  {
    id: uuid('id').primaryKey(),
    orderId: uuid('order_id').notNull(),
    userId: uuid('user_id').notNull(),
    amendSeq: integer('amend_seq').notNull(),
    /** sha256 of the canonical amend (order, price, quantity): a replay with another body is 409. */
    requestHash: text('request_hash').notNull(),
    priceTicks: int('price_ticks'),
    /** New total quantity (filled + open). */
    quantityLots: int('quantity_lots'),
    /** Minor units of the order's hold asset reserved in the top-up hold (id = amend id); 0: none. */
    topUpAmount: int('top_up_amount').notNull().default('0'),
    status: text('status').notNull(),
    reason: text('reason'),
    priorityKept: boolean('priority_kept'),
    /** Signed change of the order's hold once applied. */
    holdDelta: int('hold_delta'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('order_amends_order_seq_idx').on(t.orderId, t.amendSeq),
    index('order_amends_open_idx')
      .on(t.createdAt)
      .where(sql`${t.status} in ('pending', 'sent')`),
  ],
);

/** One row per (trade, order): both sides of a trade, for GET /fills. */
export const fills = ordersSchema.table(
  'fills',
  {
    id: bigserial('id', { mode: 'bigint' }).primaryKey(),
    tradeId: uuid('trade_id').notNull(),
    orderId: uuid('order_id').notNull(),
    userId: uuid('user_id').notNull(),
    market: text('market').notNull(),
    side: text('side').notNull(),
    liquidity: text('liquidity').notNull(),
    priceTicks: int('price_ticks').notNull(),
    quantityLots: int('quantity_lots').notNull(),
    baseAmount: int('base_amount').notNull(),
    quoteAmount: int('quote_amount').notNull(),
    fee: int('fee').notNull(),
    feeAsset: text('fee_asset').notNull(),
    executedAt: timestamp('executed_at', { withTimezone: true }).notNull(),
  },
  (t) => [uniqueIndex('fills_trade_order_idx').on(t.tradeId, t.orderId), index('fills_user_idx').on(t.userId, t.id)],
);

/**
 * Dead-man's switches (POST /api/v1/orders/cancel-all-after): one per user, armed until `fires_at`. Any replica's
 * scheduler fires a due switch (cancels the user's open orders and deletes the row in one transaction), so it
 * survives restarts; calling the endpoint again moves `fires_at`, a timeout of 0 deletes the row.
 */
/**
 * A user's traded volume per market per UTC day (quote minor units, every fill counted, maker and taker), kept by the
 * trade projection in the same statement as the fills. Fee tiers read at most 30 rows of it per order instead of
 * summing the user's fills, so order entry costs the same whatever a user's history.
 */
export const volumeDaily = ordersSchema.table(
  'volume_daily',
  {
    userId: uuid('user_id').notNull(),
    market: text('market').notNull(),
    day: date('day').notNull(),
    quoteVolume: int('quote_volume').notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.market, t.day] })],
);

export const deadManSwitches = ordersSchema.table(
  'dead_man_switches',
  {
    userId: uuid('user_id').primaryKey(),
    timeoutSeconds: integer('timeout_seconds').notNull(),
    firesAt: timestamp('fires_at', { withTimezone: true }).notNull(),
    armedAt: timestamp('armed_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('dead_man_switches_fires_at_idx').on(t.firesAt)],
);

/**
 * Open WebSocket sessions that asked for cancel-on-disconnect. The replica holding the socket deletes its row and
 * cancels the orders in one transaction when the socket closes, and refreshes `seen_at` of its rows while it runs;
 * rows whose replica stopped refreshing them (it crashed) are swept by any replica after a grace period, which
 * cancels their orders the same way. `market` null: every market.
 */
export const codSessions = ordersSchema.table(
  'cod_sessions',
  {
    id: uuid('id').primaryKey(),
    userId: uuid('user_id').notNull(),
    market: text('market'),
    /** The order service process holding the socket (random per process start). */
    instanceId: uuid('instance_id').notNull(),
    openedAt: timestamp('opened_at', { withTimezone: true }).notNull().defaultNow(),
    seenAt: timestamp('seen_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('cod_sessions_instance_idx').on(t.instanceId), index('cod_sessions_seen_at_idx').on(t.seenAt)],
);

/** Public trade tape per market. */
export const trades = ordersSchema.table(
  'trades',
  {
    tradeId: uuid('trade_id').primaryKey(),
    market: text('market').notNull(),
    seq: int('seq').notNull(),
    priceTicks: int('price_ticks').notNull(),
    quantityLots: int('quantity_lots').notNull(),
    quoteAmount: int('quote_amount').notNull(),
    takerSide: text('taker_side').notNull(),
    executedAt: timestamp('executed_at', { withTimezone: true }).notNull(),
  },
  (t) => [index('trades_market_seq_idx').on(t.market, t.seq), index('trades_market_at_idx').on(t.market, t.executedAt)],
);

/** OHLCV per market and interval; open/close decided by engine seq so out-of-order trades land right. */
export const candles = ordersSchema.table(
  'candles',
  {
    market: text('market').notNull(),
    interval: text('interval').notNull(),
    openTime: timestamp('open_time', { withTimezone: true }).notNull(),
    openTicks: int('open_ticks').notNull(),
    openSeq: int('open_seq').notNull(),
    highTicks: int('high_ticks').notNull(),
    lowTicks: int('low_ticks').notNull(),
    closeTicks: int('close_ticks').notNull(),
    closeSeq: int('close_seq').notNull(),
    volumeLots: int('volume_lots').notNull(),
    quoteVolume: int('quote_volume').notNull(),
    trades: integer('trades').notNull(),
  },
  (t) => [primaryKey({ columns: [t.market, t.interval, t.openTime] })],
);

/** Latest L2 snapshot per market (applied only when its seq is newer). */
export const books = ordersSchema.table('books', {
  market: text('market').primaryKey(),
  seq: int('seq').notNull(),
  bids: jsonb('bids').notNull(),
  asks: jsonb('asks').notNull(),
  /** The volatility guard's call auction with its indicative uncross (null: continuous trading). */
  auction: jsonb('auction'),
  at: timestamp('at', { withTimezone: true }).notNull(),
});

/** Per-market operational state: halt flag (admin), last trade (price band reference, health). */
export const marketState = ordersSchema.table('market_state', {
  market: text('market').primaryKey(),
  halted: boolean('halted').notNull().default(false),
  haltReason: text('halt_reason'),
  haltedBy: text('halted_by'),
  haltedAt: timestamp('halted_at', { withTimezone: true }),
  lastTradeTicks: int('last_trade_ticks'),
  lastTradeSeq: int('last_trade_seq'),
  lastTradeAt: timestamp('last_trade_at', { withTimezone: true }),
});

export const idempotencyKeys = idempotencyKeysTable(ordersSchema);
export const featureFlags = featureFlagsTable(ordersSchema);
export const outbox = outboxTable(ordersSchema);
export const inbox = inboxTable(ordersSchema);
export const deadLetters = deadLetterTable(ordersSchema);
export const messageAttempts = messageAttemptsTable(ordersSchema);
