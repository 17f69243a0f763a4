/**
 * The SQL of orders and market state: the routes' reads (orders, fills, staff and internal lookups), the orders
 * metrics, and the statements of the order entry, cancel and sweeper transactions (service.ts), of the engine's order
 * updates (messaging/order-events.ts) and of the fee tiers (fees.ts). The transactions and rules around them are in
 * service.ts; the amends' SQL is in amend-repository.ts. Each function sends one statement, its text unchanged from
 * where it was written (the prepared-statement cache and the query-plan test key on the text).
 *
 * A statement that finds an order by its key and acts only if the order is in some state writes that state check as
 * `(status …) IS TRUE`, so that no partial index over those states (pending, open) is scanned whole in place of the
 * key lookup: with a million orders, finalizing a batch scanned every open order (docs/architecture.md, Conventions).
 */
import type pg from 'pg';
import { enqueueGuarded, type EnqueueOptions } from '@exchange/messaging';
import { ORDERS_SCHEMA } from '../db/schema.ts';
import type { PayloadOf } from '@exchange/contracts';
import type { OrderStatus, OrderUpdatedV1 } from '@exchange/contracts/trading';
import type { OrderRow } from './model.ts';

/** The orders schema, quoted for SQL text. */
const ORDERS = `"${ORDERS_SCHEMA}"`;
type Db = Pick<pg.Pool | pg.PoolClient, 'query'>;

/** The window of the volume that decides the fee tier. */
export const FEE_VOLUME_WINDOW_DAYS = 30;

/**
 * A user's traded volume in one market over the window, quote minor units, as a scalar subquery (order entry reads it
 * with its other checks in one statement): the current UTC day and the 29 before it, from the daily roll-up the trade
 * projection keeps (`volume_daily`), so it costs at most 30 rows whatever the user's history.
 */
export const volumeInWindowSql = (userParam: string, marketParam: string): string =>
  `(SELECT COALESCE(SUM(v.quote_volume), 0)::text FROM ${ORDERS}.volume_daily v
     WHERE v.user_id = ${userParam} AND v.market = ${marketParam}
       AND v.day > (now() AT TIME ZONE 'UTC')::date - ${FEE_VOLUME_WINDOW_DAYS})`;

/** A user's traded volume per market over the window (markets without fills are absent). */
export async function volumesByMarket(db: Db, userId: string): Promise<Map<string, bigint>> {
  const { rows } = await db.query<{ market: string; volume: string }>(
    `SELECT market, SUM(quote_volume)::text AS volume FROM ${ORDERS}.volume_daily
      WHERE user_id = $1 AND day > (now() AT TIME ZONE 'UTC')::date - ${FEE_VOLUME_WINDOW_DAYS}
      GROUP BY market`,
    [userId],
  );
  return new Map(rows.map((r) => [r.market, BigInt(r.volume)]));
}

export interface MarketStateRow {
  market: string;
  halted: boolean;
  halt_reason: string | null;
  halted_by: string | null;
  halted_at: Date | null;
  last_trade_ticks: string | null;
  last_trade_seq: string | null;
  last_trade_at: Date | null;
}

/** One order entry's key for its context read. */
export interface EntryKey {
  userId: string;
  clientOrderId: string | null;
  market: string;
}

export type EntryContextRow = MarketStateRow & {
  entry_existing_id: string | null;
  entry_open_orders: number;
  entry_volume: string;
};

/**
 * Order entry's reads for one entry `k` (user_id, client_order_id, market): the inputs of its checks, the market's
 * state aside.
 */
const ENTRY_READS = `(SELECT o.id FROM ${ORDERS}.orders o WHERE o.user_id = k.user_id AND o.client_order_id = k.client_order_id)
              AS entry_existing_id,
            (SELECT count(*)::int FROM ${ORDERS}.orders o
              WHERE o.user_id = k.user_id AND o.status IN ('pending', 'new', 'partially_filled')) AS entry_open_orders,
            ${volumeInWindowSql('k.user_id', 'k.market')} AS entry_volume`;

/**
 * What order entry reads before its insert (see OrderService.entryContext), for a batch of entries in one statement:
 * one row per key, in the keys' order. Concurrent order entries share this round trip (a batch of one when idle).
 */
export async function entryContexts(db: Db, keys: EntryKey[]): Promise<EntryContextRow[]> {
  const { rows } = await db.query<EntryContextRow & { entry_n: string }>(
    `SELECT k.n AS entry_n,
            ${ENTRY_READS},
            s.*
       FROM unnest($1::uuid[], $2::text[], $3::text[]) WITH ORDINALITY AS k(user_id, client_order_id, market, n)
       LEFT JOIN ${ORDERS}.market_state s ON s.market = k.market
      ORDER BY k.n`,
    [keys.map((k) => k.userId), keys.map((k) => k.clientOrderId), keys.map((k) => k.market)],
  );
  if (rows.length !== keys.length) throw new Error(`entry context: ${rows.length} rows for ${keys.length} keys`);
  return rows.map(({ entry_n: _n, ...row }) => row);
}

export async function findMarketState(db: Db, market: string): Promise<MarketStateRow | undefined> {
  const { rows } = await db.query<MarketStateRow>(`SELECT * FROM ${ORDERS}.market_state WHERE market = $1`, [market]);
  return rows[0];
}

export async function allMarketStates(db: Db): Promise<MarketStateRow[]> {
  const { rows } = await db.query<MarketStateRow>(`SELECT * FROM ${ORDERS}.market_state`);
  return rows;
}

/** Halt or resume a market (creating its state row if it has none). */
export async function upsertHalt(
  db: Db,
  market: string,
  halted: boolean,
  reason: string | null,
  actor: string,
): Promise<MarketStateRow> {
  const { rows } = await db.query<MarketStateRow>(
    `INSERT INTO ${ORDERS}.market_state (market, halted, halt_reason, halted_by, halted_at)
       VALUES ($1, $2, $3, $4, now())
       ON CONFLICT (market) DO UPDATE SET halted = EXCLUDED.halted, halt_reason = EXCLUDED.halt_reason,
         halted_by = EXCLUDED.halted_by, halted_at = EXCLUDED.halted_at
       RETURNING *`,
    [market, halted, reason, actor],
  );
  return rows[0]!;
}

export async function findByClientOrderId(
  db: Db,
  userId: string,
  clientOrderId: string,
): Promise<OrderRow | undefined> {
  const { rows } = await db.query<OrderRow>(
    `SELECT * FROM ${ORDERS}.orders WHERE user_id = $1 AND client_order_id = $2`,
    [userId, clientOrderId],
  );
  return rows[0];
}

/** The values of a new `pending` order, in the insert's column order. */
export type PendingOrderValues = [
  id: string,
  userId: string,
  clientOrderId: string | null,
  requestHash: string,
  market: string,
  side: string,
  type: string,
  priceTicks: string | null,
  quantityLots: string,
  timeInForce: string,
  postOnly: boolean,
  stp: string | null,
  holdAsset: string,
  holdAmount: string,
  quoteBudgetTickLots: string | null,
  protectionPriceTicks: string | null,
  stopPriceTicks: string | null,
  makerFeeBps: number,
  takerFeeBps: number,
  displayLots: string | null,
];

const PENDING_COLUMNS = `id, user_id, client_order_id, request_hash, market, side, type, price_ticks,
         quantity_lots, time_in_force, post_only, stp, hold_asset, hold_amount, quote_budget_tick_lots,
         protection_price_ticks, stop_price_ticks, maker_fee_bps, taker_fee_bps, display_lots`;
/** The parameters $1..$20 of a batch of pending orders: PendingOrderValues' columns, each as an array. */
const PENDING_ARRAYS = `$1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
         $7::text[], $8::numeric[], $9::numeric[], $10::text[], $11::boolean[], $12::text[], $13::text[],
         $14::numeric[], $15::numeric[], $16::numeric[], $17::numeric[], $18::integer[], $19::integer[], $20::numeric[]`;
const pendingColumns = (batch: PendingOrderValues[]) => Array.from({ length: 20 }, (_, i) => batch.map((v) => v[i]));

/**
 * Insert a batch of orders as `pending`, in one statement (one commit for the batch). Returns the rows inserted; an
 * order missing from them lost its clientOrderId to an existing order, or to an earlier one of the same batch.
 */
export async function insertPendings(db: Db, batch: PendingOrderValues[]): Promise<OrderRow[]> {
  const ins = await db.query<OrderRow>(
    `INSERT INTO ${ORDERS}.orders (${PENDING_COLUMNS}, status)
       SELECT *, 'pending' FROM unnest(${PENDING_ARRAYS})
       ON CONFLICT (user_id, client_order_id) WHERE client_order_id IS NOT NULL DO NOTHING
       RETURNING *`,
    pendingColumns(batch),
  );
  return ins.rows;
}

/** One entry of `enterPendings`: its row's values and the ranges its checks must hold. */
export interface DirectEntry {
  values: PendingOrderValues;
  lastMin: string;
  lastMax: string | null;
  volumeMin: string;
  volumeMax: string | null;
  maxOpen: number;
}

/**
 * A plain limit order's entry in one statement (see OrderService.enterDirect): the entry's reads, and its `pending`
 * insert only where every check those reads feed passes with the values given: the market not halted, fewer open
 * orders than `maxOpen`, the last trade (if any) within `lastMin`..`lastMax` (the last trades whose price band holds
 * the order's price) and the user's volume within `volumeMin`..`volumeMax` (exclusive: the range of the fee tier whose
 * rates the values carry). An order whose clientOrderId is taken (by an earlier order, or an earlier entry of the
 * batch) is not inserted either: the unique index's `ON CONFLICT`. One row per entry, in order: the reads, and the
 * order when it was inserted.
 */
export async function enterPendings(
  db: Db,
  batch: DirectEntry[],
): Promise<Array<{ reads: EntryContextRow; inserted: OrderRow | undefined }>> {
  const { rows } = await db.query<Record<string, unknown>>(
    `WITH k AS (
       SELECT * FROM unnest(${PENDING_ARRAYS}, $21::numeric[], $22::numeric[], $23::numeric[], $24::numeric[],
         $25::integer[]) WITH ORDINALITY AS k(${PENDING_COLUMNS}, last_min, last_max, volume_min, volume_max, max_open, n)
     ), c AS (
       SELECT k.*,
            ${ENTRY_READS},
            s.market AS state_market, s.halted AS state_halted, s.halt_reason AS state_halt_reason,
            s.halted_by AS state_halted_by, s.halted_at AS state_halted_at, s.last_trade_ticks AS state_last_trade_ticks,
            s.last_trade_seq AS state_last_trade_seq, s.last_trade_at AS state_last_trade_at
       FROM k LEFT JOIN ${ORDERS}.market_state s ON s.market = k.market
     ), ins AS (
       INSERT INTO ${ORDERS}.orders (${PENDING_COLUMNS}, status)
       SELECT ${PENDING_COLUMNS}, 'pending' FROM c
        WHERE c.state_halted IS NOT TRUE AND c.entry_open_orders < c.max_open
          AND (c.state_last_trade_ticks IS NULL OR (c.state_last_trade_ticks >= c.last_min
               AND (c.last_max IS NULL OR c.state_last_trade_ticks <= c.last_max)))
          AND c.entry_volume::numeric >= c.volume_min AND (c.volume_max IS NULL OR c.entry_volume::numeric < c.volume_max)
       ON CONFLICT (user_id, client_order_id) WHERE client_order_id IS NOT NULL DO NOTHING
       RETURNING *
     )
     SELECT c.entry_existing_id, c.entry_open_orders, c.entry_volume, c.state_market, c.state_halted,
            c.state_halt_reason, c.state_halted_by, c.state_halted_at, c.state_last_trade_ticks, c.state_last_trade_seq,
            c.state_last_trade_at, ins.*
       FROM c LEFT JOIN ins ON ins.id = c.id
      ORDER BY c.n`,
    [
      ...pendingColumns(batch.map((e) => e.values)),
      batch.map((e) => e.lastMin),
      batch.map((e) => e.lastMax),
      batch.map((e) => e.volumeMin),
      batch.map((e) => e.volumeMax),
      batch.map((e) => e.maxOpen),
    ],
  );
  if (rows.length !== batch.length) throw new Error(`order entry: ${rows.length} rows for ${batch.length} entries`);
  return rows.map((r) => {
    const reads: Record<string, unknown> = {};
    const order: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(r)) {
      if (k.startsWith('entry_')) reads[k] = v;
      else if (k.startsWith('state_')) reads[k.slice(6)] = v;
      else order[k] = v;
    }
    return {
      reads: reads as unknown as EntryContextRow,
      inserted: order.id ? (order as unknown as OrderRow) : undefined,
    };
  });
}

/** Remove an order that is still `pending` (its hold was refused). */
export async function deletePending(db: Db, orderId: string): Promise<void> {
  await db.query(`DELETE FROM ${ORDERS}.orders WHERE id = $1 AND (status = 'pending') IS TRUE`, [orderId]);
}

/** The orders of `ids` still pending → `new`. */
/**
 * The still-pending orders of `orders` → `new` and the commands of `items` (item i is order i's) in the outbox, in one
 * statement (see `enqueueGuarded`): a command is written only for an order this statement changed. Returns those.
 */
export async function markNewWithCommands(db: Db, items: EnqueueOptions[], orders: OrderRow[]): Promise<OrderRow[]> {
  const ids = orders.map((o) => o.id);
  return enqueueGuarded<OrderRow>(db, items, {
    sql: `UPDATE ${ORDERS}.orders SET status = 'new', updated_at = now()
           WHERE id = ANY($1::uuid[]) AND (status = 'pending') IS TRUE RETURNING *`,
    values: [ids],
    dependsOn: ids,
  });
}

export async function findOwnOrder(db: Db, userId: string, orderId: string): Promise<OrderRow | undefined> {
  const { rows } = await db.query<OrderRow>(`SELECT * FROM ${ORDERS}.orders WHERE id = $1 AND user_id = $2`, [
    orderId,
    userId,
  ]);
  return rows[0];
}

/** The user's order, locked for the transaction. */
export async function lockOwnOrder<R extends OrderRow = OrderRow>(
  c: pg.PoolClient,
  userId: string,
  orderId: string,
): Promise<R | undefined> {
  const { rows } = await c.query<R>(`SELECT * FROM ${ORDERS}.orders WHERE id = $1 AND user_id = $2 FOR UPDATE`, [
    orderId,
    userId,
  ]);
  return rows[0];
}

/** A user's orders, newest first, below the `cursor` id; `limit + 1` rows so the caller knows whether more follow. */
export async function ordersPage(
  db: Db,
  userId: string,
  f: { market?: string; status?: OrderStatus; open?: boolean; cursor?: string; limit: number },
): Promise<OrderRow[]> {
  const where = ['user_id = $1'];
  const values: unknown[] = [userId];
  if (f.market) {
    values.push(f.market);
    where.push(`market = $${values.length}`);
  }
  if (f.status) {
    values.push(f.status);
    where.push(`status = $${values.length}`);
  }
  if (f.open) where.push(`status IN ('new','partially_filled')`);
  if (f.cursor) {
    values.push(f.cursor);
    where.push(`id < $${values.length}::uuid`);
  }
  values.push(f.limit + 1);
  const { rows } = await db.query<OrderRow>(
    `SELECT * FROM ${ORDERS}.orders WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT $${values.length}`,
    values,
  );
  return rows;
}

/**
 * The user's order `o`, if still open: marked cancel-requested (a repeated request keeps the first one's time and
 * `updated_at`) and its cancel command `item` in the outbox, in one statement (see `enqueueGuarded`). Returns the
 * order, or nothing (and writes nothing) if it is no longer open.
 */
export async function markCancelRequestedWithCommand(db: Db, o: OrderRow, item: EnqueueOptions): Promise<OrderRow[]> {
  return enqueueGuarded<OrderRow>(db, [item], {
    sql: `UPDATE ${ORDERS}.orders
             SET cancel_requested_at = COALESCE(cancel_requested_at, now()),
                 updated_at = CASE WHEN cancel_requested_at IS NULL THEN now() ELSE updated_at END
           WHERE id = $1 AND user_id = $2 AND (status IN ('new','partially_filled')) IS TRUE RETURNING *`,
    values: [o.id, o.user_id],
    dependsOn: [o.id],
  });
}

/** Mark every open order of the user (optionally of one market) not yet being cancelled; unordered. */
export async function markUserCancelsRequested(c: Db, userId: string, market: string | null): Promise<OrderRow[]> {
  const { rows } = await c.query<OrderRow>(
    `UPDATE ${ORDERS}.orders SET cancel_requested_at = now(), updated_at = now()
        WHERE user_id = $1 AND status IN ('new','partially_filled') AND cancel_requested_at IS NULL
          AND ($2::text IS NULL OR market = $2)
        RETURNING *`,
    [userId, market],
  );
  return rows;
}

/** Mark every open order of the market not yet being cancelled, whoever owns it; unordered. */
export async function markMarketCancelsRequested(c: Db, market: string): Promise<OrderRow[]> {
  const { rows } = await c.query<OrderRow>(
    `UPDATE ${ORDERS}.orders SET cancel_requested_at = now(), updated_at = now()
          WHERE market = $1 AND status IN ('new','partially_filled') AND cancel_requested_at IS NULL
          RETURNING *`,
    [market],
  );
  return rows;
}

/** One sweeper at a time across replicas: a session advisory lock on the connection `c`. */
export async function tryLockSweeper(c: pg.PoolClient): Promise<boolean> {
  const { rows: lk } = await c.query<{ ok: boolean }>(
    `SELECT pg_try_advisory_lock(hashtextextended('orders:sweeper', 0)) AS ok`,
  );
  return lk[0]?.ok === true;
}

export async function unlockSweeper(c: pg.PoolClient): Promise<void> {
  await c.query(`SELECT pg_advisory_unlock(hashtextextended('orders:sweeper', 0))`);
}

/** Up to 100 `pending` orders older than `timeoutMs`, oldest first. */
export async function stalePending(db: Db, timeoutMs: number): Promise<OrderRow[]> {
  const { rows } = await db.query<OrderRow>(
    `SELECT * FROM ${ORDERS}.orders WHERE status = 'pending'
             AND created_at < now() - make_interval(secs => $1::double precision / 1000)
           ORDER BY created_at LIMIT 100`,
    [timeoutMs],
  );
  return rows;
}

/** Up to 100 orders whose hold release has still to be done, oldest first. */
export async function holdReleasesPending(db: Db): Promise<OrderRow[]> {
  const { rows } = await db.query<OrderRow>(
    `SELECT * FROM ${ORDERS}.orders WHERE hold_release_pending ORDER BY created_at LIMIT 100`,
  );
  return rows;
}

/** A still `pending` order → `rejected` with its hold release to do; undefined if it was no longer pending. */
export async function rejectPending(db: Db, orderId: string, reason: string): Promise<OrderRow | undefined> {
  const { rows } = await db.query<OrderRow>(
    `UPDATE ${ORDERS}.orders SET status = 'rejected', reason = $2, hold_release_pending = true, updated_at = now()
        WHERE id = $1 AND (status = 'pending') IS TRUE RETURNING *`,
    [orderId, reason],
  );
  return rows[0];
}

export async function clearHoldReleasePending(db: Db, orderId: string): Promise<void> {
  await db.query(`UPDATE ${ORDERS}.orders SET hold_release_pending = false WHERE id = $1`, [orderId]);
}

/** An order update from the engine, applied when newer than the last one (`last_seq`); false when it was not. */
export async function applyEngineUpdate(c: Db, p: PayloadOf<typeof OrderUpdatedV1>): Promise<boolean> {
  const { rowCount } = await c.query(
    `UPDATE ${ORDERS}.orders
        SET status = $3, filled_lots = $4, filled_notional = $5, reason = $6, last_seq = $7, updated_at = now(),
            stop_triggered_at = CASE WHEN $8 THEN COALESCE(stop_triggered_at, now()) ELSE stop_triggered_at END
      WHERE id = $1 AND user_id = $2 AND (last_seq IS NULL OR last_seq < $7::numeric)`,
    [p.orderId, p.userId, p.status, p.filledLots, p.filledNotional, p.reason ?? null, p.seq, p.stopTriggered === true],
  );
  return rowCount !== 0;
}

/**
 * `applyEngineUpdate` for a list, with the outcome of applying them one after the other in one statement: an update
 * applies when its seq is above both the order's stored `last_seq` and every earlier update of the same order (and
 * user: another user's never applies) in the list; the order ends with its newest applied update, and `stop_triggered_at` is set when any applied update says
 * the stop fired. Returns the indexes of the updates that applied.
 */
export async function applyEngineUpdates(c: Db, list: PayloadOf<typeof OrderUpdatedV1>[]): Promise<Set<number>> {
  if (list.length === 0) return new Set();
  const { rows } = await c.query<{ n: string }>(
    `WITH u AS (
       SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::numeric[], $5::numeric[], $6::text[],
                            $7::numeric[], $8::boolean[])
                WITH ORDINALITY AS u(oid, uid, st, lots, notional, why, useq, stop, n)),
     r AS (
       SELECT u.*, o.last_seq AS stored,
              max(u.useq) OVER (PARTITION BY u.oid ORDER BY u.n ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev
         FROM u JOIN ${ORDERS}.orders o ON o.id = u.oid AND o.user_id = u.uid),
     a AS (
       SELECT * FROM r WHERE (stored IS NULL OR useq > stored) AND (prev IS NULL OR useq > prev)),
     w AS (
       SELECT DISTINCT ON (oid) oid, st, lots, notional, why, useq, bool_or(stop) OVER (PARTITION BY oid) AS stop
         FROM a ORDER BY oid, useq DESC),
     done AS (
       UPDATE ${ORDERS}.orders o
          SET status = w.st, filled_lots = w.lots, filled_notional = w.notional, reason = w.why, last_seq = w.useq,
              updated_at = now(),
              stop_triggered_at = CASE WHEN w.stop THEN COALESCE(o.stop_triggered_at, now()) ELSE o.stop_triggered_at END
         FROM w WHERE o.id = w.oid)
     SELECT n::text FROM a`,
    [
      list.map((p) => p.orderId),
      list.map((p) => p.userId),
      list.map((p) => p.status),
      list.map((p) => p.filledLots),
      list.map((p) => p.filledNotional),
      list.map((p) => p.reason ?? null),
      list.map((p) => p.seq),
      list.map((p) => p.stopTriggered === true),
    ],
  );
  return new Set(rows.map((r) => Number(r.n) - 1));
}

/** The ids among `ids` that name an order. */
export async function existingOrders(c: Db, ids: string[]): Promise<Set<string>> {
  const { rows } = await c.query<{ id: string }>(`SELECT id::text FROM ${ORDERS}.orders WHERE id = ANY($1::uuid[])`, [
    ids,
  ]);
  return new Set(rows.map((r) => r.id));
}

/** An applied amend's new price, total quantity and hold change, on the order. */
export async function applyAmendToOrder(
  c: Db,
  orderId: string,
  priceTicks: string | null,
  quantityLots: string | null,
  holdDelta: string,
): Promise<void> {
  await c.query(
    `UPDATE ${ORDERS}.orders SET price_ticks = COALESCE($2, price_ticks), quantity_lots = COALESCE($3, quantity_lots),
              hold_amount = hold_amount + $4, updated_at = now()
        WHERE id = $1`,
    [orderId, priceTicks, quantityLots, holdDelta],
  );
}

export interface FillRow {
  id: string;
  trade_id: string;
  order_id: string;
  market: string;
  side: 'buy' | 'sell';
  liquidity: 'maker' | 'taker';
  price_ticks: string;
  quantity_lots: string;
  quote_amount: string;
  fee: string;
  fee_asset: string;
  executed_at: Date;
}

/** An order as the wallet's reconciliation sees it. */
export interface OrderRefRow {
  id: string;
  status: string;
  created_at: Date;
  updated_at: Date;
}

/** A user's fills, newest first, below the `cursor` id; `limit + 1` rows so the caller knows whether more follow. */
export async function fillsPage(
  pool: pg.Pool,
  userId: string,
  q: { market?: string; orderId?: string; cursor?: string; limit: number },
): Promise<FillRow[]> {
  const values: unknown[] = [userId];
  const where = ['user_id = $1'];
  if (q.market) where.push(`market = $${values.push(q.market)}`);
  if (q.orderId) where.push(`order_id = $${values.push(q.orderId)}`);
  if (q.cursor) where.push(`id < $${values.push(q.cursor)}::bigint`);
  const lim = values.push(q.limit + 1);
  const { rows } = await pool.query<FillRow>(
    `SELECT id::text AS id, trade_id, order_id, market, side, liquidity, price_ticks, quantity_lots, quote_amount,
            fee, fee_asset, executed_at
       FROM ${ORDERS}.fills WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT $${lim}`,
    values,
  );
  return rows;
}

/** Any user's order by id (staff lookups). */
export async function findOrder(pool: pg.Pool, id: string): Promise<OrderRow | undefined> {
  const { rows } = await pool.query<OrderRow>(`SELECT * FROM ${ORDERS}.orders WHERE id = $1`, [id]);
  return rows[0];
}

export async function orderRefs(pool: pg.Pool, ids: string[]): Promise<OrderRefRow[]> {
  const { rows } = await pool.query<OrderRefRow>(
    `SELECT id::text, status, created_at, updated_at FROM ${ORDERS}.orders WHERE id = ANY($1::uuid[]) ORDER BY id`,
    [ids],
  );
  return rows;
}

/** Open orders (new, partially filled) after the id `after`, in id order. */
export async function openOrderRefs(pool: pg.Pool, after: string | null, limit: number): Promise<OrderRefRow[]> {
  const { rows } = await pool.query<OrderRefRow>(
    `SELECT id::text, status, created_at, updated_at FROM ${ORDERS}.orders
      WHERE status IN ('new', 'partially_filled') AND ($1::uuid IS NULL OR id > $1::uuid)
      ORDER BY id LIMIT $2`,
    [after, limit],
  );
  return rows;
}

export async function countPending(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM ${ORDERS}.orders WHERE status = 'pending'`,
  );
  return rows[0]?.n ?? 0;
}
