/**
 * The hold API's group commit: holds requested while one transaction is in flight are created together in the next
 * (one commit for all), each request answered with its own hold or error. See `createHolds` for the semantics of a
 * batch and `GroupCommit` for batching, ordering and the retry of a failed batch one hold at a time.
 */
import { GroupCommit, withStatementRetries, withTransaction, type Pool, type PoolClient } from '@exchange/db';
import { createHoldAlone, createHolds, type CreateHoldInput, type HoldOutcome } from './holds.ts';
import type { HoldRow } from './model.ts';

export type HoldBatcher = GroupCommit<CreateHoldInput, { hold: HoldRow; created: boolean }>;

export function createHoldBatcher(
  pool: Pool,
  opts: {
    maxBatch?: number;
    onBatchFailure?: (err: unknown, size: number) => void;
    onBatch?: (size: number) => void;
    /** Test hook: runs inside a batch's transaction after its holds were written, before the commit. */
    beforeCommit?: (client: PoolClient, items: CreateHoldInput[]) => Promise<void>;
  } = {},
): HoldBatcher {
  // A hold that found its account busy, on its own: one statement that waits for the account's lock and is its own
  // transaction (a tenth of the holds under load; BEGIN, the lock, the insert and COMMIT took four round trips).
  const one = async (item: CreateHoldInput): Promise<HoldOutcome> => {
    if (opts.beforeCommit) {
      return withTransaction(pool, async (c) => {
        const out = (await createHolds(c, [item])) as HoldOutcome[];
        await opts.beforeCommit?.(c, [item]);
        return out[0]!;
      });
    }
    const out = await withStatementRetries(() => createHoldAlone(pool, item));
    if ('busy' in out) throw new Error('unreachable: a hold that waits for its account is never busy');
    return out;
  };
  return new GroupCommit({
    maxBatch: opts.maxBatch ?? 100,
    ...(opts.onBatchFailure ? { onBatchFailure: opts.onBatchFailure } : {}),
    ...(opts.onBatch ? { onBatch: opts.onBatch } : {}),
    run: async (items) => {
      // A batch of one (an idle system's every hold) is one statement, its own transaction: one round trip.
      const outcomes =
        items.length === 1 && !opts.beforeCommit
          ? [await withStatementRetries(() => createHoldAlone(pool, items[0]!, { skipLocked: true }))]
          : await withTransaction(pool, async (c) => {
              const out = await createHolds(c, items, { skipLocked: true });
              await opts.beforeCommit?.(c, items);
              return out;
            });
      // Holds whose account another transaction had locked (a settlement of that user's trade, typically): each on
      // its own, waiting for that one account only (so it cannot deadlock), while the next batch goes ahead. Waiting
      // here instead stalled every user's order entry behind one settlement's commit.
      return outcomes.map((o, i) =>
        'busy' in o
          ? {
              ok: 'later' as const,
              value: one(items[i]!).then((r) => {
                if (r.ok) return r.value;
                throw r.error;
              }),
            }
          : o,
      );
    },
  });
}
