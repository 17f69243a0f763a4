/**
 * Operator views of money leaving the exchange: payouts by state (the withdrawals the payment processor has yet to
 * pay, or has paid, failed or never got) and withdrawal requests refused by policy (from the wallet's audit trail).
 * Staff only (admin and support); reads, so no fresh 2FA check.
 */
import { requireRole } from '@exchange/auth-client';
import { errorResponses, Type, type App, type Static } from '@exchange/platform';
import { blockedWithdrawalRequests } from '../audit/repository.ts';
import type { WalletContext } from '../context.ts';
import { listPayouts, payoutTotals } from '../funding/repository.ts';

const PayoutState = Type.Union(
  [Type.Literal('pending'), Type.Literal('completed'), Type.Literal('failed'), Type.Literal('cancelled')],
  {
    description:
      'pending: not paid out yet (withdrawal `pending` in its cancellation window, or `processing`: sent to the ' +
      'payment processor, no answer yet), oldest first; the others newest first',
  },
);

const PayoutsQuery = Type.Object(
  {
    status: Type.Optional(PayoutState),
    asset: Type.Optional(Type.String({ pattern: '^[A-Z0-9]{2,10}$' })),
    limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
  },
  { additionalProperties: false },
);

const Payout = Type.Object({
  withdrawalId: Type.String({ format: 'uuid' }),
  userId: Type.String({ format: 'uuid' }),
  asset: Type.String(),
  amount: Type.String({ description: 'Decimal string at the asset precision' }),
  fee: Type.String(),
  address: Type.String(),
  status: Type.String({ description: "The withdrawal's own status (pending, processing, completed, failed, …)" }),
  dueAt: Type.String({ description: 'When the withdrawal is (or was) sent to the payment processor' }),
  railTxId: Type.Union([Type.String(), Type.Null()]),
  failureReason: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});

const PayoutTotal = Type.Object({
  asset: Type.String(),
  count: Type.Integer(),
  amount: Type.String({ description: 'Sum of the amounts (exact, asset precision)' }),
});

const PayoutsResponse = Type.Object({
  status: PayoutState,
  payouts: Type.Array(Payout),
  totals: Type.Array(PayoutTotal, { description: 'Per asset, over every payout in this state (not only this page)' }),
});

const BlockedQuery = Type.Object(
  { limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }) },
  { additionalProperties: false },
);

const NullableString = Type.Union([Type.String(), Type.Null()]);
const BlockedWithdrawal = Type.Object({
  at: Type.String(),
  userId: Type.Union([Type.String(), Type.Null()], { description: 'null when the caller was not a user' }),
  reason: Type.String({
    description: 'kill_switch, address, limits, velocity, insufficient_funds, scope, mfa (withdrawals_blocked_total)',
  }),
  code: NullableString,
  asset: NullableString,
  amount: NullableString,
  address: NullableString,
  requestId: NullableString,
});

const STATES: Record<Static<typeof PayoutState>, string[]> = {
  pending: ['pending', 'processing'],
  completed: ['completed'],
  failed: ['failed'],
  cancelled: ['cancelled'],
};

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

export function registerPayoutRoutes(app: App, ctx: WalletContext): void {
  const { pool, assets } = ctx;
  const tags = ['admin'];
  const security = [{ bearer: [] }];
  const staff = requireRole('admin', 'support');

  app.get(
    '/api/v1/admin/payouts',
    {
      onRequest: staff,
      schema: {
        tags,
        security,
        summary: 'Payouts by state (default pending: withdrawals not paid out yet), with per-asset totals',
        querystring: PayoutsQuery,
        response: { 200: PayoutsResponse, ...errorResponses(400, 401, 403) },
      },
    },
    async (req) => {
      const q = req.query as Static<typeof PayoutsQuery>;
      const state = q.status ?? 'pending';
      const statuses = STATES[state];
      const asset = q.asset ?? null;
      const order = state === 'pending' ? 'ASC' : 'DESC';
      const rows = await listPayouts(pool, statuses, asset, order, q.limit);
      const totals = await payoutTotals(pool, statuses, asset);
      return {
        status: state,
        payouts: rows.map((w) => ({
          withdrawalId: w.id,
          userId: w.user_id,
          asset: w.asset,
          amount: assets.format(w.asset, w.amount),
          fee: assets.format(w.asset, w.fee),
          address: w.address,
          status: w.status,
          dueAt: w.dispatch_at.toISOString(),
          railTxId: w.rail_tx_id,
          failureReason: w.failure_reason,
          createdAt: w.created_at.toISOString(),
          updatedAt: w.updated_at.toISOString(),
        })),
        totals: totals.map((t) => ({ asset: t.asset, count: t.count, amount: assets.format(t.asset, t.amount) })),
      };
    },
  );

  app.get(
    '/api/v1/admin/withdrawals/blocked',
    {
      onRequest: staff,
      schema: {
        tags,
        security,
        summary: 'Withdrawal requests refused by policy (kill switch, limits, address, 2FA, scope), newest first',
        querystring: BlockedQuery,
        response: { 200: Type.Object({ blocked: Type.Array(BlockedWithdrawal) }), ...errorResponses(400, 401, 403) },
      },
    },
    async (req) => {
      const { limit } = req.query as Static<typeof BlockedQuery>;
      const rows = await blockedWithdrawalRequests(pool, limit);
      return {
        blocked: rows.map((r) => {
          // the refused request body as the caller sent it: show only its string fields
          const body = (r.details.body && typeof r.details.body === 'object' ? r.details.body : {}) as Record<
            string,
            unknown
          >;
          return {
            at: r.at.toISOString(),
            userId: r.actor.startsWith('user:') ? r.actor.slice('user:'.length) : null,
            reason: str(r.details.reason) ?? 'unknown',
            code: str(r.details.code),
            asset: str(body.asset),
            amount: str(body.amount),
            address: str(body.address),
            requestId: r.request_id,
          };
        }),
      };
    },
  );
}
