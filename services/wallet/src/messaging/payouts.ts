import { PayoutCompletedV1, PayoutFailedV1 } from '@exchange/contracts/trading';
import type { Envelope } from '@exchange/contracts';
import type { PoolClient } from '@exchange/db';
import type { Assets } from '../assets.ts';
import {
  completePayout,
  defaultAssets,
  failPayout,
  noLog,
  SettlementError,
  type HandlerLogger,
} from '../settlement/service.ts';

/** Handler for queue `wallet.payouts`. */
export function payoutsHandler(log: HandlerLogger = noLog, assets: Assets = defaultAssets()) {
  return async (message: Envelope, client: PoolClient): Promise<void> => {
    if (message.type === PayoutCompletedV1.type) {
      await completePayout(client, PayoutCompletedV1.validate(message), log, assets);
      return;
    }
    if (message.type === PayoutFailedV1.type) {
      await failPayout(client, PayoutFailedV1.validate(message), log, assets);
      return;
    }
    throw new SettlementError(`unexpected message type ${message.type} on wallet.payouts`);
  };
}
