/** Operations routes beyond /health, /ready and /metrics (which createApp serves). */
import type { App } from '@exchange/platform';
import type { OrderContext } from '../context.ts';
import { TradingHealth, tradingHealth } from '../trading-health.ts';

export function registerOpsRoutes(app: App, ctx: OrderContext): void {
  // the runbook's "Trading system operational" check
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
      const body = await tradingHealth(ctx.management, ctx.catalog, ctx.orders);
      return reply.status(body.status === 'healthy' ? 200 : 503).send(body);
    },
  );
}
