/**
 * Service-to-service routes (never routed by the gateway; `x-internal-token` of a caller listed in INTERNAL_CALLERS):
 * the rail's payout records for the wallet's reconciliation (@exchange/contracts/payouts). The wallet's database role
 * cannot read `payment.payouts`, so it asks here; both routes are bounded (a page, a batch of ids).
 */
import { requireInternalCaller } from '@exchange/auth-client';
import { PayoutLookupRequest, PayoutLookupResponse, PayoutsQuery, PayoutsResponse } from '@exchange/contracts/payouts';
import type { App } from '@exchange/platform';
import type { Static } from '@sinclair/typebox';
import type { PaymentContext } from '../context.ts';
import { railRecordsByIds, railRecordsPage } from '../payouts/repository.ts';

export function registerInternalRoutes(app: App, ctx: PaymentContext): void {
  // the wallet's reconciliation is the only caller
  const fromWallet = requireInternalCaller('wallet') as unknown as never;
  app.get(
    '/internal/payouts',
    { onRequest: fromWallet, schema: { hide: true, querystring: PayoutsQuery, response: { 200: PayoutsResponse } } },
    async (req) => {
      const q = req.query as Static<typeof PayoutsQuery>;
      const payouts = await railRecordsPage(ctx.pool, q.after, q.limit);
      return { payouts, next: payouts.length === q.limit ? payouts[payouts.length - 1]!.withdrawalId : null };
    },
  );
  app.post(
    '/internal/payouts/lookup',
    {
      onRequest: fromWallet,
      schema: { hide: true, body: PayoutLookupRequest, response: { 200: PayoutLookupResponse } },
    },
    async (req) => ({
      payouts: await railRecordsByIds(ctx.pool, (req.body as Static<typeof PayoutLookupRequest>).ids),
    }),
  );
}
