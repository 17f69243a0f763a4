/** /internal/* routes: the wallet's reconciliation lookups, and this service's own WebSocket token check. */
import { requireAuth, requireInternalCaller } from '@exchange/auth-client';
import {
  OpenOrdersQuery,
  OpenOrdersResponse,
  OrderLookupRequest,
  OrderLookupResponse,
  TradesQuery,
  TradesResponse,
} from '@exchange/contracts/orders';
import { Type, type App, type Static } from '@exchange/platform';
import { userOf, type OrderContext } from '../context.ts';
import { tradeRefs } from '../market-data/repository.ts';
import { openOrderRefs, orderRefs, type OrderRefRow } from '../orders/repository.ts';

const refOf = (r: OrderRefRow) => ({
  id: r.id,
  status: r.status,
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
});

export function registerInternalRoutes(app: App, ctx: OrderContext): void {
  const { pool, catalog } = ctx;
  // the wallet's reconciliation is the only caller of these
  const fromWallet = requireInternalCaller('wallet');

  app.post(
    '/internal/orders/lookup',
    {
      onRequest: fromWallet,
      schema: { hide: true, body: OrderLookupRequest, response: { 200: OrderLookupResponse } },
    },
    async (req) => {
      const { ids } = req.body as Static<typeof OrderLookupRequest>;
      return { orders: (await orderRefs(pool, ids)).map(refOf) };
    },
  );
  app.get(
    '/internal/orders/open',
    {
      onRequest: fromWallet,
      schema: { hide: true, querystring: OpenOrdersQuery, response: { 200: OpenOrdersResponse } },
    },
    async (req) => {
      const q = req.query as Static<typeof OpenOrdersQuery>;
      const rows = await openOrderRefs(pool, q.after ?? null, q.limit);
      return { orders: rows.map(refOf), next: rows.length === q.limit ? rows[rows.length - 1]!.id : null };
    },
  );
  app.get(
    '/internal/trades',
    {
      onRequest: fromWallet,
      schema: { hide: true, querystring: TradesQuery, response: { 200: TradesResponse } },
    },
    async (req) => {
      const q = req.query as Static<typeof TradesQuery>;
      const rows = await tradeRefs(pool, {
        markets: [...catalog.markets.keys()],
        from: q.from,
        to: q.to,
        after: q.after ?? null,
        limit: q.limit,
      });
      return {
        trades: rows.map((r) => ({ tradeId: r.trade_id, market: r.market, executedAt: r.executed_at.toISOString() })),
        next: rows.length === q.limit ? rows[rows.length - 1]!.trade_id : null,
      };
    },
  );

  // The WebSocket stream (routes/public.ts) verifies access tokens through the auth plugin (JWKS, revocation) here.
  app.get(
    '/internal/stream/whoami',
    {
      onRequest: [requireInternalCaller('self'), requireAuth],
      schema: { hide: true, response: { 200: Type.Object({ userId: Type.String() }) } },
    },
    async (req) => ({ userId: userOf(req) }),
  );
}
