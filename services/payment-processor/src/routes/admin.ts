/**
 * The payment-processor's admin routes (role admin; writes need a fresh 2FA check): its dead letters and the
 * engine's per-market status in this replica.
 */
import { requireFreshMfaOnWrites, requireRole } from '@exchange/auth-client';
import { deadLetterRoutes } from '@exchange/messaging';
import { conflict, errorResponses, notFound, Type, type App } from '@exchange/platform';
import type { PaymentContext } from '../context.ts';
import { PAYMENT_SCHEMA } from '../db/schema.ts';

const MarketStatus = Type.Object({
  market: Type.String(),
  queue: Type.String(),
  lastSeq: Type.Integer({ description: 'Journal sequence of the last applied command (database)' }),
  bookSeq: Type.Integer({ description: 'Order-book event sequence after it' }),
  lastSnapshotSeq: Type.Union([Type.Integer(), Type.Null()]),
  loadedSeq: Type.Union([Type.Integer(), Type.Null()], { description: "This replica's in-memory engine position" }),
  restingOrders: Type.Union([Type.Integer(), Type.Null()]),
  phase: Type.Union([Type.Literal('continuous'), Type.Literal('auction'), Type.Null()], {
    description: "auction: the volatility guard's call auction runs (ends by a journaled command); null: not loaded",
  }),
  consumer: Type.Union(
    [Type.Literal('active'), Type.Literal('standby'), Type.Literal('not_consuming'), Type.Literal('unknown')],
    { description: "This replica's single-active-consumer state on the market queue" },
  ),
  lastDeliveryAt: Type.Union([Type.String(), Type.Null()]),
  lastAppliedAt: Type.Union([Type.String(), Type.Null()]),
  reloads: Type.Integer({ description: 'Engine loads from snapshot + journal in this replica (start, takeover)' }),
  halted: Type.Union([Type.String(), Type.Null()], {
    description:
      'Why the market is halted: a command kept failing for a reason other than its content (recorded for every ' +
      'replica, lifted by POST …/resume), or the journal does not replay in this replica; null when running',
  }),
  epoch: Type.Union([Type.String(), Type.Null()], {
    description: "Id generation of this replica's loaded engine (new on every load: start, takeover, restore)",
  }),
});

export async function registerAdminRoutes(app: App, ctx: PaymentContext): Promise<void> {
  await app.register(async (admin) => {
    admin.addHook('onRequest', requireRole('admin'));
    admin.addHook('onRequest', requireFreshMfaOnWrites);
    await admin.register(deadLetterRoutes, {
      prefix: '/api/v1/admin/dead-letters/payment-processor',
      pool: ctx.pool,
      schema: PAYMENT_SCHEMA,
    });
    admin.get(
      '/api/v1/admin/engine/markets',
      {
        schema: {
          tags: ['admin'],
          summary: "Per market: journal and snapshot position, resting orders, this replica's consumer state",
          security: [{ bearer: [] }],
          response: {
            200: Type.Object({ replica: Type.String(), markets: Type.Array(MarketStatus) }),
            ...errorResponses(401, 403),
          },
        },
      },
      async () => ({ replica: ctx.replicaId, markets: await ctx.engines.status() }),
    );
    admin.post(
      '/api/v1/admin/engine/markets/:market/resume',
      {
        schema: {
          tags: ['admin'],
          summary: 'Resume a halted market (after fixing why its head command kept failing)',
          description:
            'Clears the halt recorded in engine_state; every replica starts consuming the market again within a ' +
            'few seconds, beginning with the command it halted on. 409 `NOT_HALTED` when the market is running.',
          security: [{ bearer: [] }],
          params: Type.Object({ market: Type.String({ pattern: '^[A-Z0-9]{2,10}-[A-Z0-9]{2,10}$' }) }),
          response: {
            200: Type.Object({ market: Type.String(), resumed: Type.Literal(true) }),
            ...errorResponses(400, 401, 403, 404, 409),
          },
        },
      },
      async (req) => {
        const { market } = req.params as { market: string };
        const r = await ctx.engines.resume(market);
        if (r === 'unknown_market') {
          throw notFound('UNKNOWN_MARKET', `this deployment runs no engine for ${market}`);
        }
        if (r === 'not_halted') throw conflict('NOT_HALTED', `${market} is not halted`);
        return { market, resumed: true as const };
      },
    );
  });
}
