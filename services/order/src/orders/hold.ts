/**
 * The wallet hold that order entry and amends both make before anything reaches the engine. A wallet that gives no
 * answer (network, timeout, 5xx) leaves the truth unknown: the row stays `pending` for a retry or the sweeper, and
 * the client gets 503 WALLET_UNAVAILABLE with what to retry with. Any other answer is returned for the caller to
 * judge (held, insufficient funds, conflict, rejected).
 */
import type { Logger } from '@exchange/messaging';
import { serviceUnavailable } from '@exchange/platform';
import {
  WalletUnavailableError,
  type HoldRequest,
  type HoldResult,
  type WalletClient,
} from '../clients/wallet-client.ts';

export interface HoldUnavailable {
  /** Fields of the warning logged when the wallet gives no answer (e.g. the order or amend id). */
  logFields: Record<string, unknown>;
  logMessage: string;
  /** The 503's message: what the client retries with. */
  clientMessage: string;
}

export async function holdFunds(
  wallet: WalletClient,
  log: Logger,
  req: HoldRequest,
  unavailable: HoldUnavailable,
): Promise<HoldResult> {
  try {
    return await wallet.hold(req);
  } catch (err) {
    if (err instanceof WalletUnavailableError) {
      log.warn({ err, ...unavailable.logFields }, unavailable.logMessage);
      throw serviceUnavailable('WALLET_UNAVAILABLE', unavailable.clientMessage);
    }
    throw err;
  }
}
