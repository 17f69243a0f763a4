/**
 * The payment-processor's queues: one command queue per market (`orders.<MARKET>`, handled by orders.ts) and the
 * payout requests (`payouts`, handled by payouts.ts).
 */
import { ROUTES } from '@exchange/contracts/trading';
import type { QueueSpec, RetryPolicy } from '@exchange/messaging';

/**
 * The retry policy the market queues are declared with (it names their retry queues; kept as it is so existing
 * queues still match). The engine retries in place: transient failures (database unreachable, timeouts, lock and
 * serialization failures, disk full, read-only after a failover) are waited out for as long as they last; a command
 * whose content the engine cannot apply is rejected as an engine outcome; any other failure is retried with this
 * backoff, `haltAfterFailures` times, and then the market is HALTED (never skipped): see EngineHost.
 */
export const ORDERS_RETRY: RetryPolicy = { attempts: 5, backoffMs: [200, 1_000, 5_000, 15_000, 60_000] };

export const PAYOUTS_RETRY: RetryPolicy = { attempts: 5, backoffMs: [1_000, 5_000, 30_000, 120_000, 600_000] };

/** A market's command queue: single active consumer, so one replica at a time applies its commands. */
export function ordersQueue(market: string): QueueSpec {
  const queue = ROUTES.ordersQueue(market);
  return {
    name: queue,
    bindings: [{ exchange: ROUTES.commandsExchange, routingKey: queue }],
    singleActiveConsumer: true,
    retry: ORDERS_RETRY,
  };
}

export const PAYOUTS_QUEUE: QueueSpec = {
  name: ROUTES.payoutsQueue,
  bindings: [{ exchange: ROUTES.commandsExchange, routingKey: ROUTES.payoutsQueue }],
  retry: PAYOUTS_RETRY,
};
