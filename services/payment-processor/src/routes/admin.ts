/**
 * The payment-processor's admin routes (role admin; writes need a fresh 2FA check): its dead letters and the
 * engine's per-market status in this replica.
 */
import { requireFreshMfaOnWrites, requireRole } from '@exchange/auth-client';
import { deadLetterRoutes } from '@exchange/messaging';
import { errorResponses, Type, type App } from '@exchange/platform';
import type { Pool } from '@exchange/db';
import { PAYMENT_SCHEMA } from '../db/schema.ts';
import type { EngineHost } from '../engine/engine-host.ts';

const MarketStatus = Type.Object({
  market: Type.String(),
  queue: Type.String(),
  lastSeq: Type.Integer({ description: 'Journal sequence of the last applied command (database)' }),
  bookSeq: Type.Integer({ description: 'Order-book event sequence after it' }),
  lastSnapshotSeq: Type.Union([Type.Integer(), Type.Null()]),
  loadedSeq: Type.Union([Type.Integer(), Type.Null()], { description: "This replica's in-memory engine position" }),
  restingOrders: Type.Union([Type.Integer(), Type.Null()]),
  consumer: Type.Union(
    [Type.Literal('active'), Type.Literal('standby'), Type.Literal('not_consuming'), Type.Literal('unknown')],
    { description: "This replica's single-active-consumer state on the market queue" },
  ),
  lastDeliveryAt: Type.Union([Type.String(), Type.Null()]),
  lastAppliedAt: Type.Union([Type.String(), Type.Null()]),
  reloads: Type.Integer({ description: 'Engine loads from snapshot + journal in this replica (start, takeover)' }),
  halted: Type.Union([Type.String(), Type.Null()], {
    description: 'Why the market is halted in this replica (journal replay diverged); null when running',
  }),
});

export async function registerAdminRoutes(
  app: App,
  deps: { pool: Pool; engines: EngineHost; replicaId: string },
): Promise<void> {
  await app.register(async (admin) => {
    admin.addHook('onRequest', requireRole('admin'));
    admin.addHook('onRequest', requireFreshMfaOnWrites);
    await admin.register(deadLetterRoutes, {
      prefix: '/api/v1/admin/dead-letters/payment-processor',
      pool: deps.pool,
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
      async () => ({ replica: deps.replicaId, markets: await deps.engines.status() }),
    );
  });
}
