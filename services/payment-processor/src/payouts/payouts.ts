/**
 * `payouts` queue consumer: pay a withdrawal out on the (simulated) rail, record it in `payment.payouts`
 * (one row per withdrawal) and answer the wallet with `payout.completed` / `payout.failed` via the outbox — all in
 * the consumer's transaction. A redelivery (same message id: inbox; another message for the same withdrawal:
 * the payouts row) never pays twice and never answers differently.
 */
import type { Envelope } from '@exchange/contracts';
import type { AssetConfig, MarketCatalog } from '@exchange/contracts/markets';
import { PayoutCompletedV1, PayoutFailedV1, PayoutRequestedV1, ROUTES } from '@exchange/contracts/trading';
import type { PayloadOf } from '@exchange/contracts';
import type { PoolClient } from '@exchange/db';
import type { Consumer, Logger, Messaging, RetryPolicy } from '@exchange/messaging';
import type { PaymentMetrics } from '../metrics.ts';
import { PRODUCER } from '../engine/messages.ts';
import { uuidv5 } from '../uuid.ts';
import { sendPayout, type RailOptions, type RailResult } from './rail.ts';

export type PayoutRequestedPayload = PayloadOf<typeof PayoutRequestedV1>;

export const PAYOUTS_RETRY: RetryPolicy = { attempts: 5, backoffMs: [1_000, 5_000, 30_000, 120_000, 600_000] };

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
    await this.opts.messaging.declareQueue({
      name: ROUTES.payoutsQueue,
      bindings: [{ exchange: ROUTES.commandsExchange, routingKey: ROUTES.payoutsQueue }],
      retry: PAYOUTS_RETRY,
    });
    this.consumer = await this.opts.messaging.consume({
      queue: ROUTES.payoutsQueue,
      prefetch: this.opts.concurrency * 2,
      concurrency: this.opts.concurrency,
      handler: (message, client) => this.handle(message, client),
    });
  }

  async stop(): Promise<void> {
    await this.consumer?.stop();
    this.consumer = undefined;
  }

  async handle(envelope: Envelope, client: PoolClient): Promise<void> {
    if (envelope.type !== PayoutRequestedV1.type) throw new Error(`payouts: unexpected message type ${envelope.type}`);
    const req = envelope.payload as PayoutRequestedPayload;
    // Serialise concurrent deliveries of one withdrawal (two message ids for it) on a transaction-scoped lock.
    await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`payout:${req.withdrawalId}`]);
    const existing = await client.query('SELECT 1 FROM payment.payouts WHERE withdrawal_id = $1', [req.withdrawalId]);
    if (existing.rowCount) {
      this.opts.logger.info({ withdrawalId: req.withdrawalId }, 'payout: already sent, duplicate request ignored');
      return;
    }
    const asset = this.opts.catalog.asset(req.asset);
    const result: RailResult = invalidRequest(req, asset) ?? (await sendPayout(req, this.opts.rail));
    const now = new Date();
    await client.query(
      `INSERT INTO payment.payouts
         (withdrawal_id, user_id, asset, amount, address, status, rail_tx_id, failure_reason, request_message_id,
          requested_at, processed_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [
        req.withdrawalId,
        req.userId,
        req.asset,
        req.amount,
        req.address,
        result.status,
        result.status === 'completed' ? result.railTxId : null,
        result.status === 'failed' ? result.reason : null,
        envelope.id,
        req.requestedAt,
        now,
      ],
    );
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
