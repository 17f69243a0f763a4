import { WALLET_QUEUES } from '@exchange/contracts/wallet';
import type { Messaging, QueueSpec } from '@exchange/messaging';
import type { Assets } from '../assets.ts';
import type { HandlerLogger } from '../settlement/service.ts';
import { payoutsHandler } from './payouts.ts';
import { settlementHandler } from './settlement.ts';

const spec = (q: (typeof WALLET_QUEUES)[keyof typeof WALLET_QUEUES]): QueueSpec => ({
  name: q.name,
  bindings: q.bindings.map((b) => ({ ...b })),
  singleActiveConsumer: q.singleActiveConsumer,
  deliveryLimit: q.deliveryLimit,
  retry: { attempts: q.retry.attempts, backoffMs: [...q.retry.backoffMs] },
});

export const SETTLEMENT_QUEUE: QueueSpec = spec(WALLET_QUEUES.settlement);
export const PAYOUTS_QUEUE: QueueSpec = spec(WALLET_QUEUES.payouts);

/**
 * Declare the wallet's queues and start its consumers (one handler at a time per queue: settlement order matters).
 * `overrides` lets tests shorten the retry backoff.
 */
export async function startConsumers(
  messaging: Messaging,
  assets: Assets,
  log: HandlerLogger,
  overrides: Partial<Pick<QueueSpec, 'retry' | 'deliveryLimit'>> = {},
  observeSettlementLag?: (seconds: number) => void,
  batch = 1,
) {
  const settlementQueue = { ...SETTLEMENT_QUEUE, ...overrides };
  const payouts = { ...PAYOUTS_QUEUE, ...overrides };
  const settlement = settlementHandler(assets, log, observeSettlementLag);
  await messaging.declareQueue(settlementQueue);
  await messaging.declareQueue(payouts);
  const consumers = [
    await messaging.consume({
      queue: settlementQueue.name,
      handler: settlement,
      batchHandler: settlement.batch,
      concurrency: 1,
      // group commit of settlements; room for a full batch waiting behind the one in hand
      batch,
      prefetch: Math.max(10, 2 * batch),
    }),
    await messaging.consume({ queue: payouts.name, handler: payoutsHandler(log, assets), concurrency: 1 }),
  ];
  return consumers;
}
