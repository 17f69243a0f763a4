/** Handler for queue `payouts`: a withdrawal's payout request, paid out by PayoutService in the consumer's transaction. */
import { PayoutRequestedV1 } from '@exchange/contracts/trading';
import type { ConsumeOptions, MessageHandler } from '@exchange/messaging';
import type { PayoutService } from '../payouts/payouts.ts';
import { PAYOUTS_QUEUE } from './queues.ts';

/** Handler for queue `payouts`. */
export function payoutsHandler(payouts: PayoutService): MessageHandler {
  return async (envelope, client) => {
    if (envelope.type !== PayoutRequestedV1.type) throw new Error(`payouts: unexpected message type ${envelope.type}`);
    await payouts.pay(envelope, client);
  };
}

/** How the payouts queue is consumed: `concurrency` payouts at a time. */
export function payoutsConsumer(payouts: PayoutService, concurrency: number): ConsumeOptions {
  return {
    queue: PAYOUTS_QUEUE.name,
    prefetch: concurrency * 2,
    concurrency,
    handler: payoutsHandler(payouts),
  };
}
