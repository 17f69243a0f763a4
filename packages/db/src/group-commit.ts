/**
 * Group commit for request/response work: concurrent callers each `submit` one item and get their own result, while
 * the items waiting at the same time are applied together by one `run` (typically one transaction, one commit).
 *
 * - **No added latency.** A batch starts as soon as nothing else is running; items that arrive while a batch is in
 *   flight form the next one. An idle system therefore runs batches of one, a busy one batches of whatever queued up
 *   during one commit (at most `maxBatch`).
 * - **Own result per item.** `run` returns one outcome per item, in order: a value, or the error that item alone
 *   deserves (e.g. insufficient funds) — such an error does not affect the others — or a promise of the item's
 *   result when it finishes outside the batch (`ok: 'later'`), which the next batch does not wait for.
 * - **A batch that fails** (`run` throws: the transaction rolled back whole) is retried **one item at a time**, each
 *   in its own `run`, so one item that makes the whole transaction fail (or a transient fault) fails only itself,
 *   and nothing is applied twice: the failed batch committed nothing.
 * - **Order.** Items are applied in submission order, batch after batch; at most `maxInFlight` batches (default 1)
 *   run at once, so with the default a later item is never committed before an earlier one.
 */
export type Outcome<O> =
  | { ok: true; value: O }
  | { ok: false; error: unknown }
  /**
   * Decided outside the batch: the item could not be applied with the others (its row was locked by another
   * transaction) and finishes on its own; its caller gets this promise's result, and the next batch does not wait.
   */
  | { ok: 'later'; value: Promise<O> };

export interface GroupCommitOptions<I, O> {
  run(items: I[]): Promise<Array<Outcome<O>>>;
  /** Most items per batch (default 100). */
  maxBatch?: number;
  /** Called when a batch failed whole and is being retried item by item (metrics/logs). */
  onBatchFailure?(err: unknown, size: number): void;
  /** Called with the size of every batch run (metrics). */
  onBatch?(size: number): void;
}

interface Waiter<I, O> {
  item: I;
  resolve(v: O): void;
  reject(e: unknown): void;
}

export class GroupCommit<I, O> {
  private readonly opts: GroupCommitOptions<I, O>;
  private readonly maxBatch: number;
  private queue: Array<Waiter<I, O>> = [];
  private running = false;

  constructor(opts: GroupCommitOptions<I, O>) {
    this.opts = opts;
    this.maxBatch = opts.maxBatch ?? 100;
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  /** Items waiting for a batch (not counting the one running). */
  get waiting(): number {
    return this.queue.length;
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        this.opts.onBatch?.(batch.length);
        let outcomes: Array<Outcome<O>> | undefined;
        try {
          outcomes = await this.opts.run(batch.map((w) => w.item));
          if (outcomes.length !== batch.length) throw new Error('group commit: one outcome per item expected');
        } catch (err) {
          if (batch.length === 1) {
            batch[0]!.reject(err);
            continue;
          }
          this.opts.onBatchFailure?.(err, batch.length);
          for (const w of batch) await this.runOne(w);
          continue;
        }
        outcomes.forEach((o, i) => settle(batch[i]!, o));
      }
    } finally {
      this.running = false;
    }
  }

  private async runOne(w: Waiter<I, O>): Promise<void> {
    try {
      const [o] = await this.opts.run([w.item]);
      if (!o) throw new Error('group commit: one outcome per item expected');
      settle(w, o);
    } catch (err) {
      w.reject(err);
    }
  }
}

function settle<I, O>(w: Waiter<I, O>, o: Outcome<O>): void {
  if (o.ok === 'later') o.value.then(w.resolve, w.reject);
  else if (o.ok) w.resolve(o.value);
  else w.reject(o.error);
}
