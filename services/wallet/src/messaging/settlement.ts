import { AdjustHoldV1, ReleaseHoldV1, SettleTradeV1 } from '@exchange/contracts/trading';
import type { Envelope, PayloadOf } from '@exchange/contracts';
import type { PoolClient } from '@exchange/db';
import type { Assets } from '../assets.ts';
import { adjustOrderHold } from '../ledger/holds.ts';
import {
  noLog,
  releaseOrderHold,
  releaseOrderHolds,
  SettlementError,
  settleTrades,
  type HandlerLogger,
} from '../settlement/service.ts';

type TradeMessage = Envelope<PayloadOf<typeof SettleTradeV1>>;

/** Handler for queue `wallet.settlement`. */
export function settlementHandler(
  assets: Assets,
  log: HandlerLogger = noLog,
  /** Seconds from the engine's execution to this settlement (settlement_lag_seconds). */
  observeLag: (seconds: number) => void = () => {},
) {
  const settle = async (trades: TradeMessage[], client: PoolClient): Promise<void> => {
    const results = await settleTrades(client, trades, assets);
    trades.forEach((trade, i) => {
      if (results[i] === 'duplicate') log.info({ tradeId: trade.payload.tradeId }, 'trade already settled');
      else observeLag(Math.max(0, (Date.now() - Date.parse(trade.payload.executedAt)) / 1000));
    });
  };
  const one = async (message: Envelope, client: PoolClient): Promise<void> => {
    if (message.type === SettleTradeV1.type) return settle([SettleTradeV1.validate(message)], client);
    if (message.type === ReleaseHoldV1.type) {
      await releaseOrderHold(client, ReleaseHoldV1.validate(message));
      return;
    }
    if (message.type === AdjustHoldV1.type) {
      const p = AdjustHoldV1.validate(message).payload;
      const r = await adjustOrderHold(client, {
        holdId: p.holdId,
        userId: p.userId,
        asset: p.asset,
        delta: BigInt(p.delta),
        ...(p.topUpHoldId ? { topUpHoldId: p.topUpHoldId } : {}),
        reason: p.reason,
      });
      log.info(
        { holdId: p.holdId, adjusted: String(r.adjusted), topUpReleased: String(r.toppedUpReleased) },
        'order hold adjusted (amend)',
      );
      return;
    }
    throw new SettlementError(`unexpected message type ${message.type} on wallet.settlement`);
  };
  /**
   * A batch (the consumer's group commit), with the outcome of applying its messages one after the other. Trades and
   * hold releases are gathered into segments and each segment is written set-based: its trades (`settleTrades`), then
   * its releases (`releaseOrderHolds`). A release may move behind the trades that follow it only when none of them
   * names its hold (a trade naming a hold released earlier in the segment starts a new one), so every hold sees its
   * captures and its release in delivery order; other messages go one at a time between segments. When a segment
   * that moved a release fails, it is rolled back to its savepoint and applied one by one, so the error raised is
   * the one the first failing message in delivery order raises.
   */
  const batch = async (messages: Envelope[], client: PoolClient): Promise<void> => {
    for (let i = 0; i < messages.length;) {
      const first = messages[i]!;
      if (first.type !== SettleTradeV1.type && first.type !== ReleaseHoldV1.type) {
        await one(first, client);
        i++;
        continue;
      }
      const trades: TradeMessage[] = [];
      const releases: Array<Envelope<PayloadOf<typeof ReleaseHoldV1>>> = [];
      const released = new Set<string>();
      let moved = false;
      let j = i;
      for (; j < messages.length; j++) {
        const m = messages[j]!;
        if (m.type === SettleTradeV1.type) {
          const t = SettleTradeV1.validate(m);
          if (released.has(t.payload.buyer.orderId) || released.has(t.payload.seller.orderId)) break;
          if (releases.length) moved = true;
          trades.push(t);
        } else if (m.type === ReleaseHoldV1.type) {
          const r = ReleaseHoldV1.validate(m);
          released.add(r.payload.holdId);
          releases.push(r);
        } else break;
      }
      const segment = messages.slice(i, j);
      i = j;
      const write = async () => {
        if (trades.length) await settle(trades, client);
        if (releases.length) await releaseOrderHolds(client, releases);
      };
      if (!moved) {
        await write(); // delivery order already: trades then releases, or one kind only
        continue;
      }
      await client.query('SAVEPOINT settlement_segment');
      try {
        await write();
      } catch {
        await client.query('ROLLBACK TO SAVEPOINT settlement_segment');
        for (const m of segment) await one(m, client);
      }
      // (released at commit anyway; done here so a long batch does not pile up subtransactions)
      await client.query('RELEASE SAVEPOINT settlement_segment');
    }
  };
  // the per-message handler, with the batch form beside it (`handler` and `batchHandler` of the consumer)
  return Object.assign(one, { batch });
}
