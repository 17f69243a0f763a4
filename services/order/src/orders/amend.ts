/**
 * Amend a resting limit order (PATCH /api/v1/orders/:id): new price and/or new TOTAL quantity (filled + open).
 *
 *   1. under the order's row lock: checks, amend row `pending` (numbered `amend_seq` per order), top-up computed;
 *   2. when the amend can need more funds: a separate wallet hold of `top_up_amount` (id = amend id, refType
 *      `order_amend`), idempotent like an order's hold;
 *   3. `pending` → `sent` and AmendOrderV1 into the outbox (after the order's PlaceOrderV1 on the same queue).
 * The engine decides on the book as it is then: a lower quantity at the same price keeps time priority, anything else
 * loses it; it computes the exact hold change and rejects the amend when that needs more than the top-up
 * (AMEND_HOLD_EXCEEDED). The wallet applies the change and ends the top-up in one transaction (wallet.adjust-hold);
 * engine.order-amended updates the order and the amend here (messaging/order-events.ts).
 *
 * The top-up is the most the amend can need whatever fills happen before the engine sees it: the change
 * cost(P1, Qn - f) - cost(P0, Qo - f) is linear in the filled quantity f, so its maximum over the f still possible
 * (what is filled now up to min(Qo, Qn) - 1) is at one of the two ends.
 *
 * Idempotent by `amendSeq` (the amend's number for the order: the same number with the same body returns that amend,
 * with another body 409 AMEND_SEQ_CONFLICT; a number other than the next one is 409 AMEND_SEQ_MISMATCH) and by
 * Idempotency-Key. One amend in flight per order (409 AMEND_IN_PROGRESS).
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { Type, type Static } from '@sinclair/typebox';
import { uuidv7 } from '@exchange/contracts';
import { formatFixed, type Market, type MarketCatalog } from '@exchange/contracts/markets';
import { AmendOrderV1, ROUTES } from '@exchange/contracts/trading';
import { withTransaction } from '@exchange/db';
import { enqueue, type Logger } from '@exchange/messaging';
import { parseAmount } from '@exchange/money';
import { AppError, badRequest, canonicalJson, conflict, notFound } from '@exchange/platform';
import { ORDERS_SCHEMA } from '../db/schema.ts';
import type { WalletClient } from '../clients/wallet-client.ts';
import * as amendRepo from './amend-repository.ts';
import type { AmendRow } from './amend-repository.ts';
import { holdFunds } from './hold.ts';
import type { OrderRow } from './model.ts';
import { findOwnOrder, lockOwnOrder } from './repository.ts';
import { checkMinNotional, decimal, priceBand } from './validate.ts';

export type { AmendRow, AmendStatus } from './amend-repository.ts';
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export interface AmendOrderBody {
  price?: string;
  quantity?: string;
  amendSeq?: number;
}

export const AmendOrderBodySchema = Type.Object(
  {
    price: Type.Optional(
      Type.String({
        maxLength: 40,
        description: 'New limit price (decimal string on the tick grid)',
        examples: ['64990'],
      }),
    ),
    quantity: Type.Optional(
      Type.String({
        maxLength: 40,
        description: 'New TOTAL quantity (filled + open), a multiple of the lot size; more than what is filled',
        examples: ['0.4'],
      }),
    ),
    amendSeq: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1_000_000,
        description:
          'Number of this amend for the order (the previous amendSeq + 1): resending the same number replays it',
      }),
    ),
  },
  { additionalProperties: false },
);

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

export const AmendSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    orderId: Type.String({ format: 'uuid' }),
    amendSeq: Type.Integer(),
    status: Type.Union(
      [
        Type.Literal('pending'),
        Type.Literal('sent'),
        Type.Literal('applied'),
        Type.Literal('rejected'),
        Type.Literal('expiring'),
      ],
      { description: '`sent` until the engine answers: `applied` or `rejected` (see `reason`)' },
    ),
    price: Nullable(Type.String({ description: 'Requested price (null: unchanged)' })),
    quantity: Nullable(Type.String({ description: 'Requested total quantity (null: unchanged)' })),
    topUp: Type.String({ description: 'Funds reserved for the amend until the engine answers (hold asset)' }),
    holdDelta: Nullable(Type.String({ description: "Change of the order's hold once applied (signed, hold asset)" })),
    priorityKept: Type.Union([Type.Boolean(), Type.Null()]),
    reason: Nullable(Type.String()),
    createdAt: Type.String(),
    updatedAt: Type.String(),
  },
  { title: 'OrderAmend' },
);
export type AmendDto = Static<typeof AmendSchema>;

export function toAmendDto(catalog: MarketCatalog, order: OrderRow, a: AmendRow): AmendDto {
  const m = catalog.market(order.market)!;
  const precision = catalog.asset(order.hold_asset)?.precision ?? 0;
  return {
    id: a.id,
    orderId: a.order_id,
    amendSeq: a.amend_seq,
    status: a.status,
    price: a.price_ticks === null ? null : m.ticksToPrice(BigInt(a.price_ticks)),
    quantity: a.quantity_lots === null ? null : m.lotsToQuantity(BigInt(a.quantity_lots)),
    topUp: formatFixed(BigInt(a.top_up_amount), precision),
    holdDelta: a.hold_delta === null ? null : formatFixed(BigInt(a.hold_delta), precision),
    priorityKept: a.priority_kept,
    reason: a.reason,
    createdAt: a.created_at.toISOString(),
    updatedAt: a.updated_at.toISOString(),
  };
}

/** What the open part of a limit order holds: buys the quote notional, sells the base units. */
export function holdCost(m: Market, side: 'buy' | 'sell', ticks: bigint, lots: bigint): bigint {
  return side === 'buy' ? m.notional(ticks, lots) : m.baseUnits(lots);
}

/** The most extra hold an amend from (P0, Qo) to (P1, Qn) can need, given `filled` lots filled now. */
export function topUpFor(
  m: Market,
  side: 'buy' | 'sell',
  p0: bigint,
  qo: bigint,
  p1: bigint,
  qn: bigint,
  filled: bigint,
): bigint {
  const delta = (f: bigint) => holdCost(m, side, p1, qn - f) - holdCost(m, side, p0, qo - f);
  const fMax = (qo < qn ? qo : qn) - 1n;
  let top = delta(filled);
  if (fMax > filled && delta(fMax) > top) top = delta(fMax);
  return top > 0n ? top : 0n;
}

export interface AmendDeps {
  pool: pg.Pool;
  catalog: MarketCatalog;
  wallet: WalletClient;
  log: Logger;
  /** Why orders for the market are refused right now (maintenance, trading off, halt), if they are. */
  gate(market: string): Promise<AppError | undefined>;
  /** The market's last trade price in ticks (price band reference). */
  lastTradeTicks(market: string): Promise<bigint | undefined>;
}

export class OrderAmends {
  private readonly d: AmendDeps;
  constructor(deps: AmendDeps) {
    this.d = deps;
  }

  /** Request an amend; `created` false when `amendSeq` named an amend made before (replayed). */
  async amend(
    userId: string,
    orderId: string,
    body: AmendOrderBody,
  ): Promise<{ amend: AmendRow; order: OrderRow; created: boolean }> {
    if (body.price === undefined && body.quantity === undefined) {
      throw badRequest('AMEND_NO_CHANGE', 'give a new price and/or a new quantity');
    }
    const first = await withTransaction(this.d.pool, async (c) => {
      const o = await lockOwnOrder<OrderRow & { amend_seq: number }>(c, userId, orderId);
      if (!o) throw notFound('ORDER_NOT_FOUND', `order ${orderId} not found`);
      const m = this.d.catalog.market(o.market);
      if (!m) throw notFound('UNKNOWN_MARKET', `unknown market "${o.market}"`);
      const parsed = parseAmend(m, o, body);
      if (body.amendSeq !== undefined) {
        const prev = await amendRepo.findAmendBySeq(c, o.id, body.amendSeq);
        if (prev) {
          if (prev.request_hash !== parsed.hash) {
            throw conflict('AMEND_SEQ_CONFLICT', `amend ${body.amendSeq} of this order was made with other values`);
          }
          return { replay: prev, fresh: undefined, order: o };
        }
        if (body.amendSeq !== o.amend_seq + 1) {
          throw new AppError(409, 'AMEND_SEQ_MISMATCH', `the next amend of this order is ${o.amend_seq + 1}`, {
            details: { nextAmendSeq: o.amend_seq + 1 },
          });
        }
      }
      if (o.status === 'pending') throw conflict('ORDER_PENDING', 'the order is still being accepted; retry shortly');
      if (o.status !== 'new' && o.status !== 'partially_filled') {
        throw conflict('ORDER_NOT_OPEN', `the order is ${o.status} and cannot be amended`);
      }
      if (o.type !== 'limit' || o.time_in_force !== 'GTC') {
        throw conflict('ORDER_NOT_AMENDABLE', 'only resting (GTC limit) orders can be amended');
      }
      if (o.stop_price_ticks !== null && o.stop_triggered_at === null) {
        throw conflict('ORDER_NOT_AMENDABLE', 'a stop order waiting for its trigger cannot be amended (cancel it)');
      }
      if (o.cancel_requested_at) throw conflict('ORDER_NOT_OPEN', 'a cancel of this order is on its way');
      if (await amendRepo.hasOpenAmend(c, o.id))
        throw conflict('AMEND_IN_PROGRESS', 'an amend of this order is still on its way; retry shortly');
      const refused = await this.d.gate(o.market);
      if (refused) throw refused;
      const filled = BigInt(o.filled_lots);
      const p0 = BigInt(o.price_ticks!);
      const qo = BigInt(o.quantity_lots);
      const p1 = parsed.priceTicks ?? p0;
      const qn = parsed.lots ?? qo;
      if (p1 === p0 && qn === qo) throw badRequest('AMEND_NO_CHANGE', 'the order already has this price and quantity');
      if (qn <= filled) {
        throw badRequest(
          'QUANTITY_BELOW_FILLED',
          `quantity must be more than what is filled (${m.lotsToQuantity(filled)})`,
        );
      }
      if (parsed.priceTicks !== undefined && parsed.priceTicks !== p0) {
        const last = await this.d.lastTradeTicks(o.market);
        if (last !== undefined) {
          const { low, high } = priceBand(m, last);
          if (p1 < low || p1 > high) {
            throw badRequest(
              'PRICE_OUT_OF_BAND',
              `price must be within ${m.ticksToPrice(low)}–${m.ticksToPrice(high)}`,
              {
                low: m.ticksToPrice(low),
                high: m.ticksToPrice(high),
              },
            );
          }
        }
      }
      checkMinNotional(m, p1, qn);
      if (p1 * qn > MAX_SAFE) throw badRequest('PRICE_OUT_OF_RANGE', 'price × quantity is too large');
      const topUp = topUpFor(m, o.side, p0, qo, p1, qn, filled);
      const seq = o.amend_seq + 1;
      let a = await amendRepo.insertPendingAmend(c, [
        uuidv7(),
        o.id,
        userId,
        seq,
        parsed.hash,
        parsed.priceTicks?.toString() ?? null,
        parsed.lots?.toString() ?? null,
        topUp.toString(),
      ]);
      const upd = await amendRepo.setOrderAmendSeq<OrderRow>(c, o.id, seq);
      // nothing to reserve: straight to the engine, in this transaction
      if (topUp === 0n) a = await this.send(c, upd, a);
      return { replay: undefined, fresh: a, order: upd };
    });
    const row = (first.replay ?? first.fresh)!;
    const a = row.status === 'pending' ? await this.complete(first.order, row) : row;
    return { amend: a, order: first.order, created: first.replay === undefined };
  }

  /** Reserve the top-up, then `pending` → `sent` + AmendOrderV1. Throws the client-facing error when it cannot. */
  private async complete(order: OrderRow, a: AmendRow): Promise<AmendRow> {
    const res = await holdFunds(
      this.d.wallet,
      this.d.log,
      {
        holdId: a.id,
        userId: a.user_id,
        asset: order.hold_asset,
        amount: a.top_up_amount,
        reason: 'order_amend',
        refType: 'order_amend',
        refId: order.id,
      },
      {
        logFields: { amendId: a.id },
        logMessage: 'wallet unavailable; amend left pending',
        clientMessage: 'funds for the amend could not be reserved right now; retry with the same amendSeq',
      },
    );
    if (res.outcome !== 'held') {
      const reason = res.outcome === 'insufficient_funds' ? 'INSUFFICIENT_FUNDS' : 'HOLD_REFUSED';
      await amendRepo.rejectPendingAmend(this.d.pool, a.id, reason);
      if (reason === 'INSUFFICIENT_FUNDS') {
        throw badRequest('INSUFFICIENT_FUNDS', `insufficient ${order.hold_asset} available for this amend`);
      }
      this.d.log.error({ amendId: a.id, res }, 'wallet refused the amend top-up');
      throw badRequest('HOLD_REFUSED', 'the wallet refused to reserve the funds for the amend');
    }
    const sent = await withTransaction(this.d.pool, async (c) => {
      const cur = (await amendRepo.lockAmend(c, a.id))!;
      return cur.status === 'pending' ? this.send(c, order, cur) : cur;
    });
    if (sent.status === 'expiring' || sent.status === 'rejected') {
      throw conflict('AMEND_EXPIRED', 'the amend took too long and was dropped; amend again');
    }
    return sent;
  }

  private async send(c: pg.PoolClient, order: OrderRow, a: AmendRow): Promise<AmendRow> {
    const sent = await amendRepo.markAmendSent(c, a.id);
    const topUp = BigInt(a.top_up_amount);
    const message = AmendOrderV1.create(
      {
        amendId: a.id,
        orderId: order.id,
        userId: order.user_id,
        market: order.market,
        ...(a.price_ticks !== null ? { priceTicks: a.price_ticks } : {}),
        ...(a.quantity_lots !== null ? { quantityLots: a.quantity_lots } : {}),
        ...(topUp > 0n ? { topUpHoldId: a.id, topUpAmount: a.top_up_amount } : {}),
        requestedAt: new Date().toISOString(),
      },
      { producer: 'order', correlationId: order.id },
    );
    await enqueue(c, {
      schema: ORDERS_SCHEMA,
      exchange: ROUTES.commandsExchange,
      routingKey: ROUTES.ordersQueue(order.market),
      message,
      orderingKey: order.market,
    });
    return sent;
  }

  async list(userId: string, orderId: string): Promise<{ order: OrderRow; amends: AmendRow[] }> {
    const order = await findOwnOrder(this.d.pool, userId, orderId);
    if (!order) throw notFound('ORDER_NOT_FOUND', `order ${orderId} not found`);
    const amends = await amendRepo.amendsOfOrder(this.d.pool, orderId);
    return { order, amends };
  }

  /**
   * Drop amends stuck in `pending` (the wallet did not answer and the client did not retry) for longer than
   * `olderThanMs`: `pending` → `expiring`, release the top-up, → `rejected` PENDING_EXPIRED. Returns the amend ids.
   */
  async sweep(olderThanMs: number): Promise<string[]> {
    await amendRepo.expireStalePending(this.d.pool, olderThanMs);
    const rows = await amendRepo.expiringAmends(this.d.pool);
    const done: string[] = [];
    for (const a of rows) {
      try {
        await this.d.wallet.release(a.id, 'amend_expired');
      } catch (err) {
        this.d.log.warn({ err, amendId: a.id }, 'amend sweeper: top-up release failed, will retry');
        continue;
      }
      await amendRepo.rejectExpired(this.d.pool, a.id);
      done.push(a.id);
    }
    return done;
  }
}

function parseAmend(
  m: Market,
  o: OrderRow,
  body: AmendOrderBody,
): { priceTicks: bigint | undefined; lots: bigint | undefined; hash: string } {
  let priceTicks: bigint | undefined;
  let lots: bigint | undefined;
  if (body.price !== undefined) {
    decimal(body.price, 'price');
    priceTicks = m.priceToTicks(body.price);
    if (priceTicks === undefined) {
      throw badRequest('INVALID_TICK', `price must be a multiple of the tick size ${m.config.tickSize}`);
    }
    if (priceTicks === 0n) throw badRequest('INVALID_PRICE', 'price must be greater than zero');
    if (priceTicks > MAX_SAFE) throw badRequest('PRICE_OUT_OF_RANGE', 'price is too large');
  }
  if (body.quantity !== undefined) {
    decimal(body.quantity, 'quantity');
    lots = m.quantityToLots(body.quantity);
    if (lots === undefined) {
      throw badRequest('INVALID_LOT', `quantity must be a multiple of the lot size ${m.config.lotSize}`);
    }
    const units = m.baseUnits(lots);
    if (lots === 0n || units < parseAmount(m.config.minQuantity, m.base.precision)) {
      throw badRequest('QUANTITY_TOO_SMALL', `quantity must be at least ${m.config.minQuantity}`);
    }
    if (units > parseAmount(m.config.maxQuantity, m.base.precision)) {
      throw badRequest('QUANTITY_TOO_LARGE', `quantity must be at most ${m.config.maxQuantity}`);
    }
  }
  const hash = createHash('sha256')
    .update(
      canonicalJson({ orderId: o.id, priceTicks: priceTicks?.toString() ?? null, lots: lots?.toString() ?? null }),
    )
    .digest('hex');
  return { priceTicks, lots, hash };
}

/** Run `amends.sweep()` every `intervalMs` (pending amends older than `pendingTimeoutMs`); returns a stop function. */
export function startAmendSweeper(
  amends: OrderAmends,
  intervalMs: number,
  pendingTimeoutMs: number,
  log: Logger,
): () => Promise<void> {
  let stopped = false;
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    if (stopped) return;
    running = amends
      .sweep(pendingTimeoutMs)
      .then((ids) => {
        if (ids.length) log.warn({ amends: ids }, 'amend sweeper: expired pending amends, top-ups released');
      })
      .catch((err: unknown) => log.error({ err }, 'amend sweeper failed'));
  }, intervalMs);
  timer.unref();
  return async () => {
    stopped = true;
    clearInterval(timer);
    await running;
  };
}
