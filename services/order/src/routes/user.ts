/** A user's own orders, amends and fills (bearer token or API key with the `read` or `trade` scope). */
import { requireAuth, requireScope } from '@exchange/auth-client';
import { RowIdString } from '@exchange/contracts';
import { OrderStatus } from '@exchange/contracts/trading';
import { annotateSpan, errorResponses, Type, type App } from '@exchange/platform';
import { marketOr404, userOf, type OrderContext } from '../context.ts';
import { AmendOrderBodySchema, AmendSchema, toAmendDto, type AmendOrderBody } from '../orders/amend.ts';
import { FillSchema, OrderSchema, toFillDto, toOrderDto } from '../orders/model.ts';
import { fillsPage } from '../orders/repository.ts';
import type { PlaceOrderBody } from '../orders/validate.ts';
import { accountFees, AccountFeesSchema } from '../orders/fees.ts';
import { MAX_DEAD_MAN_TIMEOUT_S } from '../session/dead-man-switch.ts';
import { MarketSymbol, OrderId, Page, userSecurity as security } from './schemas.ts';

const DeadManSchema = Type.Object(
  {
    armed: Type.Boolean(),
    timeoutSeconds: Type.Integer({ description: 'The countdown last set (0 when disarmed)' }),
    firesAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
      description: 'When your open orders are cancelled unless you call again first (null when disarmed)',
    }),
  },
  { title: 'DeadManSwitch' },
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
    displayQuantity: Type.Optional(
      Type.String({
        maxLength: 40,
        description:
          'Iceberg order (GTC limit only): the quantity shown in the public book at a time, a multiple of the lot ' +
          'size and at most quantity; the rest stays hidden but executable, and each new slice loses time priority',
        examples: ['0.1'],
      }),
    ),
  },
  { additionalProperties: false },
);

export function registerUserRoutes(app: App, ctx: OrderContext): void {
  const { pool, catalog, orders, amends, metrics } = ctx;
  const read = [requireAuth, requireScope('read')];
  const trade = [requireAuth, requireScope('trade')];

  app.post(
    '/api/v1/orders',
    {
      onRequest: trade,
      schema: {
        tags: ['orders'],
        summary: 'Place an order (funds are held before it is accepted)',
        description:
          'Idempotent by `clientOrderId` per account (same body → the same order, 200; other body → 409 ' +
          'CLIENT_ORDER_ID_CONFLICT) and by `Idempotency-Key`. Per account: 429 ORDER_RATE_LIMITED above the ' +
          'order rate, 409 TOO_MANY_OPEN_ORDERS at the open-order cap (cancels are never limited).',
        security,
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
      onRequest: read,
      schema: {
        tags: ['orders'],
        summary: 'Your orders, newest first (cursor pagination)',
        security,
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
      const page = await orders.list(userOf(req), req.query);
      return { items: page.items.map((o) => toOrderDto(catalog, o)), nextCursor: page.nextCursor };
    },
  );
  app.get(
    '/api/v1/orders/:id',
    {
      onRequest: read,
      schema: {
        tags: ['orders'],
        summary: 'One of your orders',
        security,
        params: Type.Object({ id: OrderId }),
        response: { 200: OrderSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => toOrderDto(catalog, await orders.getOwn(userOf(req), req.params.id)),
  );
  app.delete(
    '/api/v1/orders/:id',
    {
      onRequest: trade,
      schema: {
        tags: ['orders'],
        summary: 'Cancel an order',
        description:
          'Accepted (202): the cancel goes to the engine through the outbox; the order shows `cancelRequested: true` ' +
          'until the engine confirms (status `cancelled`, or `filled` if it filled first). Works while trading is ' +
          'disabled or the market halted. Repeating it while `cancelRequested` is true sends the cancel again (the ' +
          'engine applies one cancel per order), so a cancel that never reached the engine can be re-sent.',
        security,
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
      onRequest: trade,
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
        security,
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
      onRequest: read,
      schema: {
        tags: ['orders'],
        summary: "An order's amends, oldest first, with the engine's outcome",
        security,
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
      onRequest: trade,
      schema: {
        tags: ['orders'],
        summary: 'Cancel all your open orders (optionally in one market)',
        security,
        querystring: Type.Object({ market: Type.Optional(MarketSymbol) }),
        response: {
          202: Type.Object({ count: Type.Integer(), orders: Type.Array(OrderSchema) }),
          ...errorResponses(400, 401, 403, 404),
        },
      },
    },
    async (req, reply) => {
      const market = req.query.market;
      if (market !== undefined) marketOr404(catalog, market);
      const rows = await orders.cancelAll(userOf(req), market);
      metrics.cancelRequests.inc({ reason: 'cancel_all' }, rows.length);
      return reply.status(202).send({ count: rows.length, orders: rows.map((o) => toOrderDto(catalog, o)) });
    },
  );

  app.get(
    '/api/v1/fills',
    {
      onRequest: read,
      schema: {
        tags: ['orders'],
        summary: 'Your fills, newest first (cursor pagination)',
        security,
        querystring: Type.Object({
          market: Type.Optional(MarketSymbol),
          orderId: Type.Optional(OrderId),
          cursor: Type.Optional(RowIdString({ description: 'nextCursor of the previous page (a fill id)' })),
          limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
        }),
        response: { 200: Page(FillSchema), ...errorResponses(400, 401, 403) },
      },
    },
    async (req) => {
      const q = req.query;
      const rows = await fillsPage(pool, userOf(req), q);
      const page = rows.slice(0, q.limit);
      return {
        items: page.map((r) => toFillDto(catalog, r)),
        nextCursor: rows.length > q.limit ? page[page.length - 1]!.id : null,
      };
    },
  );

  // ---------------------------------------------------------------- fee tiers, dead-man's switch (issue 17)
  app.get(
    '/api/v1/account/fees',
    {
      onRequest: read,
      schema: {
        tags: ['orders'],
        summary: 'Your fee tier per market: 30-day volume, current rates, next tier',
        description:
          'Volume is the quote notional of your fills (maker and taker) in each market over the current UTC day and ' +
          'the 29 before it. An ' +
          'order is charged the rates of the tier you are in when it is accepted (shown on the order as ' +
          '`makerFeeBps` / `takerFeeBps`), for all its fills. A negative maker rate is a rebate, paid in the asset ' +
          'you receive and never more than the taker pays on the same trade.',
        security,
        response: { 200: AccountFeesSchema, ...errorResponses(401, 403) },
      },
    },
    async (req) => accountFees(pool, catalog, userOf(req)),
  );

  app.get(
    '/api/v1/orders/cancel-all-after',
    {
      onRequest: read,
      schema: {
        tags: ['orders'],
        summary: "Your dead-man's switch",
        security,
        response: { 200: DeadManSchema, ...errorResponses(401, 403) },
      },
    },
    async (req) => ctx.deadMan.get(userOf(req)),
  );

  app.post(
    '/api/v1/orders/cancel-all-after',
    {
      onRequest: trade,
      schema: {
        tags: ['orders'],
        summary: "Dead-man's switch: cancel all your open orders unless you call again within N seconds",
        description:
          'Arms (or re-arms) the switch: if no call arrives within `timeoutSeconds`, every open order of yours, in ' +
          'every market, is cancelled (reason `dead_man_switch`). Each call restarts the countdown; ' +
          '`timeoutSeconds: 0` disarms it. The switch is kept in the database, so it fires even if the order ' +
          'service restarts; it fires within about a second of its deadline. A call that arrives after the ' +
          'deadline cancels the orders first (`cancelledOnArm`), then arms the new countdown. Orders placed after ' +
          'it fired are not affected.',
        security,
        body: Type.Object(
          {
            timeoutSeconds: Type.Integer({
              minimum: 0,
              maximum: MAX_DEAD_MAN_TIMEOUT_S,
              description: 'Countdown in seconds; 0 disarms',
              examples: [60],
            }),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Composite([
            DeadManSchema,
            Type.Object({
              cancelledOnArm: Type.Integer({
                description: 'Orders cancelled by this call because the previous countdown had already run out',
              }),
            }),
          ]),
          ...errorResponses(400, 401, 403),
        },
      },
    },
    async (req) => {
      const r = await ctx.deadMan.arm(userOf(req), req.body.timeoutSeconds);
      if (r.cancelledOnArm) {
        metrics.sessionCancels.inc({ trigger: 'dead_man_switch' });
        metrics.cancelRequests.inc({ reason: 'dead_man_switch' }, r.cancelledOnArm);
      }
      return r;
    },
  );
}
