/**
 * Payouts (queue `payouts`, handler in messaging/payouts.ts): pay a withdrawal out on the (simulated) rail, record it
 * in `payment.payouts` (one row per withdrawal) and answer the wallet with `payout.completed` / `payout.failed` via the outbox — all in
 * the consumer's transaction. A redelivery (same message id: inbox; another message for the same withdrawal:
 * the payouts row) never pays twice and never answers differently.
 */
import type { Envelope } from '@exchange/contracts';
import type { AssetConfig, MarketCatalog } from '@exchange/contracts/markets';
import { PayoutCompletedV1, PayoutFailedV1, ROUTES, type PayoutRequestedV1 } from '@exchange/contracts/trading';
import type { PayloadOf } from '@exchange/contracts';
import type { PoolClient } from '@exchange/db';
import type { Consumer, Logger, Messaging } from '@exchange/messaging';
import type { PaymentMetrics } from '../metrics.ts';
import { PRODUCER } from '../engine/messages.ts';
import { payoutsConsumer } from '../messaging/payouts.ts';
import { PAYOUTS_QUEUE } from '../messaging/queues.ts';
import { uuidv5 } from '../uuid.ts';
import { sendPayout, type RailOptions, type RailResult } from './rail.ts';
import { insertPayout, lockWithdrawal, payoutExists } from './repository.ts';

export type PayoutRequestedPayload = PayloadOf<typeof PayoutRequestedV1>;

export interface PayoutServiceOptions {
  messaging: Messaging;
  catalog: MarketCatalog;
  rail: RailOptions;
  concurrency: number;
  metrics?: PaymentMetrics;
  logger: Logger;
}

export class PayoutService {
  private readonly opts: PayoutServiceOptions;
  private consumer: Consumer | undefined;

  constructor(opts: PayoutServiceOptions) {
    this.opts = opts;
  }

  async start(): Promise<void> {
    await this.opts.messaging.declareQueue(PAYOUTS_QUEUE);
    this.consumer = await this.opts.messaging.consume(payoutsConsumer(this, this.opts.concurrency));
  }

  async stop(): Promise<void> {
    await this.consumer?.stop();
    this.consumer = undefined;
  }

  /** Pay out a PayoutRequestedV1 (its type checked by the handler) in the consumer's transaction `client`. */
  async pay(envelope: Envelope, client: PoolClient): Promise<void> {
    const req = envelope.payload as PayoutRequestedPayload;
    // Serialise concurrent deliveries of one withdrawal (two message ids for it) on a transaction-scoped lock.
    await lockWithdrawal(client, req.withdrawalId);
    if (await payoutExists(client, req.withdrawalId)) {
      this.opts.logger.info({ withdrawalId: req.withdrawalId }, 'payout: already sent, duplicate request ignored');
      return;
    }
    const asset = this.opts.catalog.asset(req.asset);
    const result: RailResult = invalidRequest(req, asset) ?? (await sendPayout(req, this.opts.rail));
    const now = new Date();
    await insertPayout(client, {
      withdrawalId: req.withdrawalId,
      userId: req.userId,
      asset: req.asset,
      amount: req.amount,
      address: req.address,
      status: result.status,
      railTxId: result.status === 'completed' ? result.railTxId : null,
      failureReason: result.status === 'failed' ? result.reason : null,
      requestMessageId: envelope.id,
      requestedAt: req.requestedAt,
      processedAt: now,
    });
    const meta = {
      producer: PRODUCER,
      id: uuidv5(`payout:${req.withdrawalId}`),
      occurredAt: now,
      causationId: envelope.id,
      ...(envelope.correlationId ? { correlationId: envelope.correlationId } : {}),
    };
    const message =
      result.status === 'completed'
        ? PayoutCompletedV1.create(
            { withdrawalId: req.withdrawalId, railTxId: result.railTxId, completedAt: now.toISOString() },
            meta,
          )
        : PayoutFailedV1.create(
            { withdrawalId: req.withdrawalId, reason: result.reason.slice(0, 200), failedAt: now.toISOString() },
            meta,
          );
    await this.opts.messaging.enqueue(client, {
      exchange: ROUTES.commandsExchange,
      routingKey: ROUTES.walletPayoutsQueue,
      message,
    });
    this.opts.metrics?.payouts.inc({ result: result.status });
  }
}

/** Requests the rail would bounce at once (unknown asset, malformed address). */
function invalidRequest(req: PayoutRequestedPayload, asset: AssetConfig | undefined): RailResult | undefined {
  if (!asset) return { status: 'failed', reason: `RAIL_REJECTED: unsupported asset ${req.asset}` };
  if (!new RegExp(asset.addressPattern).test(req.address)) {
    return { status: 'failed', reason: `RAIL_REJECTED: invalid ${asset.symbol} address` };
  }
  return undefined;
}
