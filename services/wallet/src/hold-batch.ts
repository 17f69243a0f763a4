/**
 * The hold API's group commit: holds requested while one transaction is in flight are created together in the next
 * (one commit for all), each request answered with its own hold or error. See `createHolds` for the semantics of a
 * batch and `GroupCommit` for batching, ordering and the retry of a failed batch one hold at a time.
 */
import { GroupCommit, withTransaction, type Pool, type PoolClient } from '@exchange/db';
import { createHolds, type CreateHoldInput, type HoldOutcome, type HoldRow } from './ledger.ts';

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
  const one = (item: CreateHoldInput) =>
    withTransaction(pool, async (c) => {
      const out = (await createHolds(c, [item])) as HoldOutcome[];
      await opts.beforeCommit?.(c, [item]);
      return out[0]!;
    });
  return new GroupCommit({
    maxBatch: opts.maxBatch ?? 100,
    ...(opts.onBatchFailure ? { onBatchFailure: opts.onBatchFailure } : {}),
    ...(opts.onBatch ? { onBatch: opts.onBatch } : {}),
    run: async (items) => {
      if (items.length === 1) return [await one(items[0]!)];
      const outcomes = await withTransaction(pool, async (c) => {
        const out = await createHolds(c, items, { skipLocked: true });
        await opts.beforeCommit?.(c, items);
        return out;
      });
      // Holds whose account another transaction had locked: each on its own now (it waits for that one account
      // only, so it cannot deadlock).
      return Promise.all(outcomes.map((o, i) => ('busy' in o ? one(items[i]!) : o)));
    },
  });
}
