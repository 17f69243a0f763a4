/**
 * Order entry without two-phase commit:
 *   1. insert the order as `pending` (idempotent by clientOrderId per user),
 *   2. hold the funds in the wallet (idempotent by hold id = order id),
 *   3. in one statement (its own transaction): `pending` → `new` and PlaceOrderV1 into the outbox.
 * A crash between 2 and 3 leaves a `pending` row; the recovery sweeper re-calls the hold (learning the truth) and
 * finishes the order, or rejects it and releases the hold. The finishing update is conditional on `status =
 * 'pending'`, so the request, a client retry and the sweeper can race without doubling anything.
 */
import type pg from 'pg';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { GroupCommit, withStatementRetries, withTransaction, type Outcome } from '@exchange/db';
import { enqueue, type EnqueueOptions, type Logger } from '@exchange/messaging';
import { uuidv7 } from '@exchange/contracts';
import type { FeeTier, Market, MarketCatalog } from '@exchange/contracts/markets';
import { CancelOrderV1, PlaceOrderV1, ROUTES } from '@exchange/contracts/trading';
import type { CancelReason, OrderStatus } from '@exchange/contracts/trading';
import { AppError, badRequest, conflict, notFound, serviceUnavailable, type FeatureFlags } from '@exchange/platform';
import { ORDERS_SCHEMA } from '../db/schema.ts';
import type { WalletClient } from '../clients/wallet-client.ts';
import { holdFunds } from './hold.ts';
import { OPEN_STATUSES, type OrderRow } from './model.ts';
import * as repo from './repository.ts';
import type { MarketStateRow } from './repository.ts';
import {
  lastTradeRange,
  parseOrder,
  priceChecks,
  type ParsedOrder,
  type PlaceOrderBody,
  type Priced,
} from './validate.ts';

export type { MarketStateRow } from './repository.ts';

export interface OrderServiceOptions {
  pool: pg.Pool;
  catalog: MarketCatalog;
  wallet: WalletClient;
  flags: FeatureFlags;
  log: Logger;
  /** Pending orders older than this are resolved by the sweeper. */
  pendingTimeoutMs?: number;
  /** A pending order older than this is released rather than finished (default 5 min). */
  maxFinishAgeMs?: number;
  /** Called with the outcome of every sweep (metrics). */
  onSweep?: (r: SweepResult) => void;
  /**
   * Per-user order entry limits: placements per second (token bucket, in this process) and open orders (pending,
   * new, partially filled). Defaults: 20/s with a burst of 40, 500 open orders.
   */
  limits?: { ordersPerSecond: number; burst: number; maxOpenOrders: number };
  /** Test hook: runs after the wallet confirmed the hold and before the order is committed as `new`. */
  afterHold?: (orderId: string) => Promise<void>;
  /** Test hook: runs before an order entry batch's statement (ids in batch order); throwing fails the batch. */
  beforeFinalize?: (orderIds: string[]) => Promise<void>;
  /** Most orders of one market committed `new` in one transaction (group commit; default 100). */
  finalizeBatchSize?: number;
  /** Most order entries whose context reads, and whose `pending` inserts, share one statement (default 100). */
  entryBatchSize?: number;
  /** Called with the size of every order entry batch, by stage (metrics). */
  onEntryBatch?: (stage: EntryStage, size: number) => void;
}

/** The engine command for an order that has just become `new`. */
function placeOrderMessage(o: OrderRow) {
  return PlaceOrderV1.create(
    {
      orderId: o.id,
      userId: o.user_id,
      market: o.market,
      side: o.side,
      type: o.type,
      ...(o.price_ticks !== null ? { priceTicks: o.price_ticks } : {}),
      quantityLots: o.quantity_lots,
      timeInForce: o.time_in_force,
      postOnly: o.post_only,
      ...(o.stp ? { stp: o.stp as 'cancel_newest' } : {}),
      ...(o.quote_budget_tick_lots !== null ? { quoteBudgetTickLots: o.quote_budget_tick_lots } : {}),
      ...(o.protection_price_ticks !== null ? { protectionPriceTicks: o.protection_price_ticks } : {}),
      ...(o.stop_price_ticks !== null ? { stopPriceTicks: o.stop_price_ticks } : {}),
      ...(o.display_lots !== null ? { displayQuantityLots: o.display_lots } : {}),
      holdAmount: o.hold_amount,
      ...(o.maker_fee_bps != null && o.taker_fee_bps != null
        ? { makerFeeBps: o.maker_fee_bps, takerFeeBps: o.taker_fee_bps }
        : {}),
      acceptedAt: o.updated_at.toISOString(),
    },
    { producer: 'order', correlationId: o.id },
  );
}

/** Users × markets whose last fee tier order entry keeps (OrderService.lastTier). */
const TIER_MEMORY = 100_000;

/** A new order's row, in the insert's column order. */
function pendingValues(
  id: string,
  userId: string,
  parsed: ParsedOrder,
  priced: Priced,
  tier: FeeTier,
): repo.PendingOrderValues {
  return [
    id,
    userId,
    parsed.clientOrderId ?? null,
    parsed.requestHash,
    parsed.market.symbol,
    parsed.side,
    parsed.type,
    parsed.priceTicks?.toString() ?? null,
    parsed.lots.toString(),
    parsed.timeInForce,
    parsed.postOnly,
    parsed.stp ?? null,
    priced.holdAsset,
    priced.holdAmount.toString(),
    priced.quoteBudgetTickLots?.toString() ?? null,
    priced.protectionPriceTicks?.toString() ?? null,
    parsed.stopTicks?.toString() ?? null,
    tier.makerFeeBps,
    tier.takerFeeBps,
    parsed.displayLots?.toString() ?? null,
  ];
}

/**
 * Order entry's statements (batched): `entry` reads a plain limit order's checks' inputs and inserts it in one;
 * `context` and `insert` are the reads and the insert of every other order, and of a plain one that `entry` did not
 * insert; `finalize` makes the orders `new` with their engine commands.
 */
export type EntryStage = 'entry' | 'context' | 'insert' | 'finalize';

/** What order entry's checks read (repo.entryContexts), as they use it. */
interface EntryContext {
  existingId?: string;
  state?: MarketStateRow;
  openOrders: number;
  volume: bigint;
}

function entryContextOf(row: repo.EntryContextRow): EntryContext {
  const { entry_existing_id, entry_open_orders, entry_volume, ...state } = row;
  return {
    ...(entry_existing_id ? { existingId: entry_existing_id } : {}),
    ...(state.market !== null ? { state: state as MarketStateRow } : {}),
    openOrders: entry_open_orders,
    volume: BigInt(entry_volume),
  };
}

export interface SweepResult {
  finished: string[];
  released: string[];
  removed: string[];
  unresolved: string[];
}

export class OrderService {
  readonly opts: OrderServiceOptions;
  private readonly limits: NonNullable<OrderServiceOptions['limits']>;
  /**
   * In-process: each replica limits what it sees. Kong spreads a user's requests over the replicas, so the limit per
   * user is at most replicas × ORDER_RATE_PER_SECOND; set it to the per-replica share. No shared store on the hot path.
   */
  private readonly rate: RateLimiterMemory;
  private readonly finalizers = new Map<string, GroupCommit<OrderRow, OrderRow | undefined>>();
  private readonly contextReads: GroupCommit<repo.EntryKey, repo.EntryContextRow>;
  /**
   * The `pending` inserts of concurrent entries in one statement and one commit. A batch that fails is retried order
   * by order (GroupCommit), so one bad row fails only its own request; the statement commits whole or not at all.
   */
  private readonly pendingInserts: GroupCommit<repo.PendingOrderValues, OrderRow | undefined>;
  /** Plain limit orders' reads and `pending` inserts, one statement for concurrent entries (see enterDirect). */
  private readonly directEntries: GroupCommit<repo.DirectEntry, { reads: repo.EntryContextRow; inserted?: OrderRow }>;
  /**
   * The fee tier each user was last seen in, per market: enterDirect inserts with these rates, and the statement
   * inserts only if the user's volume is still in that tier. Bounded: cleared when it grows past `TIER_MEMORY`.
   */
  private readonly lastTier = new Map<string, FeeTier>();
  constructor(opts: OrderServiceOptions) {
    this.opts = opts;
    const maxBatch = opts.entryBatchSize ?? 100;
    this.contextReads = new GroupCommit({
      run: async (keys) => (await repo.entryContexts(opts.pool, keys)).map((value) => ({ ok: true, value })),
      maxBatch,
      onBatch: (size) => opts.onEntryBatch?.('context', size),
    });
    this.pendingInserts = new GroupCommit({
      run: async (batch) => {
        const inserted = new Map((await repo.insertPendings(opts.pool, batch)).map((o) => [o.id, o]));
        return batch.map(([id]) => ({ ok: true, value: inserted.get(id) }));
      },
      maxBatch,
      onBatch: (size) => opts.onEntryBatch?.('insert', size),
      onBatchFailure: (err, size) =>
        opts.log.warn({ err, size }, 'pending order insert batch failed; retrying its orders one by one'),
    });
    this.directEntries = new GroupCommit({
      run: async (batch) => (await repo.enterPendings(opts.pool, batch)).map((value) => ({ ok: true as const, value })),
      maxBatch,
      onBatch: (size) => opts.onEntryBatch?.('entry', size),
      onBatchFailure: (err, size) =>
        opts.log.warn({ err, size }, 'order entry batch failed; retrying its orders one by one'),
    });
    this.limits = opts.limits ?? { ordersPerSecond: 20, burst: 40, maxOpenOrders: 500 };
    this.rate = new RateLimiterMemory({
      points: this.limits.burst,
      duration: this.limits.burst / this.limits.ordersPerSecond,
    });
  }

  /** 429 ORDER_RATE_LIMITED or 409 TOO_MANY_OPEN_ORDERS; cancels are never limited. */
  private async admit(userId: string, openOrders: number): Promise<void> {
    try {
      await this.rate.consume(userId);
    } catch (e) {
      const ms = (e as { msBeforeNext?: number }).msBeforeNext ?? 1000;
      throw new AppError(429, 'ORDER_RATE_LIMITED', `at most ${this.limits.ordersPerSecond} orders per second`, {
        headers: { 'retry-after': String(Math.max(1, Math.ceil(ms / 1000))) },
      });
    }
    if (openOrders >= this.limits.maxOpenOrders) {
      throw conflict(
        'TOO_MANY_OPEN_ORDERS',
        `at most ${this.limits.maxOpenOrders} open orders per account; cancel some first`,
      );
    }
  }

  /**
   * What order entry reads before its insert, in one round trip (four statements before): an earlier order with this
   * clientOrderId, the market's state (halt, last trade for the price bands), the user's open orders (limit) and
   * 30-day volume in the market (fee tier). Round trips are what an order costs (docs/benchmarks.md), so concurrent
   * entries share one: the reads waiting while one is in flight go together in the next.
   */
  private async entryContext(userId: string, market: string, clientOrderId: string | undefined): Promise<EntryContext> {
    return entryContextOf(await this.contextReads.submit({ userId, clientOrderId: clientOrderId ?? null, market }));
  }

  private get pool() {
    return this.opts.pool;
  }

  async marketState(market: string): Promise<MarketStateRow | undefined> {
    return repo.findMarketState(this.pool, market);
  }

  async allMarketStates(): Promise<Map<string, MarketStateRow>> {
    const rows = await repo.allMarketStates(this.pool);
    return new Map(rows.map((r) => [r.market, r]));
  }

  /** Why new orders for `market` are refused right now, if they are. */
  async gate(market: string): Promise<AppError | undefined> {
    return (await this.admission(market)).refused;
  }

  /** The gate and the market's state in one read (order entry needs both: halt, and the last trade for price bands). */
  private async admission(market: string): Promise<{ refused?: AppError; state?: MarketStateRow }> {
    return this.admissionFrom(market, await this.marketState(market));
  }

  /** Why the kill switches refuse new orders in every market, if they do (flags are cached in memory). */
  private async switchedOff(): Promise<AppError | undefined> {
    if (await this.opts.flags.isEnabled('maintenance')) {
      return serviceUnavailable('MAINTENANCE', 'the exchange is in maintenance; new orders are not accepted');
    }
    if (!(await this.opts.flags.isEnabled('trading'))) {
      return serviceUnavailable('TRADING_DISABLED', 'trading is disabled; new orders are not accepted (cancels work)');
    }
    return undefined;
  }

  /** Why new orders are refused, given the market's state. */
  private async admissionFrom(
    market: string,
    st: MarketStateRow | undefined,
  ): Promise<{ refused?: AppError; state?: MarketStateRow }> {
    const off = await this.switchedOff();
    if (off) return { refused: off };
    if (st?.halted) {
      return {
        refused: serviceUnavailable(
          'MARKET_HALTED',
          `${market} is halted${st.halt_reason ? `: ${st.halt_reason}` : ''}`,
        ),
      };
    }
    return st ? { state: st } : {};
  }

  async findByClientOrderId(userId: string, clientOrderId: string): Promise<OrderRow | undefined> {
    return repo.findByClientOrderId(this.pool, userId, clientOrderId);
  }

  /** Place an order. `created` is false when an identical clientOrderId request was answered before. */
  async place(userId: string, body: PlaceOrderBody): Promise<{ order: OrderRow; created: boolean }> {
    const market = this.opts.catalog.market(body.market);
    if (!market) throw badRequest('UNKNOWN_MARKET', `unknown market "${body.market}"`);
    const parsed = parseOrder(market, body);
    const id = uuidv7();

    const direct = await this.enterDirect(id, userId, market, parsed);
    if (direct.inserted) return { order: await this.complete(direct.inserted, 'request'), created: true };
    const ctx = direct.reads ?? (await this.entryContext(userId, market.symbol, parsed.clientOrderId));
    if (ctx.existingId) {
      const existing = await this.get(ctx.existingId);
      if (existing) return { order: await this.replay(existing, parsed.requestHash), created: false };
    }

    const { refused, state: st } = await this.admissionFrom(market.symbol, ctx.state);
    if (refused) throw refused;
    await this.admit(userId, ctx.openOrders);
    const priced = priceChecks(parsed, st?.last_trade_ticks != null ? BigInt(st.last_trade_ticks) : undefined);
    // the tier is fixed now and stored with the order: the sweeper's retry and the engine's replay use these rates
    const tier = market.feeTierFor(ctx.volume);

    const row = await this.pendingInserts.submit(pendingValues(id, userId, parsed, priced, tier));
    if (!row) {
      // A concurrent request with the same clientOrderId won the insert.
      const existing = await this.findByClientOrderId(userId, parsed.clientOrderId!);
      if (!existing) throw new AppError(409, 'IDEMPOTENCY_IN_PROGRESS', 'retry the request');
      return { order: await this.replay(existing, parsed.requestHash), created: false };
    }
    return { order: await this.complete(row, 'request'), created: true };
  }

  /**
   * The common order, a plain limit order, in one round trip instead of two: its checks' reads and its `pending`
   * insert in one statement (repo.enterPendings), which inserts only if each check those reads feed passes, with the
   * values computed here beforehand. A limit order's values depend on the reads in two ways only: its price must be in
   * the band of the last trade (passed as the range of last trades that allow it), and its fee rates are those of the
   * user's volume (passed as the range of the tier the user was last seen in). When the statement does not insert
   * (a check fails, the tier changed, the clientOrderId is taken), its reads go through the checks below as a separate
   * read's would: same errors, same order, and the insert of `place()` when they pass. The kill switches and the
   * per-user rate are checked first, in memory; when either refuses, this is not tried and `place()` decides as
   * before (a retried clientOrderId is answered before either).
   */
  private async enterDirect(
    id: string,
    userId: string,
    market: Market,
    parsed: ParsedOrder,
  ): Promise<{ inserted?: OrderRow; reads?: EntryContext }> {
    if (parsed.type !== 'limit' || parsed.stopTicks !== undefined) return {};
    if (await this.switchedOff()) return {};
    try {
      await this.rate.consume(userId);
    } catch {
      return {};
    }
    const key = `${userId} ${market.symbol}`;
    const tier = this.lastTier.get(key) ?? market.feeTierFor(0n);
    const band = lastTradeRange(market, parsed.priceTicks!);
    const res = await this.directEntries.submit({
      values: pendingValues(id, userId, parsed, priceChecks(parsed, undefined), tier),
      lastMin: band.min.toString(),
      lastMax: band.max?.toString() ?? null,
      volumeMin: tier.minVolume.toString(),
      volumeMax: market.nextFeeTier(tier)?.minVolume.toString() ?? null,
      maxOpen: this.limits.maxOpenOrders,
    });
    const reads = entryContextOf(res.reads);
    if (this.lastTier.size >= TIER_MEMORY) this.lastTier.clear();
    this.lastTier.set(key, market.feeTierFor(reads.volume));
    if (res.inserted) return { inserted: res.inserted };
    await this.rate.reward(userId, 1); // the checks take it again, in their place
    return { reads };
  }

  private async replay(existing: OrderRow, requestHash: string): Promise<OrderRow> {
    if (existing.request_hash !== requestHash) {
      throw conflict(
        'CLIENT_ORDER_ID_CONFLICT',
        `clientOrderId "${existing.client_order_id}" was already used for a different order (${existing.id})`,
      );
    }
    // A retry of a request that did not finish (crash, wallet down) drives it to completion, like the sweeper.
    if (existing.status === 'pending') {
      // ...unless new orders are refused right now: then the sweeper rejects it and releases its hold.
      const gate = await this.gate(existing.market);
      if (gate) throw gate;
      return this.complete(existing, 'retry');
    }
    return existing;
  }

  /** Hold the funds, then commit `new` + PlaceOrderV1. Throws the client-facing error when it cannot. */
  private async complete(row: OrderRow, via: 'request' | 'retry'): Promise<OrderRow> {
    const res = await holdFunds(
      this.opts.wallet,
      this.opts.log,
      {
        holdId: row.id,
        userId: row.user_id,
        asset: row.hold_asset,
        amount: row.hold_amount,
        reason: 'order',
        refType: 'order',
        refId: row.id,
      },
      {
        logFields: { orderId: row.id },
        logMessage: 'wallet unavailable; order left pending for the sweeper',
        clientMessage: 'funds could not be reserved right now; retry with the same clientOrderId',
      },
    );
    if (res.outcome !== 'held') {
      // Definitive refusal: no hold exists, nothing was accepted. Remove the pending row (the clientOrderId can be
      // used again, e.g. after a deposit).
      await repo.deletePending(this.pool, row.id);
      if (res.outcome === 'insufficient_funds') {
        throw badRequest('INSUFFICIENT_FUNDS', `insufficient ${row.hold_asset} available for this order`);
      }
      this.opts.log.error({ orderId: row.id, res, via }, 'wallet refused the hold');
      throw badRequest(
        res.outcome === 'conflict' ? 'HOLD_CONFLICT' : res.code,
        res.message || 'the wallet refused the hold',
      );
    }
    await this.opts.afterHold?.(row.id);
    return (await this.finalize(row)) ?? (await this.get(row.id))!;
  }

  /**
   * `pending` → `new` and PlaceOrderV1 in the outbox, in one statement. Undefined if it was not pending.
   * Group commit per market: finalizations that arrive while one of the market's statements is in flight are
   * applied together in the next (one UPDATE and one multi-row outbox insert in one statement), each caller answered
   * with its own order. The market's outbox ordering lock is then taken once per batch instead of once per order, which
   * had serialised every order of a market behind the previous one's commit (fsync).
   */
  private finalize(pending: OrderRow): Promise<OrderRow | undefined> {
    let gc = this.finalizers.get(pending.market);
    if (!gc) {
      const market = pending.market;
      gc = new GroupCommit<OrderRow, OrderRow | undefined>({
        run: (rows) => this.finalizeMany(rows),
        maxBatch: this.opts.finalizeBatchSize ?? 100,
        onBatch: (size) => this.opts.onEntryBatch?.('finalize', size),
        onBatchFailure: (err, size) =>
          this.opts.log.warn({ err, market, size }, 'order entry batch failed; retrying its orders one by one'),
      });
      this.finalizers.set(market, gc);
    }
    return gc.submit(pending);
  }

  /**
   * One statement: the orders of `pending` still pending → `new`, their PlaceOrderV1 in the outbox in list order,
   * written only for the rows the UPDATE changed. Sent outside a transaction, it is its own: one round trip where
   * `BEGIN`, the UPDATE, the insert and `COMMIT` took four. The commands are built from the `pending` rows, which
   * entry never changes but for the status; their `acceptedAt` is the statement's `now()`, the rows' `updated_at`.
   */
  private async finalizeMany(pending: OrderRow[]): Promise<Array<Outcome<OrderRow | undefined>>> {
    const first = new Map<string, OrderRow>();
    for (const o of pending) if (!first.has(o.id)) first.set(o.id, o); // the same order twice: one command
    const unique = [...first.values()];
    await this.opts.beforeFinalize?.(unique.map((o) => o.id));
    const items: EnqueueOptions[] = unique.map((o) => ({
      schema: ORDERS_SCHEMA,
      exchange: ROUTES.commandsExchange,
      routingKey: ROUTES.ordersQueue(o.market),
      message: placeOrderMessage(o),
      orderingKey: o.market,
      stampTransactionTime: ['payload', 'acceptedAt'],
    }));
    const rows = await withStatementRetries(() => repo.markNewWithCommands(this.pool, items, unique));
    const finished = new Map(rows.map((o) => [o.id, o]));
    return pending.map((o) => {
      const row = finished.get(o.id);
      finished.delete(o.id);
      return { ok: true as const, value: row };
    });
  }

  async get(orderId: string): Promise<OrderRow | undefined> {
    return repo.findOrder(this.pool, orderId);
  }

  /** The user's order, or 404 (also for another user's order: its existence is not revealed). */
  async getOwn(userId: string, orderId: string): Promise<OrderRow> {
    const o = await repo.findOwnOrder(this.pool, userId, orderId);
    if (!o) throw notFound('ORDER_NOT_FOUND', `order ${orderId} not found`);
    return o;
  }

  async list(
    userId: string,
    f: { market?: string; status?: OrderStatus; open?: boolean; cursor?: string; limit: number },
  ): Promise<{ items: OrderRow[]; nextCursor: string | null }> {
    const rows = await repo.ordersPage(this.pool, userId, f);
    const items = rows.slice(0, f.limit);
    return { items, nextCursor: rows.length > f.limit ? items[items.length - 1]!.id : null };
  }

  /**
   * Ask the engine to cancel an open order (CancelOrderV1 through the outbox). The order keeps its status with
   * `cancelRequested` until the engine confirms. Asking again while the cancel is pending sends the command again
   * (a new message for the same order id): a cancel that never reached the engine can always be re-sent, and the
   * engine applies one cancel per order id, so the repeats change nothing once one has arrived.
   */
  async cancel(userId: string, orderId: string, reason: CancelReason = 'user'): Promise<OrderRow> {
    // The command's queue and ordering key are the order's market, known once the order is read: a plain read, then
    // one statement (its own transaction) that marks the cancel requested and writes the command, only if the order is
    // still open (two round trips where BEGIN, a locking read, the UPDATE, the insert and COMMIT took five). An order
    // that stopped being open in between is read again for the answer; a repeated cancel sends the command again
    // (the engine ignores a second one) and keeps the first request's time.
    for (;;) {
      const o = await repo.findOwnOrder(this.pool, userId, orderId);
      if (!o) throw notFound('ORDER_NOT_FOUND', `order ${orderId} not found`);
      if (o.status === 'pending') {
        throw conflict('ORDER_PENDING', 'the order is still being accepted; retry the cancel in a moment');
      }
      if (!OPEN_STATUSES.includes(o.status)) {
        throw conflict('ORDER_NOT_OPEN', `the order is ${o.status} and cannot be cancelled`);
      }
      const [upd] = await withStatementRetries(() =>
        repo.markCancelRequestedWithCommand(this.pool, o, this.cancelCommand(o, reason)),
      );
      if (upd) return upd;
    }
  }

  /** Cancel every open order of the user (optionally in one market). Returns the orders a cancel was sent for. */
  async cancelAll(userId: string, market: string | undefined): Promise<OrderRow[]> {
    return withTransaction(this.pool, (c) => this.cancelAllIn(c, userId, market, 'cancel_all'));
  }

  /**
   * cancelAll inside the caller's transaction, so a trigger (a dead-man's switch firing, a cancel-on-disconnect
   * session ending) and its cancels commit together: a crash leaves either both or neither.
   */
  async cancelAllIn(
    c: pg.PoolClient,
    userId: string,
    market: string | undefined | null,
    reason: CancelReason,
  ): Promise<OrderRow[]> {
    const rows = await repo.markUserCancelsRequested(c, userId, market ?? null);
    rows.sort((a, b) => (a.id < b.id ? -1 : 1));
    for (const o of rows) await this.enqueueCancel(c, o, reason);
    return rows;
  }

  /** Cancel every open order of a market, whoever owns it (market halt). */
  async cancelMarket(market: string, reason: 'halt' | 'admin'): Promise<OrderRow[]> {
    return withTransaction(this.pool, async (c) => {
      const rows = await repo.markMarketCancelsRequested(c, market);
      rows.sort((a, b) => (a.id < b.id ? -1 : 1));
      for (const o of rows) await this.enqueueCancel(c, o, reason);
      return rows;
    });
  }

  private async enqueueCancel(c: pg.PoolClient, o: OrderRow, reason: CancelReason) {
    await enqueue(c, this.cancelCommand(o, reason));
  }

  /** The engine command that cancels `o`, for the outbox (ordering key: the market, like the order's placement). */
  private cancelCommand(o: OrderRow, reason: CancelReason): EnqueueOptions {
    return {
      schema: ORDERS_SCHEMA,
      exchange: ROUTES.commandsExchange,
      routingKey: ROUTES.ordersQueue(o.market),
      message: CancelOrderV1.create(
        { orderId: o.id, userId: o.user_id, market: o.market, reason, requestedAt: new Date().toISOString() },
        { producer: 'order', correlationId: o.id },
      ),
      orderingKey: o.market,
    };
  }

  async setHalted(market: string, halted: boolean, actor: string, reason: string | undefined): Promise<MarketStateRow> {
    return repo.upsertHalt(this.pool, market, halted, reason ?? null, actor);
  }

  /**
   * Resolve `pending` orders older than the timeout: re-call the (idempotent) hold to learn the truth, then finish
   * the order (`new` + PlaceOrderV1) when trading is open and the order is recent enough, else reject it and release
   * the hold. Orders whose hold was refused are removed. Also retries hold releases that failed before.
   * One sweeper at a time across replicas (advisory lock).
   */
  async sweep(): Promise<SweepResult> {
    const out: SweepResult = { finished: [], released: [], removed: [], unresolved: [] };
    const lockClient = await this.pool.connect();
    try {
      if (!(await repo.tryLockSweeper(lockClient))) return out;
      try {
        const timeoutMs = this.opts.pendingTimeoutMs ?? 30_000;
        const rows = await repo.stalePending(this.pool, timeoutMs);
        for (const o of rows) await this.resolvePending(o, out);
        const toRelease = await repo.holdReleasesPending(this.pool);
        for (const o of toRelease) {
          if (!out.unresolved.includes(o.id)) await this.releaseHold(o, out); // one attempt per sweep
        }
      } finally {
        await repo.unlockSweeper(lockClient);
      }
    } finally {
      lockClient.release();
    }
    this.opts.onSweep?.(out);
    if (out.finished.length + out.released.length + out.removed.length > 0) {
      this.opts.log.warn({ ...out }, 'recovery sweeper resolved pending orders');
    }
    return out;
  }

  private async resolvePending(o: OrderRow, out: SweepResult): Promise<void> {
    let res;
    try {
      res = await this.opts.wallet.hold({
        holdId: o.id,
        userId: o.user_id,
        asset: o.hold_asset,
        amount: o.hold_amount,
        reason: 'order',
        refType: 'order',
        refId: o.id,
      });
    } catch (err) {
      this.opts.log.warn({ err, orderId: o.id }, 'sweeper: wallet unavailable, will retry');
      out.unresolved.push(o.id);
      return;
    }
    if (res.outcome !== 'held') {
      await repo.deletePending(this.pool, o.id);
      out.removed.push(o.id);
      return;
    }
    const gate = await this.gate(o.market);
    const tooOld = Date.now() - o.created_at.getTime() > (this.opts.maxFinishAgeMs ?? 300_000);
    if (!gate && !tooOld) {
      const done = await this.finalize(o);
      if (done) out.finished.push(o.id);
      return;
    }
    const reason = gate ? gate.code : 'PENDING_EXPIRED';
    const rejected = await repo.rejectPending(this.pool, o.id, reason);
    if (rejected) await this.releaseHold(rejected, out);
  }

  private async releaseHold(o: OrderRow, out: SweepResult): Promise<void> {
    try {
      await this.opts.wallet.release(o.id, o.reason ?? 'order_rejected');
    } catch (err) {
      this.opts.log.warn({ err, orderId: o.id }, 'sweeper: hold release failed, will retry');
      out.unresolved.push(o.id);
      return;
    }
    await repo.clearHoldReleasePending(this.pool, o.id);
    out.released.push(o.id);
  }
}

/** Run `service.sweep()` every `intervalMs`; returns a stop function that waits for a running sweep. */
export function startSweeper(service: OrderService, intervalMs: number, log: Logger): () => Promise<void> {
  let stopped = false;
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    if (stopped) return;
    running = service.sweep().catch((err: unknown) => log.error({ err }, 'recovery sweeper failed'));
  }, intervalMs);
  timer.unref();
  return async () => {
    stopped = true;
    clearInterval(timer);
    await running;
  };
}
