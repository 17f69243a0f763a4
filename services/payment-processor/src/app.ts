import { registerAuth, type AuthOptions } from '@exchange/auth-client';
import { pingDatabase, type Pool } from '@exchange/db';
import type { Messaging } from '@exchange/messaging';
import { createApp, type App, type CreateAppOptions, promClient } from '@exchange/platform';
import type { PaymentContext } from './context.ts';
import type { EngineHost } from './engine/engine-host.ts';
import { registerAdminRoutes } from './routes/admin.ts';
import { registerInternalRoutes } from './routes/internal.ts';

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

/**
 * The HTTP app (no listening): health/ready/metrics from createApp, then the admin routes (routes/admin.ts) and the
 * internal routes for the wallet's reconciliation (routes/internal.ts).
 */
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
  const ctx: PaymentContext = { pool: deps.pool, engines: deps.engines, replicaId: deps.replicaId };
  app.decorate('payment', ctx);

  registerAuth(app, deps.auth);

  await registerAdminRoutes(app, ctx);
  registerInternalRoutes(app, ctx);
  return app;
}
