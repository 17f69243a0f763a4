/**
 * What the wallet's consumers apply (their handlers are in messaging/): trades, hold releases and adjustments of the
 * trading flow, payouts of the rail. Each runs inside the inbox transaction of @exchange/messaging (inbox row +
 * effect commit together, ack after commit), and is idempotent on its own as well (trade id / hold state /
 * withdrawal state), so a redelivery under a new message id changes nothing either.
 */
import {
  PayoutCompletedV1,
  PayoutFailedV1,
  ReleaseHoldV1,
  SettleTradeV1,
  TradeSettledV1,
} from '@exchange/contracts/trading';
import type { Envelope, PayloadOf } from '@exchange/contracts';
import type { PoolClient } from '@exchange/db';
import { EVENTS_EXCHANGE, enqueueGuarded, type Logger } from '@exchange/messaging';
import { Assets } from '../assets.ts';
import { emitWithdrawalFailed, emitWithdrawalSent } from '../funding/service.ts';
import { releaseHold, releaseHolds } from '../ledger/holds.ts';
import type { HoldRow, Leg } from '../ledger/model.ts';
import { writeLedger } from '../ledger/repository.ts';
import { postEntry, stageEntries, type PostEntryInput } from '../ledger/service.ts';
import { WALLET_SCHEMA } from '../db/schema.ts';
import * as repo from './repository.ts';

export const PRODUCER = 'wallet';

/** The part of the one `Logger` (@exchange/messaging) the handlers use. */
export type HandlerLogger = Pick<Logger, 'info' | 'warn'>;

/** The handlers' default: no log lines. */
export const noLog: HandlerLogger = { warn() {}, info() {} };

/** A message this service cannot apply as it stands (goes through the retries to the dead letters, loudly). */
export class SettlementError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SettlementError';
  }
}

export type SettleResult = 'settled' | 'duplicate';

type SettleTradeMessage = Envelope<PayloadOf<typeof SettleTradeV1>>;

/**
 * Apply one trade: the buyer's quote hold pays quoteAmount, the seller's base hold pays baseAmount; the buyer
 * receives baseAmount - buyerFee, the seller quoteAmount - sellerFee, the fee accounts the fees (a rebate, a negative
 * fee, is a negative fee-account leg: the entry still sums to zero per asset). One journal entry,
 * at most once per trade id. Publishes wallet.trade-settled through the outbox in the same transaction.
 */
export async function settleTrade(
  client: PoolClient,
  message: SettleTradeMessage,
  assets: Assets,
): Promise<SettleResult> {
  return (await settleTrades(client, [message], assets))[0]!;
}

/**
 * `settleTrade` for several trades in one transaction, with the outcome of settling them one after the other (the
 * settlement consumer's group commit): their journal entries are staged together (`stageEntries`: the entries
 * inserted, the accounts and holds locked and checked), then one statement writes the holds, the accounts, the
 * postings, the settlement rows and the outbox messages. The locks are held over that statement and the commit only.
 * The first trade that cannot be settled throws, and the caller's transaction rolls back whole.
 */
export async function settleTrades(
  client: PoolClient,
  messages: SettleTradeMessage[],
  assets: Assets,
): Promise<SettleResult[]> {
  // A trade that fails its checks fails the call only after the trades before it were posted, so an earlier trade
  // that cannot be posted raises its own error first, as settling them one after the other does.
  const entries: PostEntryInput[] = [];
  let refused: unknown;
  for (const m of messages) {
    try {
      entries.push(tradeEntry(m, assets));
    } catch (err) {
      refused = err;
      break;
    }
  }
  const { results, writes } = await stageEntries(client, entries);
  if (refused !== undefined) {
    if (writes) await writeLedger(client, writes);
    throw refused;
  }
  const settled = messages.flatMap((m, i) =>
    results[i]!.status === 'posted' ? [{ m, entryId: results[i]!.entryId }] : [],
  );
  if (writes) {
    const settledAt = new Date().toISOString();
    await enqueueGuarded(
      client,
      settled.map(({ m }) => ({
        schema: WALLET_SCHEMA,
        exchange: EVENTS_EXCHANGE,
        routingKey: `${TradeSettledV1.type}.${m.payload.market}`,
        message: TradeSettledV1.create(
          { tradeId: m.payload.tradeId, market: m.payload.market, settledAt },
          {
            producer: PRODUCER,
            causationId: m.id,
            ...(m.correlationId ? { correlationId: m.correlationId } : {}),
          },
        ),
      })),
      repo.settlementsGuard(
        writes,
        settled.map((s) => ({
          tradeId: s.m.payload.tradeId,
          market: s.m.payload.market,
          entryId: s.entryId,
          messageId: s.m.id,
        })),
      ),
    );
  }
  return results.map((r) => (r.status === 'posted' ? 'settled' : 'duplicate'));
}

/** The journal entry of one trade, after the checks a trade must pass (SettlementError when it does not). */
function tradeEntry(message: SettleTradeMessage, assets: Assets): PostEntryInput {
  const p = message.payload;
  if (!assets.has(p.baseAsset) || !assets.has(p.quoteAsset) || p.baseAsset === p.quoteAsset) {
    throw new SettlementError(`trade ${p.tradeId}: unknown or identical assets ${p.baseAsset}/${p.quoteAsset}`);
  }
  const market = assets.catalog.market(p.market);
  if (market && (market.base.symbol !== p.baseAsset || market.quote.symbol !== p.quoteAsset)) {
    throw new SettlementError(`trade ${p.tradeId}: ${p.market} is not ${p.baseAsset}/${p.quoteAsset}`);
  }
  const base = BigInt(p.baseAmount);
  const quote = BigInt(p.quoteAmount);
  const buyerFee = BigInt(p.buyerFee);
  const sellerFee = BigInt(p.sellerFee);
  if (base <= 0n || quote <= 0n || buyerFee > base || sellerFee > quote) {
    throw new SettlementError(`trade ${p.tradeId}: inconsistent amounts`);
  }
  // A negative fee is a maker's rebate, paid from the fee account of the asset the maker receives. Only one side can
  // be the maker, and its rebate may never be worth more than the taker's fee on this trade (valued at the trade's
  // own price: base × quote / base), so no trade ever pays out more than it takes.
  if (
    (buyerFee < 0n && (sellerFee < 0n || -buyerFee * quote > sellerFee * base)) ||
    (sellerFee < 0n && -sellerFee * base > buyerFee * quote)
  ) {
    throw new SettlementError(`trade ${p.tradeId}: a rebate larger than the taker's fee`);
  }
  const buyer = (asset: string) => ({ kind: 'user' as const, userId: p.buyer.userId, asset });
  const seller = (asset: string) => ({ kind: 'user' as const, userId: p.seller.userId, asset });
  const legs: Leg[] = [
    { account: buyer(p.quoteAsset), amount: -quote, memo: 'trade_pay' },
    { account: seller(p.quoteAsset), amount: quote - sellerFee, memo: 'trade_receive' },
    { account: { kind: 'fees', asset: p.quoteAsset }, amount: sellerFee, memo: 'trade_fee' },
    { account: seller(p.baseAsset), amount: -base, memo: 'trade_pay' },
    { account: buyer(p.baseAsset), amount: base - buyerFee, memo: 'trade_receive' },
    { account: { kind: 'fees', asset: p.baseAsset }, amount: buyerFee, memo: 'trade_fee' },
  ].filter((l) => l.amount !== 0n) as Leg[];
  return {
    idempotencyKey: `trade:${p.tradeId}`,
    reason: 'trade',
    refType: 'trade',
    refId: p.tradeId,
    causationId: message.id,
    legs,
    captures: [
      { holdId: p.buyer.orderId, amount: quote, userId: p.buyer.userId, asset: p.quoteAsset, refType: 'order' },
      { holdId: p.seller.orderId, amount: base, userId: p.seller.userId, asset: p.baseAsset, refType: 'order' },
    ],
  };
}

/**
 * A release that arrived before all settlements of its order (one of them failed once and waits in the retry
 * queue). Retryable: by the next attempt the settlement has normally been applied.
 */
export class SettlementsPending extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SettlementsPending';
  }
}

/**
 * The order is finished: release what is left of its hold (a no-op if it already ended). When the message says what
 * the order's trades capture in all, the hold must have captured exactly that first: less means a settlement is
 * still on its way (retry later rather than hand back funds it needs), more means the two services disagree.
 */
export async function releaseOrderHold(client: PoolClient, message: ReleaseHoldMessage): Promise<bigint> {
  return (await releaseOrderHolds(client, [message]))[0]!;
}

type ReleaseHoldMessage = Envelope<PayloadOf<typeof ReleaseHoldV1>>;

/** `releaseOrderHold` for a list, with the outcome of applying them one after the other (`releaseHolds`). */
export async function releaseOrderHolds(client: PoolClient, messages: ReleaseHoldMessage[]): Promise<bigint[]> {
  const results = await releaseHolds(
    client,
    messages.map((m) => ({ holdId: m.payload.holdId, reason: m.payload.reason, refType: 'order' as const })),
    (hold, i) => checkRelease(messages[i]!.payload, hold),
  );
  return results.map((r) => r.released);
}

function checkRelease(p: ReleaseHoldMessage['payload'], hold: HoldRow | undefined): void {
  if (!hold) throw new SettlementError(`release of unknown hold ${p.holdId}`);
  if (hold.user_id !== p.userId) throw new SettlementError(`hold ${p.holdId} does not belong to user ${p.userId}`);
  const { baseAsset, quoteAsset, filledBase, filledQuote } = p;
  if (
    hold.status !== 'active' ||
    baseAsset === undefined ||
    quoteAsset === undefined ||
    filledBase === undefined ||
    filledQuote === undefined
  ) {
    return;
  }
  const expected =
    hold.asset === baseAsset ? BigInt(filledBase) : hold.asset === quoteAsset ? BigInt(filledQuote) : undefined;
  if (expected === undefined)
    throw new SettlementError(`release of hold ${p.holdId}: a ${hold.asset} hold is not one of ${p.market ?? '?'}`);
  const captured = BigInt(hold.captured) + BigInt(hold.late_captured);
  if (captured < expected)
    throw new SettlementsPending(
      `release of hold ${p.holdId} waits for settlements: captured ${captured} of ${expected} ${hold.asset}`,
    );
  if (captured > expected)
    throw new SettlementError(
      `release of hold ${p.holdId}: captured ${captured} ${hold.asset}, but the order's trades total ${expected}`,
    );
}

/** The rail paid the withdrawal: capture its hold (amount to the withdrawal rail, fee to the fee account). */
let catalogAssets: Assets | undefined;
/** The built-in catalog, for callers that pass no Assets (formatting amounts of withdrawal events). */
export const defaultAssets = () => (catalogAssets ??= new Assets());

export async function completePayout(
  client: PoolClient,
  message: Envelope<PayloadOf<typeof PayoutCompletedV1>>,
  log: HandlerLogger = noLog,
  assets: Assets = defaultAssets(),
): Promise<'completed' | 'duplicate'> {
  const p = message.payload;
  const w = await repo.lockWithdrawal(client, p.withdrawalId);
  if (!w) throw new SettlementError(`payout.completed for unknown withdrawal ${p.withdrawalId}`);
  if (w.status === 'completed') return 'duplicate';
  if (w.status !== 'processing') {
    // Money left through the rail for a withdrawal we consider ended: never silently accept it.
    throw new SettlementError(`payout.completed for withdrawal ${w.id} in status ${w.status}`);
  }
  const amount = BigInt(w.amount);
  const fee = BigInt(w.fee);
  const user = { kind: 'user' as const, userId: w.user_id, asset: w.asset };
  const legs: Leg[] = [
    { account: user, amount: -amount, memo: 'withdrawal' },
    { account: { kind: 'withdrawal_rail', asset: w.asset }, amount, memo: 'withdrawal' },
  ];
  if (fee > 0n) {
    legs.push({ account: user, amount: -fee, memo: 'withdrawal_fee' });
    legs.push({ account: { kind: 'fees', asset: w.asset }, amount: fee, memo: 'withdrawal_fee' });
  }
  const res = await postEntry(client, {
    idempotencyKey: `withdrawal:${w.id}`,
    reason: 'withdrawal',
    refType: 'withdrawal',
    refId: w.id,
    causationId: message.id,
    legs,
    captures: [{ holdId: w.id, amount: amount + fee, userId: w.user_id, asset: w.asset, refType: 'withdrawal' }],
  });
  await repo.insertPayoutRailRecord(client, w, p.railTxId);
  await repo.markWithdrawalCompleted(client, w.id, p.railTxId, res.entryId);
  await emitWithdrawalSent(client, assets, w.id);
  log.info({ withdrawalId: w.id, railTxId: p.railTxId }, 'withdrawal completed');
  return 'completed';
}

/** The rail could not pay: release the hold, the funds are available again. */
export async function failPayout(
  client: PoolClient,
  message: Envelope<PayloadOf<typeof PayoutFailedV1>>,
  log: HandlerLogger = noLog,
  assets: Assets = defaultAssets(),
): Promise<'failed' | 'duplicate'> {
  const p = message.payload;
  const w = await repo.lockWithdrawal(client, p.withdrawalId);
  if (!w) throw new SettlementError(`payout.failed for unknown withdrawal ${p.withdrawalId}`);
  if (w.status === 'failed') return 'duplicate';
  if (w.status !== 'processing') {
    throw new SettlementError(`payout.failed for withdrawal ${w.id} in status ${w.status}`);
  }
  await releaseHold(client, w.id, 'payout_failed', 'withdrawal');
  await repo.markWithdrawalFailed(client, w.id, p.reason);
  await emitWithdrawalFailed(client, assets, w.id);
  log.warn({ withdrawalId: w.id, reason: p.reason }, 'withdrawal payout failed; funds released');
  return 'failed';
}
