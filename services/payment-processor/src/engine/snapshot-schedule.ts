/**
 * When the engine stores a snapshot of a market. A snapshot costs O(resting orders) (serialised, sent, compressed and
 * written inside the batch's transaction, holding the market); the journal it saves from replay costs O(commands). A
 * fixed every-N-commands cadence makes a large book pay its whole size every N commands, so the cost per command
 * grows with the book. Here the interval stretches with the book: `every` commands, or as many commands as the last
 * snapshot held orders, up to `maxFactor` × `every`. The cost per command then stays about one order's worth, and a
 * recovery replays at most `maxFactor` × `every` journal rows.
 */
export class SnapshotSchedule {
  private readonly every: number;
  private readonly max: number;
  private lastSeq = 0;
  private lastOrders = 0;

  constructor(every: number, maxFactor = 10) {
    this.every = every;
    this.max = every * maxFactor;
  }

  /** Commands between the last snapshot and the next. */
  get interval(): number {
    return Math.min(this.max, Math.max(this.every, this.lastOrders));
  }

  /** Whether the command just applied at `seq` is followed by a snapshot. */
  due(seq: number): boolean {
    return seq - this.lastSeq >= this.interval;
  }

  /** A snapshot was stored (or loaded) at `seq` with `orders` resting orders (seq 0: none, start from scratch). */
  taken(seq: number, orders: number): void {
    this.lastSeq = seq;
    this.lastOrders = orders;
  }
}
