/**
 * The wallet's contracts beyond the trading-flow messages (see trading.ts): its internal hold API, used
 * synchronously by the order service, and the queues it consumes (so a producer that declares them uses exactly
 * the same arguments — RabbitMQ refuses a redeclaration with different ones).
 *
 *   POST /internal/holds                 HoldRequest → 201 Hold (created) | 200 Hold (identical replay)
 *                                        | 409 HOLD_CONFLICT | 400 INSUFFICIENT_FUNDS / UNKNOWN_ASSET / AMOUNT_ZERO …
 *   POST /internal/holds/batch           HoldBatchRequest → 200 HoldBatchResult: the holds of several orders in one call,
 *                                        each answered as the single call would (its status, its Hold or error)
 *   GET  /internal/holds/:id             → 200 Hold | 404 HOLD_NOT_FOUND
 *   POST /internal/holds/:id/release     ReleaseRequest → 200 ReleaseResult (idempotent: released "0" the 2nd time)
 *   PUT  /internal/users/:userId/kyc-tier  { tier } → 200 { userId, kycTier }
 * All with header `x-internal-token: <INTERNAL_API_TOKEN>`. Amounts are minor units as integer strings.
 */
import { Type, type Static } from '@sinclair/typebox';
import { DecimalString, defineMessage, IsoDateTime, UnsignedIntegerString, Uuid } from './envelope.ts';

export const HoldRequest = Type.Object(
  {
    holdId: Uuid({ description: 'Idempotency key of the hold: the order id' }),
    userId: Uuid(),
    asset: Type.String({ pattern: '^[A-Z0-9]{2,10}$' }),
    amount: Type.String({ maxLength: 80, description: 'Minor units of `asset`, integer string, > 0' }),
    reason: Type.String({ minLength: 1, maxLength: 60 }),
    refType: Type.String({ minLength: 1, maxLength: 40, description: 'e.g. order' }),
    refId: Type.String({ minLength: 1, maxLength: 128 }),
  },
  { additionalProperties: false },
);
export type HoldRequest = Static<typeof HoldRequest>;

export const HoldStatus = Type.Union([Type.Literal('active'), Type.Literal('captured'), Type.Literal('released')]);

export const Hold = Type.Object({
  holdId: Uuid(),
  userId: Uuid(),
  asset: Type.String(),
  amount: UnsignedIntegerString(),
  captured: UnsignedIntegerString(),
  released: UnsignedIntegerString(),
  remaining: UnsignedIntegerString(),
  /** Captured after the hold had ended (a settlement overtaken by its release), out of available funds. */
  lateCaptured: UnsignedIntegerString(),
  status: HoldStatus,
  reason: Type.String(),
  refType: Type.String(),
  refId: Type.String(),
  releaseReason: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(),
  closedAt: Type.Union([Type.String(), Type.Null()]),
});
export type Hold = Static<typeof Hold>;

/** At most this many holds per batch call. */
export const MAX_HOLD_BATCH = 100;

export const HoldBatchRequest = Type.Object(
  { holds: Type.Array(HoldRequest, { minItems: 1, maxItems: MAX_HOLD_BATCH }) },
  { additionalProperties: false },
);
export type HoldBatchRequest = Static<typeof HoldBatchRequest>;

/** One hold's answer in a batch: the status and body `POST /internal/holds` would have answered it with. */
export const HoldBatchItem = Type.Object({
  status: Type.Integer({ description: '201 created, 200 identical replay, 4xx refused, 5xx not decided' }),
  hold: Type.Optional(Hold),
  error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
});
export type HoldBatchItem = Static<typeof HoldBatchItem>;

export const HoldBatchResult = Type.Object({
  /** One per requested hold, in request order. */
  results: Type.Array(HoldBatchItem),
});
export type HoldBatchResult = Static<typeof HoldBatchResult>;

export const ReleaseRequest = Type.Object(
  { reason: Type.Optional(Type.String({ minLength: 1, maxLength: 60 })) },
  { additionalProperties: false },
);

export const ReleaseResult = Type.Object({
  hold: Hold,
  /** Minor units given back by this call ("0" when the hold had already ended). */
  released: UnsignedIntegerString(),
});

/** Queues the wallet consumes (declared by the wallet at start-up with these arguments). */
export const WALLET_QUEUES = {
  settlement: {
    name: 'wallet.settlement',
    bindings: [{ exchange: 'exchange.commands', routingKey: 'wallet.settlement' }],
    singleActiveConsumer: true,
    deliveryLimit: 10,
    retry: { attempts: 5, backoffMs: [1_000, 5_000, 30_000, 120_000, 600_000] },
  },
  payouts: {
    name: 'wallet.payouts',
    bindings: [{ exchange: 'exchange.commands', routingKey: 'wallet.payouts' }],
    singleActiveConsumer: true,
    deliveryLimit: 10,
    retry: { attempts: 5, backoffMs: [1_000, 5_000, 30_000, 120_000, 600_000] },
  },
} as const;

/** Routing key of wallet.trade-settled on the events exchange: `wallet.trade-settled.<MARKET>`. */
export const tradeSettledRoutingKey = (market: string) => `wallet.trade-settled.${market}`;

// ---------------------------------------------------------------------------------------------------------------
// Withdrawal events (wallet outbox → events exchange, routing key = type), mailed to the user by the notification
// service. Amounts are decimal strings of the asset. The wallet does not know emails: the consumer looks them up.
// ---------------------------------------------------------------------------------------------------------------

const WithdrawalFacts = {
  withdrawalId: Uuid(),
  userId: Uuid(),
  asset: Type.String({ pattern: '^[A-Z0-9]{2,10}$' }),
  amount: DecimalString({ description: 'decimal string of the asset, e.g. "0.5"' }),
  fee: DecimalString(),
  address: Type.String({ maxLength: 128 }),
};

export const WithdrawalRequestedV1 = defineMessage({
  type: 'withdrawal.requested',
  version: 1,
  description: 'A withdrawal was requested (amount + fee held)',
  payload: Type.Object({
    ...WithdrawalFacts,
    awaitingConfirmation: Type.Boolean({ description: 'true when it waits for the email link' }),
  }),
});

export const WithdrawalConfirmationRequestedV1 = defineMessage({
  type: 'withdrawal.confirmation_requested',
  version: 1,
  description:
    'A withdrawal above the email-confirmation threshold waits for the link; unconfirmed at expiresAt it is cancelled',
  payload: Type.Object({
    ...WithdrawalFacts,
    confirmationToken: Type.String({ minLength: 20, maxLength: 300 }),
    expiresAt: IsoDateTime(),
  }),
});

export const WithdrawalSentV1 = defineMessage({
  type: 'withdrawal.sent',
  version: 1,
  description: 'The payout completed on the rail',
  payload: Type.Object({ ...WithdrawalFacts, railTxId: Type.String({ maxLength: 128 }) }),
});

export const WithdrawalFailedV1 = defineMessage({
  type: 'withdrawal.failed',
  version: 1,
  description: 'The payout failed or an unconfirmed withdrawal expired; the hold was released',
  payload: Type.Object({ ...WithdrawalFacts, reason: Type.String({ maxLength: 200 }) }),
});

export const WITHDRAWAL_EVENTS = [
  WithdrawalRequestedV1,
  WithdrawalConfirmationRequestedV1,
  WithdrawalSentV1,
  WithdrawalFailedV1,
] as const;
