import { SnapshotSchedule } from './snapshot-schedule.ts';

/** Seqs at which a snapshot is taken when the book holds `orders(seq)` resting orders after command `seq`. */
function run(s: SnapshotSchedule, commands: number, orders: (seq: number) => number): number[] {
  const taken: number[] = [];
  for (let seq = 1; seq <= commands; seq++) {
    if (s.due(seq)) {
      s.taken(seq, orders(seq));
      taken.push(seq);
    }
  }
  return taken;
}

describe('SnapshotSchedule', () => {
  it('takes one every `every` commands while the book is smaller than that', () => {
    expect(run(new SnapshotSchedule(40), 240, () => 25)).toEqual([40, 80, 120, 160, 200, 240]);
  });

  it('stretches the interval to the resting orders of the last snapshot, so a growing book still gets snapshots', () => {
    // every command rests one more order: the interval doubles with the book
    expect(run(new SnapshotSchedule(10), 200, (seq) => seq)).toEqual([10, 20, 40, 80, 160]);
  });

  it('never waits more than maxFactor × every commands', () => {
    expect(run(new SnapshotSchedule(10, 3), 100, () => 1_000)).toEqual([10, 40, 70, 100]);
  });

  it('shrinks back when the book empties', () => {
    // 30 resting orders at the first snapshot: 30 commands to the next, which finds the book empty
    const orders = (seq: number) => (seq <= 30 ? 30 : 0);
    expect(run(new SnapshotSchedule(10), 100, orders)).toEqual([10, 40, 50, 60, 70, 80, 90, 100]);
  });

  it('counts from a loaded snapshot', () => {
    const s = new SnapshotSchedule(10);
    s.taken(1_005, 50);
    expect(s.interval).toBe(50);
    expect(s.due(1_054)).toBe(false);
    expect(s.due(1_055)).toBe(true);
  });
});
