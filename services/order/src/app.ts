import type { FastifyReply, FastifyRequest } from 'fastify';
import websocket from '@fastify/websocket';
import { Type, type Static } from '@sinclair/typebox';
import type pg from 'pg';
import {
  annotateSpan,
  createApp,
  errorResponses,
  FeatureFlags,
  notFound,
  registerFeatureFlagRoutes,
  registerIdempotency,
  type App,
  type CreateAppOptions,
} from '@exchange/platform';
import {
  allOf,
  registerAuth,
  requireAuth,
  requireFreshMfa,
  requireFreshMfaOnWrites,
  requireInternalCaller,
  requireRole,
  requireScope,
  type AuthOptions,
} from '@exchange/auth-client';
import { deadLetterRoutes } from '@exchange/messaging';
import type { Market, MarketCatalog } from '@exchange/contracts/markets';
import {
  OpenOrdersQuery,
  OpenOrdersResponse,
  OrderLookupRequest,
  OrderLookupResponse,
  TradesQuery,
  TradesResponse,
} from '@exchange/contracts/orders';
import { formatFixed } from '@exchange/contracts/markets';
import { OrderStatus } from '@exchange/contracts/trading';
import { pingDatabase } from '@exchange/db';
import { ORDERS_SCHEMA } from './db/schema.ts';
import { CANDLE_INTERVALS, type CandleInterval } from './events.ts';
import {
  BookSchema,
  CandleSchema,
  getBook,
  getCandles,
  getTicker,
  getTrades,
  TickerSchema,
  TradeSchema,
} from './market-data.ts';
import { OrderSchema, toOrderDto, type OrderRow } from './orders/model.ts';
import { OrderService } from './orders/service.ts';
import { AmendOrderBodySchema, AmendSchema, OrderAmends, toAmendDto, type AmendOrderBody } from './orders/amend.ts';
import { orderMetrics } from './metrics.ts';
import { priceBand, type PlaceOrderBody } from './orders/validate.ts';
import { registerStream, StreamHub } from './stream.ts';
import { TradingHealth, tradingHealth, type ManagementTarget } from './trading-health.ts';
import type { WalletClient } from './wallet-client.ts';

export interface AppDeps {
  pool: pg.Pool;
  catalog: MarketCatalog;
  wallet: WalletClient;
  auth: AuthOptions;
  management: ManagementTarget;
  hub?: StreamHub;
  /** /ready checks besides the database (e.g. the broker). */
  readiness?: CreateAppOptions['readiness'];
  logLevel?: string;
  version?: string;
  fastify?: CreateAppOptions['fastify'];
  /** Per-user order rate and open-order cap (ORDER_RATE_PER_SECOND, ORDER_RATE_BURST, MAX_OPEN_ORDERS_PER_USER). */
  orderLimits?: { ordersPerSecond: number; burst: number; maxOpenOrders: number };
  pendingTimeoutMs?: number;
  /** Test hook (see OrderService). */
  afterHold?: (orderId: string) => Promise<void>;
  /** Test hook (see OrderService). */
  beforeFinalizeCommit?: (orderIds: string[]) => Promise<void>;
}

declare module 'fastify' {
  interface FastifyInstance {
    orderService: OrderService;
    orderAmends: OrderAmends;
    streamHub: StreamHub;
  }
}

export const FLAG_DEFAULTS = { trading: true, maintenance: false };

const MarketSymbol = Type.String({ pattern: '^[A-Z0-9]{2,10}-[A-Z0-9]{2,10}$', maxLength: 21 });
const OrderId = Type.String({ format: 'uuid' });
const Reason = Type.Object({ reason: Type.Optional(Type.String({ maxLength: 500 })) }, { additionalProperties: false });
const HaltBody = Type.Object(
  {
    reason: Type.Optional(Type.String({ maxLength: 500 })),
    cancelOpenOrders: Type.Optional(
      Type.Boolean({ description: 'Also cancel every resting order of the market (CancelOrderV1 reason "halt")' }),
    ),
  },
  { additionalProperties: false },
);

const PlaceOrderBodySchema = Type.Object(
  {
    market: Type.String({ minLength: 1, maxLength: 30, examples: ['BTC-USD'] }),
    side: Type.Union([Type.Literal('buy'), Type.Literal('sell')]),
    type: Type.Union([Type.Literal('limit'), Type.Literal('market')]),
    price: Type.Optional(
      Type.String({ maxLength: 40, description: 'Limit price, decimal string on the tick grid', examples: ['65000'] }),
    ),
    quantity: Type.String({
      maxLength: 40,
      description: 'Decimal string, a multiple of the lot size',
      examples: ['0.5'],
    }),
    timeInForce: Type.Optional(
      Type.Union([Type.Literal('GTC'), Type.Literal('IOC'), Type.Literal('FOK')], {
        description: 'Default GTC for limit, IOC for market orders',
      }),
    ),
    postOnly: Type.Optional(Type.Boolean()),
    stp: Type.Optional(
      Type.Union([
        Type.Literal('cancel_newest'),
        Type.Literal('cancel_oldest'),
        Type.Literal('cancel_both'),
        Type.Literal('decrement'),
      ]),
    ),
    clientOrderId: Type.Optional(
      Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,64}$', description: 'Idempotency key of the order, per account' }),
    ),
    stopPrice: Type.Optional(
      Type.String({
        maxLength: 40,
        description:
          'Stop order: waits until the last trade price reaches this price (buy: at or above, sell: at or below), ' +
          'then runs as the limit (stop-limit) or market (stop-loss) order; funds are held from placement',
        examples: ['64000'],
      }),
    ),
  },
  { additionalProperties: false },
);

const MarketSchema = Type.Object({
  symbol: Type.String(),
  base: Type.String(),
  quote: Type.String(),
  tickSize: Type.String(),
  lotSize: Type.String(),
  minQuantity: Type.String(),
  maxQuantity: Type.String(),
  minNotional: Type.String(),
  makerFeeBps: Type.Integer(),
  takerFeeBps: Type.Integer(),
  priceBandBps: Type.Integer(),
  halted: Type.Boolean(),
  haltReason: Type.Union([Type.String(), Type.Null()]),
  lastPrice: Type.Union([Type.String(), Type.Null()]),
  priceBand: Type.Union([Type.Object({ low: Type.String(), high: Type.String() }), Type.Null()], {
    description: 'Limit prices accepted right now (around the last trade); null before the first trade',
  }),
});

const FillSchema = Type.Object({
  id: Type.String(),
  tradeId: Type.String(),
  orderId: Type.String(),
  market: Type.String(),
  side: Type.Union([Type.Literal('buy'), Type.Literal('sell')]),
  liquidity: Type.Union([Type.Literal('maker'), Type.Literal('taker')]),
  price: Type.String(),
  quantity: Type.String(),
  quoteAmount: Type.String(),
  fee: Type.String(),
  feeAsset: Type.String(),
  executedAt: Type.String(),
});

const Page = <T extends ReturnType<typeof Type.Object>>(item: T) =>
  Type.Object({ items: Type.Array(item), nextCursor: Type.Union([Type.String(), Type.Null()]) });

export async function buildApp(deps: AppDeps): Promise<App> {
  const { pool, catalog } = deps;
  const app = await createApp({
    service: 'order',
    version: deps.version,
    logLevel: deps.logLevel,
    readiness: { database: () => pingDatabase(pool), ...deps.readiness },
    openapi: { title: 'Order service', description: 'Order entry, order state, market data, halts, kill switches' },
    fastify: deps.fastify,
  });
  const flags = new FeatureFlags({ pool, schema: ORDERS_SCHEMA, defaults: FLAG_DEFAULTS });
  const metrics = orderMetrics(app.metrics.registry, pool);
  const orders = new OrderService({
    pool,
    catalog,
    wallet: deps.wallet,
    flags,
    log: app.log,
    ...(deps.pendingTimeoutMs !== undefined ? { pendingTimeoutMs: deps.pendingTimeoutMs } : {}),
    ...(deps.afterHold ? { afterHold: deps.afterHold } : {}),
    ...(deps.beforeFinalizeCommit ? { beforeFinalizeCommit: deps.beforeFinalizeCommit } : {}),
    ...(deps.orderLimits ? { limits: deps.orderLimits } : {}),
    onSweep: (r) => {
      for (const outcome of ['finished', 'released', 'removed'] as const) {
        if (r[outcome].length) metrics.sweeper.inc({ outcome }, r[outcome].length);
      }
    },
  });
  const amends = new OrderAmends({
    pool,
    catalog,
    wallet: deps.wallet,
    log: app.log,
    gate: (market) => orders.gate(market),
    lastTradeTicks: async (market) => {
      const st = await orders.marketState(market);
      return st?.last_trade_ticks != null ? BigInt(st.last_trade_ticks) : undefined;
    },
  });
  const hub = deps.hub ?? new StreamHub();
  app.decorate('orderService', orders);
  app.decorate('orderAmends', amends);
  app.decorate('streamHub', hub);

  registerAuth(app, deps.auth);
  registerIdempotency(app, { pool, schema: ORDERS_SCHEMA });
  await app.register(websocket, { options: { maxPayload: 16 * 1024 } });
  app.addHook('preClose', async () => hub.closeAll());

  // The auth guards are typed for a plain Fastify instance; attach them to this (TypeBox-typed) app's routes.
  type Guard = (req: FastifyRequest, reply: FastifyReply) => Promise<void>;
  const guards = (...g: Guard[]) => g as unknown as never;
  // admin writes also need a recent 2FA check when the admin has 2FA on (a stolen token alone cannot flip them)
  const admin = guards(allOf(requireRole('admin'), requireFreshMfa()));
  const actorOf = (req: FastifyRequest) => req.principal?.id ?? 'unknown';
  const userOf = (req: FastifyRequest) => req.principal!.id;
  const marketOr404 = (symbol: string): Market => {
    const m = catalog.market(symbol);
    if (!m) throw notFound('UNKNOWN_MARKET', `unknown market "${symbol}"`);
    return m;
  };
  const bearer: Array<Record<string, string[]>> = [{ bearer: [] }, { apiKey: [] }];

  // ---------------------------------------------------------------- markets (public)
  app.get(
    '/api/v1/markets',
    {
      schema: {
        tags: ['markets'],
        summary: 'Markets with their trading rules, halted status and current price band',
        response: { 200: Type.Object({ markets: Type.Array(MarketSchema) }) },
      },
    },
    async () => {
      const states = await orders.allMarketStates();
      return {
        markets: [...catalog.markets.values()].map((m) => {
          const st = states.get(m.symbol);
          const last = st?.last_trade_ticks != null ? BigInt(st.last_trade_ticks) : undefined;
          const band = last !== undefined ? priceBand(m, last) : undefined;
          return {
            ...m.config,
            halted: st?.halted ?? false,
            haltReason: st?.halted ? st.halt_reason : null,
            lastPrice: last !== undefined ? m.ticksToPrice(last) : null,
            priceBand: band ? { low: m.ticksToPrice(band.low), high: m.ticksToPrice(band.high) } : null,
          };
        }),
      };
    },
  );

  const MarketParams = Type.Object({ market: Type.String({ maxLength: 30 }) });
  app.get(
    '/api/v1/markets/:market/book',
    {
      schema: {
        tags: ['market-data'],
        summary: 'L2 order book (aggregated levels, best first)',
        params: MarketParams,
        querystring: Type.Object({ depth: Type.Integer({ minimum: 1, maximum: 200, default: 50 }) }),
        response: { 200: BookSchema, ...errorResponses(400, 404) },
      },
    },
    async (req) => getBook(pool, marketOr404(req.params.market), req.query.depth),
  );
  app.get(
    '/api/v1/markets/:market/trades',
    {
      schema: {
        tags: ['market-data'],
        summary: 'Recent trades, newest first',
        params: MarketParams,
        querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }) }),
        response: { 200: Type.Object({ trades: Type.Array(TradeSchema) }), ...errorResponses(400, 404) },
      },
    },
    async (req) => ({ trades: await getTrades(pool, marketOr404(req.params.market), req.query.limit) }),
  );
  app.get(
    '/api/v1/markets/:market/ticker',
    {
      schema: {
        tags: ['market-data'],
        summary: '24h ticker',
        params: MarketParams,
        response: { 200: TickerSchema, ...errorResponses(400, 404) },
      },
    },
    async (req) => getTicker(pool, marketOr404(req.params.market)),
  );
  app.get(
    '/api/v1/markets/:market/candles',
    {
      schema: {
        tags: ['market-data'],
        summary: 'OHLCV candles, oldest first',
        params: MarketParams,
        querystring: Type.Object({
          interval: Type.Union(
            Object.keys(CANDLE_INTERVALS).map((k) => Type.Literal(k)),
            { default: '1m' },
          ),
          from: Type.Optional(Type.String({ format: 'date-time' })),
          to: Type.Optional(Type.String({ format: 'date-time' })),
          limit: Type.Integer({ minimum: 1, maximum: 1000, default: 500 }),
        }),
        response: {
          200: Type.Object({ market: Type.String(), interval: Type.String(), candles: Type.Array(CandleSchema) }),
          ...errorResponses(400, 404),
        },
      },
    },
    async (req) => {
      const m = marketOr404(req.params.market);
      const q = req.query as { interval: CandleInterval; from?: string; to?: string; limit: number };
      return { market: m.symbol, interval: q.interval, candles: await getCandles(pool, m, q) };
    },
  );

  // ---------------------------------------------------------------- orders (authenticated)
  app.post(
    '/api/v1/orders',
    {
      onRequest: guards(requireAuth, requireScope('trade')),
      schema: {
        tags: ['orders'],
        summary: 'Place an order (funds are held before it is accepted)',
        description:
          'Idempotent by `clientOrderId` per account (same body → the same order, 200; other body → 409 ' +
          'CLIENT_ORDER_ID_CONFLICT) and by `Idempotency-Key`. Per account: 429 ORDER_RATE_LIMITED above the ' +
          'order rate, 409 TOO_MANY_OPEN_ORDERS at the open-order cap (cancels are never limited).',
        security: bearer,
        body: PlaceOrderBodySchema,
        response: { 201: OrderSchema, 200: OrderSchema, ...errorResponses(400, 401, 403, 409, 422, 429, 503) },
      },
    },
    async (req, reply) => {
      const { order, created } = await orders.place(userOf(req), req.body as PlaceOrderBody);
      // searchable in Jaeger by tag: order.id=<id> finds the order's whole trace (docs/observability.md)
      annotateSpan({ 'order.id': order.id, 'order.market': order.market });
      if (created) metrics.placed.inc({ market: order.market, side: order.side, type: order.type });
      return reply.status(created ? 201 : 200).send(toOrderDto(catalog, order));
    },
  );

  app.get(
    '/api/v1/orders',
    {
      onRequest: guards(requireAuth, requireScope('read')),
      schema: {
        tags: ['orders'],
        summary: 'Your orders, newest first (cursor pagination)',
        security: bearer,
        querystring: Type.Object({
          market: Type.Optional(MarketSymbol),
          status: Type.Optional(OrderStatus),
          open: Type.Optional(Type.Boolean({ description: 'Only new / partially filled orders' })),
          cursor: Type.Optional(OrderId),
          limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
        }),
        response: { 200: Page(OrderSchema), ...errorResponses(400, 401, 403) },
      },
    },
    async (req) => {
      const q = req.query as { market?: string; status?: OrderStatus; open?: boolean; cursor?: string; limit: number };
      const page = await orders.list(userOf(req), q);
      return { items: page.items.map((o) => toOrderDto(catalog, o)), nextCursor: page.nextCursor };
    },
  );
  app.get(
    '/api/v1/orders/:id',
    {
      onRequest: guards(requireAuth, requireScope('read')),
      schema: {
        tags: ['orders'],
        summary: 'One of your orders',
        security: bearer,
        params: Type.Object({ id: OrderId }),
        response: { 200: OrderSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => toOrderDto(catalog, await orders.getOwn(userOf(req), req.params.id)),
  );
  app.delete(
    '/api/v1/orders/:id',
    {
      onRequest: guards(requireAuth, requireScope('trade')),
      schema: {
        tags: ['orders'],
        summary: 'Cancel an order',
        description:
          'Accepted (202): the cancel goes to the engine through the outbox; the order shows `cancelRequested: true` ' +
          'until the engine confirms (status `cancelled`, or `filled` if it filled first). Works while trading is ' +
          'disabled or the market halted. Repeating it while `cancelRequested` is true sends the cancel again (the ' +
          'engine applies one cancel per order), so a cancel that never reached the engine can be re-sent.',
        security: bearer,
        params: Type.Object({ id: OrderId }),
        response: { 202: OrderSchema, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (req, reply) => {
      const o = await orders.cancel(userOf(req), req.params.id);
      metrics.cancelRequests.inc({ reason: 'user' });
      return reply.status(202).send(toOrderDto(catalog, o));
    },
  );
  app.patch(
    '/api/v1/orders/:id',
    {
      onRequest: guards(requireAuth, requireScope('trade')),
      schema: {
        tags: ['orders'],
        summary: 'Amend a resting order: new price and/or new total quantity',
        description:
          'Accepted (202): the amend goes to the engine through the outbox (`status: sent`) and the order changes ' +
          'when the engine applies it (see GET /api/v1/orders/{id}/amends). `quantity` is the new TOTAL quantity ' +
          '(filled + open). A lower quantity at the same price keeps time priority; a price change or a higher ' +
          'quantity loses it. The hold follows exactly: funds an amend may need are reserved first (400 ' +
          'INSUFFICIENT_FUNDS), and what it frees is released when it applies. Idempotent by `amendSeq` (200 with ' +
          'the same amend; 409 AMEND_SEQ_CONFLICT for other values, 409 AMEND_SEQ_MISMATCH for a number other than ' +
          'the next) and by `Idempotency-Key`. 409 AMEND_IN_PROGRESS while an earlier amend is on its way, ' +
          'ORDER_NOT_OPEN, ORDER_NOT_AMENDABLE (market, IOC, FOK); 400 AMEND_NO_CHANGE, QUANTITY_BELOW_FILLED, ' +
          'PRICE_OUT_OF_BAND and the order entry checks. The engine may still reject it (`reason`): AMEND_WOULD_TAKE ' +
          '(an amend never trades), UNKNOWN_ORDER (filled or cancelled meanwhile), INVALID_QUANTITY, AMEND_HOLD_EXCEEDED.',
        security: bearer,
        params: Type.Object({ id: OrderId }),
        body: AmendOrderBodySchema,
        response: {
          202: Type.Object({ amend: AmendSchema, order: OrderSchema }),
          200: Type.Object({ amend: AmendSchema, order: OrderSchema }),
          ...errorResponses(400, 401, 403, 404, 409, 503),
        },
      },
    },
    async (req, reply) => {
      const r = await amends.amend(userOf(req), req.params.id, req.body as AmendOrderBody);
      annotateSpan({ 'order.id': r.order.id, 'order.market': r.order.market });
      return reply
        .status(r.created ? 202 : 200)
        .send({ amend: toAmendDto(catalog, r.order, r.amend), order: toOrderDto(catalog, r.order) });
    },
  );
  app.get(
    '/api/v1/orders/:id/amends',
    {
      onRequest: guards(requireAuth, requireScope('read')),
      schema: {
        tags: ['orders'],
        summary: "An order's amends, oldest first, with the engine's outcome",
        security: bearer,
        params: Type.Object({ id: OrderId }),
        response: { 200: Type.Object({ items: Type.Array(AmendSchema) }), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => {
      const r = await amends.list(userOf(req), req.params.id);
      return { items: r.amends.map((a) => toAmendDto(catalog, r.order, a)) };
    },
  );
  app.delete(
    '/api/v1/orders',
    {
      onRequest: guards(requireAuth, requireScope('trade')),
      schema: {
        tags: ['orders'],
        summary: 'Cancel all your open orders (optionally in one market)',
        security: bearer,
        querystring: Type.Object({ market: Type.Optional(MarketSymbol) }),
        response: {
          202: Type.Object({ count: Type.Integer(), orders: Type.Array(OrderSchema) }),
          ...errorResponses(400, 401, 403, 404),
        },
      },
    },
    async (req, reply) => {
      const market = (req.query as { market?: string }).market;
      if (market !== undefined) marketOr404(market);
      const rows = await orders.cancelAll(userOf(req), market);
      metrics.cancelRequests.inc({ reason: 'cancel_all' }, rows.length);
      return reply.status(202).send({ count: rows.length, orders: rows.map((o) => toOrderDto(catalog, o)) });
    },
  );

  app.get(
    '/api/v1/fills',
    {
      onRequest: guards(requireAuth, requireScope('read')),
      schema: {
        tags: ['orders'],
        summary: 'Your fills, newest first (cursor pagination)',
        security: bearer,
        querystring: Type.Object({
          market: Type.Optional(MarketSymbol),
          orderId: Type.Optional(OrderId),
          cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,19}$' })),
          limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
        }),
        response: { 200: Page(FillSchema), ...errorResponses(400, 401, 403) },
      },
    },
    async (req) => {
      const q = req.query as { market?: string; orderId?: string; cursor?: string; limit: number };
      const values: unknown[] = [userOf(req)];
      const where = ['user_id = $1'];
      if (q.market) where.push(`market = $${values.push(q.market)}`);
      if (q.orderId) where.push(`order_id = $${values.push(q.orderId)}`);
      if (q.cursor) where.push(`id < $${values.push(q.cursor)}::bigint`);
      const lim = values.push(q.limit + 1);
      const { rows } = await pool.query<{
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
      }>(
        `SELECT id::text AS id, trade_id, order_id, market, side, liquidity, price_ticks, quantity_lots, quote_amount,
                fee, fee_asset, executed_at
           FROM "${ORDERS_SCHEMA}".fills WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT $${lim}`,
        values,
      );
      const page = rows.slice(0, q.limit);
      return {
        items: page.map((r) => {
          const m = catalog.market(r.market)!;
          return {
            id: r.id,
            tradeId: r.trade_id,
            orderId: r.order_id,
            market: r.market,
            side: r.side,
            liquidity: r.liquidity,
            price: m.ticksToPrice(BigInt(r.price_ticks)),
            quantity: m.lotsToQuantity(BigInt(r.quantity_lots)),
            quoteAmount: formatFixed(BigInt(r.quote_amount), m.quote.precision),
            fee: formatFixed(BigInt(r.fee), catalog.asset(r.fee_asset)?.precision ?? 0),
            feeAsset: r.fee_asset,
            executedAt: r.executed_at.toISOString(),
          };
        }),
        nextCursor: rows.length > q.limit ? page[page.length - 1]!.id : null,
      };
    },
  );

  // ---------------------------------------------------------------- admin
  registerFeatureFlagRoutes(app, flags, { authorize: admin, actorOf });
  const HaltResponse = Type.Object({
    market: Type.String(),
    halted: Type.Boolean(),
    reason: Type.Union([Type.String(), Type.Null()]),
    changedBy: Type.Union([Type.String(), Type.Null()]),
    changedAt: Type.Union([Type.String(), Type.Null()]),
    cancelsSent: Type.Integer({ description: 'Orders a cancel was sent for (halt with cancelOpenOrders)' }),
  });
  for (const action of ['halt', 'resume'] as const) {
    app.post(
      `/api/v1/admin/markets/:market/${action}`,
      {
        onRequest: admin,
        preValidation: async (req) => {
          if (req.body === undefined || req.body === null) req.body = {};
        },
        schema: {
          tags: ['admin'],
          summary:
            action === 'halt' ? 'Halt a market: new orders 503 MARKET_HALTED, cancels allowed' : 'Resume a market',
          security: [{ bearer: [] }],
          params: MarketParams,
          body: action === 'halt' ? HaltBody : Reason,
          response: { 200: HaltResponse, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (req) => {
        const m = marketOr404(req.params.market);
        const { reason, cancelOpenOrders } = req.body as Static<typeof HaltBody>;
        const st = await orders.setHalted(m.symbol, action === 'halt', actorOf(req), reason);
        const cancelled = action === 'halt' && cancelOpenOrders ? await orders.cancelMarket(m.symbol, 'halt') : [];
        if (cancelled.length) metrics.cancelRequests.inc({ reason: 'halt' }, cancelled.length);
        req.log.warn(
          { market: m.symbol, halted: st.halted, actor: actorOf(req), reason, cancelsSent: cancelled.length },
          `market ${action}`,
        );
        return {
          market: st.market,
          halted: st.halted,
          reason: st.halt_reason,
          changedBy: st.halted_by,
          changedAt: st.halted_at?.toISOString() ?? null,
          cancelsSent: cancelled.length,
        };
      },
    );
  }
  await app.register(
    async (scope) => {
      scope.addHook('onRequest', requireRole('admin'));
      scope.addHook('onRequest', requireFreshMfaOnWrites);
      await scope.register(deadLetterRoutes, { pool, schema: ORDERS_SCHEMA });
    },
    { prefix: '/api/v1/admin/dead-letters/order' },
  );

  // Staff look up any user's order by id (a ticket, a dead letter, a trace): the order, its owner and what Jaeger
  // needs to find its trace (the placing span carries the `order.id` attribute). A read: no fresh 2FA check.
  const AdminOrder = Type.Composite(
    [
      OrderSchema,
      Type.Object({
        userId: Type.String({ format: 'uuid', description: 'The owner of the order' }),
        trace: Type.Object(
          {
            service: Type.String(),
            operation: Type.String(),
            tags: Type.Record(Type.String(), Type.String()),
          },
          { description: "Jaeger search for the order's trace: service, operation and span tags" },
        ),
      }),
    ],
    { title: 'AdminOrder' },
  );
  app.get(
    '/api/v1/admin/orders/:id',
    {
      onRequest: guards(requireRole('admin', 'support')),
      schema: {
        tags: ['admin'],
        summary: "Any user's order by id, with its owner and how to find its trace (admin and support)",
        security: [{ bearer: [] }],
        params: Type.Object({ id: OrderId }),
        response: { 200: AdminOrder, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => {
      const { rows } = await pool.query<OrderRow>('SELECT * FROM orders.orders WHERE id = $1', [req.params.id]);
      const row = rows[0];
      if (!row) throw notFound('ORDER_NOT_FOUND', `order ${req.params.id} not found`);
      req.log.info({ orderId: row.id, owner: row.user_id, actor: actorOf(req) }, 'admin order lookup');
      return {
        ...toOrderDto(catalog, row),
        userId: row.user_id,
        trace: { service: 'order', operation: 'POST /api/v1/orders', tags: { 'order.id': row.id } },
      };
    },
  );

  // ---------------------------------------------------------------- trading health (runbook)
  app.get(
    '/api/health/trading',
    {
      schema: {
        tags: ['ops'],
        summary: 'Trading system operational: engine consumer per market, queue depth, last trade age, halts',
        response: { 200: TradingHealth, 503: TradingHealth },
      },
    },
    async (_req, reply) => {
      const body = await tradingHealth(deps.management, catalog, orders);
      return reply.status(body.status === 'healthy' ? 200 : 503).send(body);
    },
  );

  // ---------------------------------------------------------------- internal: the wallet's reconciliation
  // the wallet's reconciliation is the only caller of these
  const internalOnly = guards(requireInternalCaller('wallet'));
  type RefRow = { id: string; status: string; created_at: Date; updated_at: Date };
  const refOf = (r: RefRow) => ({
    id: r.id,
    status: r.status,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  });
  app.post(
    '/internal/orders/lookup',
    {
      onRequest: internalOnly,
      schema: { hide: true, body: OrderLookupRequest, response: { 200: OrderLookupResponse } },
    },
    async (req) => {
      const { ids } = req.body as Static<typeof OrderLookupRequest>;
      const { rows } = await pool.query<RefRow>(
        `SELECT id::text, status, created_at, updated_at FROM orders.orders WHERE id = ANY($1::uuid[]) ORDER BY id`,
        [ids],
      );
      return { orders: rows.map(refOf) };
    },
  );
  app.get(
    '/internal/orders/open',
    {
      onRequest: internalOnly,
      schema: { hide: true, querystring: OpenOrdersQuery, response: { 200: OpenOrdersResponse } },
    },
    async (req) => {
      const q = req.query as Static<typeof OpenOrdersQuery>;
      const { rows } = await pool.query<RefRow>(
        `SELECT id::text, status, created_at, updated_at FROM orders.orders
          WHERE status IN ('new', 'partially_filled') AND ($1::uuid IS NULL OR id > $1::uuid)
          ORDER BY id LIMIT $2`,
        [q.after ?? null, q.limit],
      );
      return { orders: rows.map(refOf), next: rows.length === q.limit ? rows[rows.length - 1]!.id : null };
    },
  );

  app.get(
    '/internal/trades',
    {
      onRequest: internalOnly,
      schema: { hide: true, querystring: TradesQuery, response: { 200: TradesResponse } },
    },
    async (req) => {
      const q = req.query as Static<typeof TradesQuery>;
      const { rows } = await pool.query<{ trade_id: string; market: string; executed_at: Date }>(
        `SELECT trade_id::text, market, executed_at FROM orders.trades
          WHERE market = ANY($5::text[]) AND executed_at >= $1 AND executed_at < $2
            AND ($3::uuid IS NULL OR trade_id > $3::uuid)
          ORDER BY trade_id LIMIT $4`,
        // by market: the (market, executed_at) index serves the window
        [q.from, q.to, q.after ?? null, q.limit, [...catalog.markets.keys()]],
      );
      return {
        trades: rows.map((r) => ({ tradeId: r.trade_id, market: r.market, executedAt: r.executed_at.toISOString() })),
        next: rows.length === q.limit ? rows[rows.length - 1]!.trade_id : null,
      };
    },
  );

  // ---------------------------------------------------------------- stream
  // Token verification for the WebSocket goes through the same auth plugin (JWKS, revocation) via an internal route.
  app.get(
    '/internal/stream/whoami',
    {
      onRequest: guards(requireInternalCaller('self'), requireAuth),
      schema: { hide: true, response: { 200: Type.Object({ userId: Type.String() }) } },
    },
    async (req) => ({ userId: userOf(req) }),
  );
  registerStream(app, {
    hub,
    catalog,
    pool,
    async authenticate(token) {
      const res = await app.inject({
        method: 'GET',
        url: '/internal/stream/whoami',
        headers: { authorization: `Bearer ${token}`, 'x-internal-token': deps.auth.internalToken },
      });
      const body = res.json() as { userId?: string; error?: { code: string; message: string } };
      if (res.statusCode === 200 && body.userId) return body.userId;
      throw { code: body.error?.code ?? 'UNAUTHENTICATED', message: body.error?.message ?? 'invalid token' };
    },
  });

  return app;
}
