import websocket from '@fastify/websocket';
import type pg from 'pg';
import { registerAuth, type AuthOptions } from '@exchange/auth-client';
import type { MarketCatalog } from '@exchange/contracts/markets';
import { pingDatabase } from '@exchange/db';
import { createApp, FeatureFlags, registerIdempotency, type App, type CreateAppOptions } from '@exchange/platform';
import type { WalletClient } from './clients/wallet-client.ts';
import { FLAG_DEFAULTS, type OrderContext } from './context.ts';
import { ORDERS_SCHEMA } from './db/schema.ts';
import { orderMetrics } from './metrics.ts';
import { OrderAmends } from './orders/amend.ts';
import { OrderService } from './orders/service.ts';
import { registerAdminRoutes } from './routes/admin.ts';
import { registerInternalRoutes } from './routes/internal.ts';
import { registerOpsRoutes } from './routes/ops.ts';
import { registerPublicRoutes } from './routes/public.ts';
import { registerUserRoutes } from './routes/user.ts';
import { CancelOnDisconnect } from './session/cancel-on-disconnect.ts';
import { DeadManSwitches } from './session/dead-man-switch.ts';
import { StreamHub } from './stream.ts';
import type { ManagementTarget } from './trading-health.ts';

// Imported from here by code written before context.ts existed.
export { FLAG_DEFAULTS } from './context.ts';

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
  beforeFinalize?: (orderIds: string[]) => Promise<void>;
  /** A cancel-on-disconnect session whose replica stopped refreshing it is ended after this (COD_STALE_MS). */
  codStaleMs?: number;
}

/** The order service's HTTP app: the context, plugins (auth, idempotency, WebSocket), then routes. Does not listen. */
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
    ...(deps.beforeFinalize ? { beforeFinalize: deps.beforeFinalize } : {}),
    ...(deps.orderLimits ? { limits: deps.orderLimits } : {}),
    onEntryBatch: (stage, size) => metrics.entryBatch.observe({ stage }, size),
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
  const ctx: OrderContext = {
    pool,
    catalog,
    flags,
    metrics,
    orders,
    amends,
    hub: deps.hub ?? new StreamHub(),
    management: deps.management,
    internalToken: deps.auth.internalToken,
    deadMan: new DeadManSwitches({ pool, orders }),
    cod: new CancelOnDisconnect({
      pool,
      orders,
      ...(deps.codStaleMs !== undefined ? { staleMs: deps.codStaleMs } : {}),
    }),
  };
  app.decorate('order', ctx);
  app.decorate('orderService', orders);
  app.decorate('orderAmends', amends);
  app.decorate('streamHub', ctx.hub);
  app.decorate('deadManSwitches', ctx.deadMan);
  app.decorate('cancelOnDisconnect', ctx.cod);

  registerAuth(app, deps.auth);
  registerIdempotency(app, { pool, schema: ORDERS_SCHEMA });
  await app.register(websocket, { options: { maxPayload: 16 * 1024 } });
  app.addHook('preClose', async () => ctx.hub.closeAll());

  registerPublicRoutes(app, ctx);
  registerUserRoutes(app, ctx);
  await registerAdminRoutes(app, ctx);
  registerOpsRoutes(app, ctx);
  registerInternalRoutes(app, ctx);
  return app;
}
