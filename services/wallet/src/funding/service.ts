/**
 * Deposits (sandbox rail) and withdrawals: their records, the durable scheduler steps that move them on, and the
 * withdrawal policy (address, min/max, fee, rolling 24 h velocity by KYC tier).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { PayoutRequestedV1 } from '@exchange/contracts/trading';
import {
  WithdrawalConfirmationRequestedV1,
  WithdrawalFailedV1,
  WithdrawalRequestedV1,
  WithdrawalSentV1,
} from '@exchange/contracts/wallet';
import type { MessageContract } from '@exchange/contracts';
import type { Static, TSchema } from '@sinclair/typebox';
import { ROUTES } from '@exchange/contracts/trading';
import { withTransaction, type Pool, type PoolClient } from '@exchange/db';
import { COMMANDS_EXCHANGE, enqueue, EVENTS_EXCHANGE } from '@exchange/messaging';
import { AppError, badRequest, conflict, notFound } from '@exchange/platform';
import type { Assets } from '../assets.ts';
import { WALLET_SCHEMA } from '../db/schema.ts';
import { createHold, releaseHold } from '../ledger/holds.ts';
import { lockAccounts } from '../ledger/repository.ts';
import { ensureAccounts, postEntry } from '../ledger/service.ts';
import { PRODUCER } from '../settlement/service.ts';
import * as repo from './repository.ts';
import type { DepositRow, WithdrawalRow } from './repository.ts';

// ------------------------------------------------------------------------------------------------------------
// Deposits
// ------------------------------------------------------------------------------------------------------------

export async function createDeposit(
  pool: Pool,
  input: { userId: string; asset: string; amount: bigint; confirmationMs: number },
  /** Runs in the deposit's transaction after it is created (the route stores its idempotent reply here). */
  onCreated?: (client: PoolClient, d: DepositRow) => Promise<void>,
): Promise<DepositRow> {
  return withTransaction(pool, async (client) => {
    const d = await repo.insertDeposit(client, { id: randomUUID(), ...input });
    await onCreated?.(client, d);
    return d;
  });
}

/**
 * Confirm one due deposit, if any: credit it (deposit rail → user), record what the rail saw, mark it confirmed —
 * one transaction, so it is credited exactly once (the row is claimed with FOR UPDATE SKIP LOCKED; the journal's
 * idempotency key `deposit:<id>` backs that up). Returns the deposit id, or undefined when nothing is due.
 */
export async function confirmNextDeposit(pool: Pool): Promise<string | undefined> {
  return confirmDueDeposit(pool);
}

/** Confirm one specific deposit now if it is still pending (tests; the scheduler uses confirmNextDeposit). */
export async function confirmDeposit(pool: Pool, id: string): Promise<string | undefined> {
  return confirmDueDeposit(pool, id);
}

async function confirmDueDeposit(pool: Pool, id?: string): Promise<string | undefined> {
  return withTransaction(pool, async (client) => {
    const d = id ? await repo.lockPendingDeposit(client, id) : await repo.claimDueDeposit(client);
    if (!d) return undefined;
    const amount = BigInt(d.amount);
    const res = await postEntry(client, {
      idempotencyKey: `deposit:${d.id}`,
      reason: 'deposit',
      refType: 'deposit',
      refId: d.id,
      legs: [
        { account: { kind: 'deposit_rail', asset: d.asset }, amount: -amount, memo: 'deposit' },
        { account: { kind: 'user', userId: d.user_id, asset: d.asset }, amount, memo: 'deposit' },
      ],
    });
    await repo.insertDepositRailRecord(client, d);
    await repo.markDepositConfirmed(client, d.id, res.entryId);
    return d.id;
  });
}

// ------------------------------------------------------------------------------------------------------------
// Withdrawals
// ------------------------------------------------------------------------------------------------------------

/** Rolling 24 h withdrawal limit per asset (decimal strings) by KYC tier. */
export type WithdrawalLimits = Record<string, Record<string, string>>;

export const DEFAULT_WITHDRAWAL_LIMITS: WithdrawalLimits = {
  '0': { BTC: '1', ETH: '20', USD: '10000', USDT: '10000' },
  '1': { BTC: '10', ETH: '200', USD: '100000', USDT: '100000' },
  '2': { BTC: '100', ETH: '2000', USD: '1000000', USDT: '1000000' },
};

/** Parse WITHDRAWAL_DAILY_LIMITS; throws with a clear message when malformed (checked at start-up). */
export function parseWithdrawalLimits(json: string | undefined, assets: Assets): Map<number, Map<string, bigint>> {
  const raw: unknown = json ? JSON.parse(json) : DEFAULT_WITHDRAWAL_LIMITS;
  if (!raw || typeof raw !== 'object') throw new Error('WITHDRAWAL_DAILY_LIMITS must be a JSON object');
  const out = new Map<number, Map<string, bigint>>();
  for (const [tier, limits] of Object.entries(raw as Record<string, unknown>)) {
    if (!/^[0-9]$/.test(tier)) throw new Error(`WITHDRAWAL_DAILY_LIMITS: tier "${tier}" must be 0-9`);
    if (!limits || typeof limits !== 'object')
      throw new Error(`WITHDRAWAL_DAILY_LIMITS: tier ${tier} must be an object`);
    const m = new Map<string, bigint>();
    for (const [asset, dec] of Object.entries(limits as Record<string, unknown>)) {
      if (!assets.has(asset)) throw new Error(`WITHDRAWAL_DAILY_LIMITS: unknown asset ${asset}`);
      m.set(asset, assets.parse(asset, dec, { allowZero: true }));
    }
    out.set(Number(tier), m);
  }
  return out;
}

/** The limit for a tier: the highest configured tier at or below it; an asset it does not name may not leave. */
export function dailyLimit(limits: Map<number, Map<string, bigint>>, tier: number, asset: string): bigint {
  for (let t = tier; t >= 0; t--) {
    const m = limits.get(t);
    if (m) return m.get(asset) ?? 0n;
  }
  return 0n;
}

/** A withdrawal refused by policy; `reason` labels withdrawals_blocked_total. */
export class WithdrawalBlocked extends AppError {
  readonly reason: string;
  constructor(reason: string, status: number, code: string, message: string, details?: Record<string, unknown>) {
    super(status, code, message, details ? { details } : {});
    this.reason = reason;
  }
}

export interface WithdrawalPolicy {
  limits: Map<number, Map<string, bigint>>;
  dispatchDelayMs: number;
  /**
   * Per asset (minor units): a withdrawal of at least this amount waits for the emailed confirmation link. An asset
   * not in the map never needs one.
   */
  emailConfirmThresholds?: Map<string, bigint>;
  /** How long the confirmation link works; unconfirmed after that, the withdrawal is cancelled (default 30 min). */
  emailConfirmTtlS?: number;
}

/** Default WITHDRAWAL_EMAIL_CONFIRM_THRESHOLDS: roughly 1 000 USD of each asset. */
export const DEFAULT_EMAIL_CONFIRM_THRESHOLDS: Record<string, string> = {
  BTC: '0.02',
  ETH: '0.5',
  USD: '1000',
  USDT: '1000',
};

/** Parse WITHDRAWAL_EMAIL_CONFIRM_THRESHOLDS (JSON {"<ASSET>": "<decimal>"}); throws when malformed. */
export function parseEmailConfirmThresholds(json: string | undefined, assets: Assets): Map<string, bigint> {
  const raw: unknown = json ? JSON.parse(json) : DEFAULT_EMAIL_CONFIRM_THRESHOLDS;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new Error('WITHDRAWAL_EMAIL_CONFIRM_THRESHOLDS must be a JSON object {"ASSET": "decimal"}');
  }
  const out = new Map<string, bigint>();
  for (const [asset, dec] of Object.entries(raw as Record<string, unknown>)) {
    if (!assets.has(asset)) {
      if (json) throw new Error(`WITHDRAWAL_EMAIL_CONFIRM_THRESHOLDS: unknown asset ${asset}`);
      continue; // a default for an asset this catalog does not list
    }
    out.set(asset, assets.parse(asset, dec, { allowZero: true }));
  }
  return out;
}

const sha256hex = (s: string) => createHash('sha256').update(s).digest('hex');

/** The facts every withdrawal event carries (amounts as decimal strings of the asset). */
function withdrawalFacts(assets: Assets, w: WithdrawalRow) {
  return {
    withdrawalId: w.id,
    userId: w.user_id,
    asset: w.asset,
    amount: assets.format(w.asset, w.amount),
    fee: assets.format(w.asset, w.fee),
    address: w.address,
  };
}

/** Write a wallet event (routing key = type) to the outbox in the caller's transaction. */
export async function emitWalletEvent<T extends TSchema>(
  client: Pick<PoolClient, 'query'>,
  contract: MessageContract<T>,
  payload: Static<T>,
  opts: { id?: string } = {},
): Promise<void> {
  await enqueue(client, {
    schema: WALLET_SCHEMA,
    exchange: EVENTS_EXCHANGE,
    routingKey: contract.type,
    message: contract.create(payload, {
      producer: PRODUCER,
      correlationId: (payload as { withdrawalId?: string }).withdrawalId ?? randomUUID(),
      ...(opts.id ? { id: opts.id } : {}),
    }),
  });
}

export async function emitWithdrawalSent(client: PoolClient, assets: Assets, id: string): Promise<void> {
  const w = await repo.withdrawalById(client, id);
  await emitWalletEvent(client, WithdrawalSentV1, { ...withdrawalFacts(assets, w), railTxId: w.rail_tx_id ?? '' });
}

export async function emitWithdrawalFailed(client: PoolClient, assets: Assets, id: string): Promise<void> {
  const w = await repo.withdrawalById(client, id);
  await emitWalletEvent(client, WithdrawalFailedV1, {
    ...withdrawalFacts(assets, w),
    reason: (w.failure_reason ?? 'failed').slice(0, 200),
  });
}

/**
 * Validate and create a withdrawal: the amount plus the fee are held at once (hold id = withdrawal id). The
 * user's account row is locked first, so the velocity sum and the hold see every concurrent withdrawal of that
 * user and asset (no two requests can both squeeze under the limit).
 */
export async function requestWithdrawal(
  pool: Pool,
  assets: Assets,
  policy: WithdrawalPolicy,
  input: { userId: string; asset: string; amount: string; address: string },
  /** Runs in the withdrawal's transaction after it is created (the route stores its idempotent reply here). */
  onCreated?: (client: PoolClient, w: WithdrawalRow) => Promise<void>,
): Promise<WithdrawalRow> {
  const asset = assets.get(input.asset);
  const amount = assets.parse(asset.symbol, input.amount);
  if (!new RegExp(asset.addressPattern).test(input.address)) {
    throw new WithdrawalBlocked('address', 400, 'INVALID_ADDRESS', `not a valid ${asset.symbol} address`);
  }
  const min = assets.units(asset.symbol, asset.minWithdrawal);
  const max = assets.units(asset.symbol, asset.maxWithdrawal);
  if (amount < min) {
    throw new WithdrawalBlocked('limits', 400, 'AMOUNT_BELOW_MINIMUM', `minimum withdrawal is ${asset.minWithdrawal}`, {
      minimum: asset.minWithdrawal,
    });
  }
  if (amount > max) {
    throw new WithdrawalBlocked('limits', 400, 'AMOUNT_ABOVE_MAXIMUM', `maximum withdrawal is ${asset.maxWithdrawal}`, {
      maximum: asset.maxWithdrawal,
    });
  }
  const fee = assets.units(asset.symbol, asset.withdrawalFee);
  const id = randomUUID();
  return withTransaction(pool, async (client) => {
    const ids = await ensureAccounts(client, [{ kind: 'user', userId: input.userId, asset: asset.symbol }]);
    await lockAccounts(client, [...ids.values()]);
    const tier = await repo.kycTier(client, input.userId);
    const limit = dailyLimit(policy.limits, tier, asset.symbol);
    const used = BigInt(await repo.withdrawnInLastDay(client, input.userId, asset.symbol));
    if (used + amount > limit) {
      throw new WithdrawalBlocked(
        'velocity',
        429,
        'VELOCITY_LIMIT_EXCEEDED',
        `the 24 h withdrawal limit for ${asset.symbol} at KYC tier ${tier} is ${assets.format(asset.symbol, limit)}`,
        {
          kycTier: tier,
          limit: assets.format(asset.symbol, limit),
          used: assets.format(asset.symbol, used),
          remaining: assets.format(asset.symbol, limit > used ? limit - used : 0n),
        },
      );
    }
    try {
      await createHold(client, {
        holdId: id,
        userId: input.userId,
        asset: asset.symbol,
        amount: amount + fee,
        reason: 'withdrawal',
        refType: 'withdrawal',
        refId: id,
      });
    } catch (e) {
      if (e instanceof AppError && e.code === 'INSUFFICIENT_FUNDS') {
        throw new WithdrawalBlocked('insufficient_funds', 400, e.code, `${e.message} (amount + fee)`, e.details);
      }
      throw e;
    }
    const threshold = policy.emailConfirmThresholds?.get(asset.symbol);
    const confirm = threshold !== undefined && amount >= threshold;
    const token = confirm ? randomBytes(32).toString('base64url') : undefined;
    const ttlS = policy.emailConfirmTtlS ?? 1800;
    const w = await repo.insertWithdrawal(client, {
      id,
      userId: input.userId,
      asset: asset.symbol,
      amount,
      fee,
      address: input.address,
      dispatchDelayMs: policy.dispatchDelayMs,
      status: confirm ? 'awaiting_confirmation' : 'pending',
      tokenHash: token ? sha256hex(token) : null,
      ttlS,
    });
    await emitWalletEvent(client, WithdrawalRequestedV1, {
      ...withdrawalFacts(assets, w),
      awaitingConfirmation: confirm,
    });
    if (token) {
      await emitWalletEvent(client, WithdrawalConfirmationRequestedV1, {
        ...withdrawalFacts(assets, w),
        confirmationToken: token,
        expiresAt: w.confirm_expires_at!.toISOString(),
      });
    }
    await onCreated?.(client, w);
    return w;
  });
}

/**
 * Confirm a withdrawal by its emailed link: awaiting_confirmation → pending (the usual cancellation window follows).
 * The token is single use (its hash is cleared); a used, unknown or altered token is 400 INVALID_TOKEN, an expired
 * one 400 TOKEN_EXPIRED (the sweeper cancels the withdrawal).
 */
export async function confirmWithdrawal(pool: Pool, token: string, dispatchDelayMs: number): Promise<WithdrawalRow> {
  return withTransaction(pool, async (client) => {
    const w = await repo.lockWithdrawalByTokenHash(client, sha256hex(token));
    if (!w) throw badRequest('INVALID_TOKEN', 'this link is not valid or was already used');
    if (w.expired) throw badRequest('TOKEN_EXPIRED', 'this link has expired; the withdrawal is cancelled');
    return repo.markWithdrawalConfirmed(client, w.id, dispatchDelayMs);
  });
}

/**
 * Cancel one withdrawal whose confirmation link expired, if any: its hold is released exactly (whatever remains of it)
 * and withdrawal.failed (reason confirmation_expired) goes out, in one transaction (FOR UPDATE SKIP LOCKED).
 */
export async function expireNextUnconfirmedWithdrawal(pool: Pool, assets: Assets): Promise<string | undefined> {
  return withTransaction(pool, async (client) => {
    const w = await repo.claimExpiredUnconfirmedWithdrawal(client);
    if (!w) return undefined;
    await releaseHold(client, w.id, 'withdrawal_unconfirmed', 'withdrawal');
    await repo.markWithdrawalConfirmationExpired(client, w.id);
    await emitWithdrawalFailed(client, assets, w.id);
    return w.id;
  });
}

/** Cancel a withdrawal that is still pending (before its payout was requested): its hold is released. */
export async function cancelWithdrawal(pool: Pool, userId: string, id: string): Promise<WithdrawalRow> {
  return withTransaction(pool, async (client) => {
    const w = await repo.lockUserWithdrawal(client, userId, id);
    if (!w) throw notFound('WITHDRAWAL_NOT_FOUND', `withdrawal ${id} not found`);
    if (w.status === 'cancelled') return w;
    if (w.status !== 'pending' && w.status !== 'awaiting_confirmation') {
      throw conflict(
        'WITHDRAWAL_NOT_CANCELLABLE',
        `withdrawal is ${w.status}; only pending withdrawals can be cancelled`,
      );
    }
    await releaseHold(client, id, 'withdrawal_cancelled', 'withdrawal');
    return repo.markWithdrawalCancelled(client, id);
  });
}

/**
 * Hand one due pending withdrawal to the payment-processor: status → processing and payout.requested into the
 * outbox, in one transaction (claimed with FOR UPDATE SKIP LOCKED, so replicas never send one twice).
 *
 * The `withdrawals` kill switch stops this too, not only new requests: in an incident the requests already made are
 * the ones to hold back. The flag row is read FOR SHARE, so turning the switch off waits for a dispatch in flight and
 * none starts after it returns.
 */
export async function dispatchNextWithdrawal(pool: Pool): Promise<string | undefined> {
  return withTransaction(pool, async (client) => {
    if ((await repo.withdrawalsFlagForShare(client)) === false) return undefined;
    const w = await repo.claimDueWithdrawal(client);
    if (!w) return undefined;
    await repo.markWithdrawalProcessing(client, w.id);
    await enqueue(client, {
      schema: WALLET_SCHEMA,
      exchange: COMMANDS_EXCHANGE,
      routingKey: ROUTES.payoutsQueue,
      message: PayoutRequestedV1.create(
        {
          withdrawalId: w.id,
          userId: w.user_id,
          asset: w.asset,
          amount: w.amount,
          address: w.address,
          requestedAt: new Date().toISOString(),
        },
        // Deterministic id: a re-dispatch (never expected) would be deduplicated downstream.
        { producer: PRODUCER, id: uuidFromWithdrawal(w.id), correlationId: w.id },
      ),
    });
    return w.id;
  });
}

/** The payout.requested message id of a withdrawal: the withdrawal id itself (one payout per withdrawal). */
const uuidFromWithdrawal = (id: string) => id;

export { badRequest };
