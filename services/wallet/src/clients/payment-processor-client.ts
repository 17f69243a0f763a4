/**
 * The wallet's read-only view of the payment-processor's rail records (`@exchange/contracts/payouts`, internal API),
 * used by reconciliation to compare the payouts the rail made with the withdrawals the ledger booked.
 */
import { PAYOUT_LOOKUP_MAX, type PayoutRef } from '@exchange/contracts/payouts';
import { internalJsonCaller } from './internal-http.ts';

export interface PaymentProcessorClient {
  /** Every payout record of the rail, by withdrawal id, page by page. */
  payouts(): AsyncIterable<PayoutRef[]>;
  /** The payout records of the named withdrawals that exist (any number of ids; batched). */
  lookup(ids: string[]): Promise<PayoutRef[]>;
}

export function createPaymentProcessorClient(opts: {
  baseUrl: string;
  internalToken: string;
  timeoutMs?: number;
}): PaymentProcessorClient {
  const call = internalJsonCaller({ service: 'payment-processor', ...opts });
  return {
    async *payouts() {
      let after: string | null = null;
      do {
        const q: string = after ? `?after=${encodeURIComponent(after)}` : '';
        const page: { payouts: PayoutRef[]; next: string | null } = await call(`/internal/payouts${q}`);
        yield page.payouts;
        after = page.next;
      } while (after);
    },
    async lookup(ids) {
      const out: PayoutRef[] = [];
      for (let i = 0; i < ids.length; i += PAYOUT_LOOKUP_MAX) {
        const page = await call<{ payouts: PayoutRef[] }>('/internal/payouts/lookup', {
          ids: ids.slice(i, i + PAYOUT_LOOKUP_MAX),
        });
        out.push(...page.payouts);
      }
      return out;
    },
  };
}
