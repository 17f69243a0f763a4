/**
 * Handler for queue `order.events` (single active consumer, inbox-deduplicated): applies engine events to the read
 * models: order state, per-user fills, the public trade tape, OHLCV candles, the last-trade reference and the L2 book.
 * Order updates are cumulative and carry the engine's per-market `seq`: an update is applied only when it is newer
 * than the last one applied, so duplicates and out-of-order deliveries are harmless. The SQL is in the repositories
 * of orders/ and market-data/.
 */
import type pg from 'pg';
import type { Envelope } from '@exchange/contracts';
import type { MarketCatalog } from '@exchange/contracts/markets';
import type { PayloadOf } from '@exchange/contracts';
import { BookSnapshotV1, OrderAmendedV1, OrderUpdatedV1, TradeExecutedV1 } from '@exchange/contracts/trading';
import type { Logger } from '@exchange/messaging';
import { CANDLE_INTERVALS } from '../market-data/candles.ts';
import { projectTrades, upsertBook, type TradeProjection } from '../market-data/repository.ts';
import { amendExists, recordAmendOutcome } from '../orders/amend-repository.ts';
import { applyAmendToOrder, applyEngineUpdate, applyEngineUpdates, existingOrders } from '../orders/repository.ts';

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

/** Handler for queue `order.events`, with its batch form (`.batch`) for the consumer's group commit. */
export function orderEventsHandler(opts: { catalog: MarketCatalog; log: Logger }) {
  const handle = async function handle(message: Envelope, client: pg.PoolClient): Promise<Applied> {
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
  /**
   * A batch, with the outcome of handling its messages one after the other: the books and amends one at a time in
   * delivery order, then every trade in one statement and every order update in one statement (`applyTrades` and
   * `applyEngineUpdates` keep delivery order among their own). Moving trades and updates behind the rest changes
   * nothing: none of these events reads or writes what another kind writes (an amend's outcome sets price, quantity
   * and hold; an update sets status and filled quantities; trades and books have tables of their own).
   */
  const batch = async (messages: Envelope[], client: pg.PoolClient): Promise<void> => {
    const updates: OrderUpdated[] = [];
    const trades: TradeExecuted[] = [];
    for (const m of messages) {
      if (OrderUpdatedV1.is(m)) updates.push(m.payload);
      else if (TradeExecutedV1.is(m)) trades.push(m.payload);
      else await handle(m, client);
    }
    await applyTrades(client, opts.catalog, trades, opts.log);
    await applyOrderUpdates(client, updates, opts.log);
  };
  return Object.assign(handle, { batch });
}

/** `applyOrderUpdate` for a list (one statement, plus one to name the unknown orders when some did not apply). */
export async function applyOrderUpdates(c: pg.PoolClient, list: OrderUpdated[], log: Logger): Promise<void> {
  const applied = await applyEngineUpdates(c, list);
  const missed = list.filter((_, i) => !applied.has(i));
  if (missed.length === 0) return;
  const known = await existingOrders(c, [...new Set(missed.map((p) => p.orderId))]);
  for (const p of missed) {
    if (!known.has(p.orderId))
      log.warn({ orderId: p.orderId, market: p.market }, 'order update for an unknown order ignored');
  }
}

export async function applyOrderUpdate(c: pg.PoolClient, p: OrderUpdated, log: Logger): Promise<boolean> {
  if (!(await applyEngineUpdate(c, p))) {
    const known = await existingOrders(c, [p.orderId]);
    if (!known.has(p.orderId))
      log.warn({ orderId: p.orderId, market: p.market }, 'order update for an unknown order ignored');
    return false;
  }
  return true;
}

/**
 * The engine's answer to an amend: the amend row gets its outcome once (`sent`/`pending` → `applied`/`rejected`), and
 * only then, in the same transaction, an applied amend moves the order to its new price, total quantity and hold.
 */
export async function applyAmend(c: pg.PoolClient, p: OrderAmended, log: Logger): Promise<boolean> {
  if (!(await recordAmendOutcome(c, p))) {
    const known = await amendExists(c, p.amendId);
    if (!known) log.warn({ amendId: p.amendId, orderId: p.orderId }, 'outcome of an unknown amend ignored');
    return false;
  }
  if (p.ok) await applyAmendToOrder(c, p.orderId, p.priceTicks ?? null, p.quantityLots ?? null, p.holdDelta);
  return true;
}

export async function applyTrade(
  c: pg.PoolClient,
  catalog: MarketCatalog,
  p: TradeExecuted,
  log: Logger,
): Promise<boolean> {
  return (await applyTrades(c, catalog, [p], log))[0]!;
}

/**
 * Trades' projections in one statement for the whole list (`projectTrades`), with the outcome of each in list order:
 * true when its tape row is new. A trade id named twice counts once, as the second one applied after the first would.
 * Round trips, not execution, are what a trade costs here (docs/benchmarks.md).
 */
export async function applyTrades(
  c: pg.PoolClient,
  catalog: MarketCatalog,
  list: TradeExecuted[],
  log: Logger,
): Promise<boolean[]> {
  const intervals = Object.entries(CANDLE_INTERVALS) as Array<[keyof typeof CANDLE_INTERVALS, number]>;
  const first = new Map<string, number>();
  const projections: TradeProjection[] = [];
  list.forEach((p, i) => {
    const m = catalog.market(p.market);
    if (!m) {
      log.warn({ market: p.market, tradeId: p.tradeId }, 'trade for an unknown market ignored');
      return;
    }
    const id = p.tradeId.toLowerCase(); // a uuid's canonical form: the database compares them so
    if (first.has(id)) return;
    first.set(id, i);
    const makerSide = p.takerSide === 'buy' ? 'sell' : 'buy';
    const at = new Date(p.at).getTime();
    const fill = (side: 'buy' | 'sell', liquidity: 'taker' | 'maker', orderId: string, userId: string) => ({
      orderId,
      userId,
      side,
      liquidity,
      fee: side === 'buy' ? p.buyerFee : p.sellerFee,
      feeAsset: side === 'buy' ? m.base.symbol : m.quote.symbol,
    });
    projections.push({
      tradeId: p.tradeId,
      market: p.market,
      seq: p.seq,
      priceTicks: p.priceTicks,
      quantityLots: p.quantityLots,
      quoteAmount: p.quoteAmount,
      baseAmount: p.baseAmount,
      takerSide: p.takerSide,
      at: p.at,
      fills: [
        fill(p.takerSide, 'taker', p.takerOrderId, p.takerUserId),
        fill(makerSide, 'maker', p.makerOrderId, p.makerUserId),
      ],
      candles: intervals.map(([interval, seconds]) => ({
        interval,
        openTime: new Date(Math.floor(at / 1000 / seconds) * seconds * 1000),
      })),
    });
  });
  const applied = await projectTrades(c, projections);
  return list.map((p, i) => {
    const id = p.tradeId.toLowerCase();
    return first.get(id) === i && applied.has(id);
  });
}

export async function applyBook(c: pg.PoolClient, p: BookSnapshot): Promise<boolean> {
  return upsertBook(c, [
    p.market,
    p.seq,
    JSON.stringify(p.bids),
    JSON.stringify(p.asks),
    p.auction ? JSON.stringify(p.auction) : null,
    p.at,
  ]);
}
