import { registerAuth, requireFreshMfaOnWrites, requireRole, type AuthOptions } from '@exchange/auth-client';
import { pingDatabase, type Pool } from '@exchange/db';
import { deadLetterRoutes, type Messaging } from '@exchange/messaging';
import { createApp, errorResponses, Type, type App, type CreateAppOptions, promClient } from '@exchange/platform';
import { PAYMENT_SCHEMA } from './db/schema.ts';
import type { EngineHost } from './engine/engine-host.ts';

export interface AppDeps {
  pool: Pool;
  messaging: Messaging;
  engines: EngineHost;
  auth: AuthOptions;
  replicaId: string;
  /** Metrics created before the app (messaging, engine, payouts); served at /metrics with the HTTP ones. */
  registry?: promClient.Registry;
  version?: string;
  logLevel?: string;
  fastify?: CreateAppOptions['fastify'];
}

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

/** The HTTP app (no listening): health/ready/metrics, admin dead letters and engine status. */
export async function buildApp(deps: AppDeps): Promise<App> {
  const app = await createApp({
    service: 'payment-processor',
    ...(deps.version ? { version: deps.version } : {}),
    ...(deps.logLevel ? { logLevel: deps.logLevel } : {}),
    ...(deps.fastify ? { fastify: deps.fastify } : {}),
    openapi: {
      title: 'payment-processor',
      description: 'Matching engine host, settlement requests and payouts. Admin endpoints only.',
    },
    readiness: {
      database: () => pingDatabase(deps.pool),
      broker: async () => {
        const h = await deps.messaging.health();
        if (!h.ok) throw new Error(h.error ?? 'broker not connected');
      },
    },
  });
  if (deps.registry) {
    for (const metric of deps.registry.getMetricsAsArray()) {
      app.metrics.registry.registerMetric(metric as unknown as promClient.Metric);
    }
  }
  registerAuth(app, deps.auth);

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
  return app;
}
