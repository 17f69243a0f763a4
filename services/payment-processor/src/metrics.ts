import { promClient } from '@exchange/platform';

export interface PaymentMetrics {
  engineOrders: promClient.Counter<'market' | 'result'>;
  trades: promClient.Counter<'market'>;
  commandDuration: promClient.Histogram<'market'>;
  engineBatch: promClient.Histogram<'market'>;
  engineReloads: promClient.Counter<'market' | 'reason'>;
  payouts: promClient.Counter<'result'>;
  engineHalted: promClient.Gauge<'market'>;
}

/** The payment-processor's own metrics, on `registry` (the app's, so /metrics serves them). */
export function createPaymentMetrics(registry: promClient.Registry): PaymentMetrics {
  const registers = [registry];
  return {
    engineOrders: new promClient.Counter({
      name: 'engine_orders_total',
      help: 'Engine commands applied, by market and result (order status after a place; cancelled/unknown for a cancel; duplicate)',
      labelNames: ['market', 'result'],
      registers,
    }),
    trades: new promClient.Counter({
      name: 'trades_total',
      help: 'Fills executed by the engine, by market',
      labelNames: ['market'],
      registers,
    }),
    commandDuration: new promClient.Histogram({
      name: 'engine_command_duration_seconds',
      help: 'Time to apply one engine command (lock, match, journal, outbox), excluding the commit',
      labelNames: ['market'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    engineBatch: new promClient.Histogram({
      name: 'engine_batch_commands',
      help: 'Engine commands applied in one transaction (group commit; 1 when the queue had nothing else waiting)',
      labelNames: ['market'],
      buckets: [1, 2, 4, 8, 16, 32, 64, 100],
      registers,
    }),
    engineReloads: new promClient.Counter({
      name: 'engine_reloads_total',
      help: 'Engine state reloads from snapshot + journal (start, takeover by this replica, recovery after a failed command)',
      labelNames: ['market', 'reason'],
      registers,
    }),
    engineHalted: new promClient.Gauge({
      name: 'engine_halted',
      help: '1 when a market engine is halted in this replica (its journal does not replay to the recorded events)',
      labelNames: ['market'],
      registers,
    }),
    payouts: new promClient.Counter({
      name: 'payouts_total',
      help: 'Payouts sent to the rail, by result (completed, failed)',
      labelNames: ['result'],
      registers,
    }),
  };
}
