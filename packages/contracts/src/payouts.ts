/**
 * The payment-processor's internal API for the wallet's reconciliation (x-internal-token of the caller `wallet`,
 * never routed by the gateway): the rail's own payout records (`payment.payouts`), which only the payment-processor
 * may read (per-service database roles).
 *   GET  /internal/payouts?after=&limit=      → every payout record, by withdrawal id, paginated
 *   POST /internal/payouts/lookup  { ids }    → the payout records of the named withdrawals that exist
 * The wallet compares them with its booked withdrawals: a payout that left the rail but was never booked, and one
 * booked as paid out that the rail does not know (or failed), are mismatches.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Uuid } from './envelope.ts';

export const PAYOUTS_PAGE_MAX = 5000;
export const PAYOUT_LOOKUP_MAX = 1000;

export const PayoutRef = Type.Object({
  withdrawalId: Type.String(),
  status: Type.Union([Type.Literal('completed'), Type.Literal('failed')]),
  asset: Type.String(),
  /** Minor units sent to the address (fee excluded), as on payout.requested. */
  amount: Type.String({ pattern: '^[0-9]+$' }),
  railTxId: Type.Union([Type.String(), Type.Null()]),
  processedAt: Type.String(),
});
export type PayoutRef = Static<typeof PayoutRef>;

export const PayoutsQuery = Type.Object({
  after: Type.Optional(Type.String({ maxLength: 100, description: 'next of the previous page (withdrawal id)' })),
  limit: Type.Integer({ minimum: 1, maximum: PAYOUTS_PAGE_MAX, default: PAYOUTS_PAGE_MAX }),
});
export const PayoutsResponse = Type.Object({
  payouts: Type.Array(PayoutRef),
  next: Type.Union([Type.String(), Type.Null()]),
});

export const PayoutLookupRequest = Type.Object(
  { ids: Type.Array(Uuid(), { maxItems: PAYOUT_LOOKUP_MAX }) },
  { additionalProperties: false },
);
export const PayoutLookupResponse = Type.Object({ payouts: Type.Array(PayoutRef) });
