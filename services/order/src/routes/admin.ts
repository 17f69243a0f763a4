/** Staff routes: feature flags, market halts, dead letters, order lookups (admin; lookups also support). */
import { actorOf, allOf, requireFreshMfa, requireFreshMfaOnWrites, requireRole } from '@exchange/auth-client';
import { deadLetterRoutes } from '@exchange/messaging';
import { errorResponses, notFound, registerFeatureFlagRoutes, Type, type App, type Static } from '@exchange/platform';
import { marketOr404, type OrderContext } from '../context.ts';
import { ORDERS_SCHEMA } from '../db/schema.ts';
import { OrderSchema, toOrderDto } from '../orders/model.ts';
import { findOrder } from '../orders/repository.ts';
import { MarketParams, OrderId, staffSecurity as security } from './schemas.ts';

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
const HaltResponse = Type.Object({
  market: Type.String(),
  halted: Type.Boolean(),
  reason: Type.Union([Type.String(), Type.Null()]),
  changedBy: Type.Union([Type.String(), Type.Null()]),
  changedAt: Type.Union([Type.String(), Type.Null()]),
  cancelsSent: Type.Integer({ description: 'Orders a cancel was sent for (halt with cancelOpenOrders)' }),
});

// Staff look up any user's order by id (a ticket, a dead letter, a trace): the order, its owner and what Jaeger
// needs to find its trace (the placing span carries the `order.id` attribute).
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

export async function registerAdminRoutes(app: App, ctx: OrderContext): Promise<void> {
  const { pool, catalog, orders, metrics } = ctx;
  // admin writes also need a recent 2FA check when the admin has 2FA on (a stolen token alone cannot flip them)
  const admin = allOf(requireRole('admin'), requireFreshMfa());

  registerFeatureFlagRoutes(app, ctx.flags, { authorize: admin, actorOf });

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
          security,
          params: MarketParams,
          body: action === 'halt' ? HaltBody : Reason,
          response: { 200: HaltResponse, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (req) => {
        const m = marketOr404(catalog, req.params.market);
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

  // A read: no fresh 2FA check.
  app.get(
    '/api/v1/admin/orders/:id',
    {
      onRequest: requireRole('admin', 'support'),
      schema: {
        tags: ['admin'],
        summary: "Any user's order by id, with its owner and how to find its trace (admin and support)",
        security,
        params: Type.Object({ id: OrderId }),
        response: { 200: AdminOrder, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => {
      const row = await findOrder(pool, req.params.id);
      if (!row) throw notFound('ORDER_NOT_FOUND', `order ${req.params.id} not found`);
      req.log.info({ orderId: row.id, owner: row.user_id, actor: actorOf(req) }, 'admin order lookup');
      return {
        ...toOrderDto(catalog, row),
        userId: row.user_id,
        trace: { service: 'order', operation: 'POST /api/v1/orders', tags: { 'order.id': row.id } },
      };
    },
  );
}
