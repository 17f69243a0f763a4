/**
 * The wallet's read-only view of the order service's internal API (`@exchange/contracts/orders`), used by
 * reconciliation to compare order holds with open orders, and the trade tape with the settlements.
 */
import { ORDER_LOOKUP_MAX, type OrderRef, type TradeRef } from '@exchange/contracts/orders';
import { internalJsonCaller } from './internal-http.ts';

export interface OrderClient {
  /** The states of the named orders that exist (any number of ids; batched). */
  lookup(ids: string[]): Promise<OrderRef[]>;
  /** Every open order (new, partially_filled), page by page. */
  open(): AsyncIterable<OrderRef>;
  /** The trades on the order service's tape executed in [from, to), page by page. */
  trades(from: Date, to: Date): AsyncIterable<TradeRef>;
}

export function createOrderClient(opts: { baseUrl: string; internalToken: string; timeoutMs?: number }): OrderClient {
  const call = internalJsonCaller({ service: 'order service', ...opts });
  return {
    async lookup(ids) {
      const out: OrderRef[] = [];
      for (let i = 0; i < ids.length; i += ORDER_LOOKUP_MAX) {
        const page = await call<{ orders: OrderRef[] }>('/internal/orders/lookup', {
          ids: ids.slice(i, i + ORDER_LOOKUP_MAX),
        });
        out.push(...page.orders);
      }
      return out;
    },
    async *open() {
      let after: string | null = null;
      do {
        const page: { orders: OrderRef[]; next: string | null } = await call(
          `/internal/orders/open${after ? `?after=${after}` : ''}`,
        );
        yield* page.orders;
        after = page.next;
      } while (after);
    },
    async *trades(from, to) {
      let after: string | null = null;
      do {
        const q = new URLSearchParams({ from: from.toISOString(), to: to.toISOString() });
        if (after) q.set('after', after);
        const page: { trades: TradeRef[]; next: string | null } = await call(`/internal/trades?${q.toString()}`);
        yield* page.trades;
        after = page.next;
      } while (after);
    },
  };
}
