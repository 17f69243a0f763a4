/**
 * The order service's context: what the routes share (pool, catalog, flags, metrics, the order and amend services,
 * the stream hub), its Fastify decorations, and the user and market a request names. Who is acting (halts, flags):
 * `actorOf` of @exchange/auth-client.
 */
import type { FastifyRequest } from 'fastify';
import type pg from 'pg';
import type { Market, MarketCatalog } from '@exchange/contracts/markets';
import { notFound, type FeatureFlags } from '@exchange/platform';
import type { OrderMetrics } from './metrics.ts';
import type { OrderAmends } from './orders/amend.ts';
import type { OrderService } from './orders/service.ts';
import type { CancelOnDisconnect } from './session/cancel-on-disconnect.ts';
import type { DeadManSwitches } from './session/dead-man-switch.ts';
import type { StreamHub } from './stream.ts';
import type { ManagementTarget } from './trading-health.ts';

/** What the routes share. */
export interface OrderContext {
  pool: pg.Pool;
  catalog: MarketCatalog;
  flags: FeatureFlags;
  metrics: OrderMetrics;
  orders: OrderService;
  amends: OrderAmends;
  hub: StreamHub;
  /** Where /api/health/trading reads the engine's queues. */
  management: ManagementTarget;
  /** This service's own internal token: the stream verifies access tokens through /internal/stream/whoami. */
  internalToken: string;
  /** Dead-man's switches (POST /api/v1/orders/cancel-all-after; fired by main.ts's scheduler). */
  deadMan: DeadManSwitches;
  /** Cancel-on-disconnect sessions of the stream (heartbeat and stale sweep in main.ts). */
  cod: CancelOnDisconnect;
}

declare module 'fastify' {
  interface FastifyInstance {
    order: OrderContext;
    // shortcuts main.ts (sweepers) and the tests use
    orderService: OrderService;
    orderAmends: OrderAmends;
    streamHub: StreamHub;
    deadManSwitches: DeadManSwitches;
    cancelOnDisconnect: CancelOnDisconnect;
  }
}

export const FLAG_DEFAULTS = { trading: true, maintenance: false };

/** The authenticated user (only behind requireAuth). */
export const userOf = (req: FastifyRequest): string => req.principal!.id;

export function marketOr404(catalog: MarketCatalog, symbol: string): Market {
  const m = catalog.market(symbol);
  if (!m) throw notFound('UNKNOWN_MARKET', `unknown market "${symbol}"`);
  return m;
}
