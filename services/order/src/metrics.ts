import type pg from 'pg';
import { promClient } from '@exchange/platform';
import { countPending } from './orders/repository.ts';

/** Order-service metrics (rejections by code are in http_errors_total). */
export function orderMetrics(registry: promClient.Registry, pool: pg.Pool) {
  return {
    placed: new promClient.Counter({
      name: 'orders_placed_total',
      help: 'Orders accepted (funds held, PlaceOrderV1 in the outbox)',
      labelNames: ['market', 'side', 'type'],
      registers: [registry],
    }),
    cancelRequests: new promClient.Counter({
      name: 'orders_cancel_requests_total',
      help: 'Cancels sent to the engine',
      labelNames: ['reason'],
      registers: [registry],
    }),
    sessionCancels: new promClient.Counter({
      name: 'orders_session_cancel_triggers_total',
      help:
        "Dead-man's switches fired and cancel-on-disconnect sessions ended (trigger: dead_man_switch, disconnect, " +
        'disconnect_stale: ended by the sweep after its replica stopped)',
      labelNames: ['trigger'],
      registers: [registry],
    }),
    sweeper: new promClient.Counter({
      name: 'orders_recovery_resolved_total',
      help: 'Pending orders resolved by the recovery sweeper, by outcome (finished, released, removed)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    entryBatch: new promClient.Histogram({
      name: 'orders_entry_batch_size',
      help:
        "Order entries sharing one statement, by stage (entry: a plain limit order's reads and pending row in one; " +
        'context: the reads before the insert of other orders; insert: their pending rows; finalize: pending to new ' +
        'with the engine commands). Mostly 1 means little concurrency, not a fault',
      labelNames: ['stage'],
      buckets: [1, 2, 4, 8, 16, 32, 64, 100],
      registers: [registry],
    }),
    pending: new promClient.Gauge({
      name: 'orders_pending',
      help: 'Orders in `pending` (hold not yet confirmed); a steady non-zero value means the wallet is failing',
      registers: [registry],
      async collect() {
        // A database outage must not break the whole /metrics scrape: keep the last value.
        try {
          this.set(await countPending(pool));
        } catch {
          // stale value until the database answers again
        }
      },
    }),
  };
}
export type OrderMetrics = ReturnType<typeof orderMetrics>;
