import { GroupCommit, type Outcome } from './group-commit.ts';

const tick = () => new Promise((r) => setTimeout(r, 5));

test('items submitted while a batch runs form the next batch; each caller gets its own result, in order', async () => {
  const batches: number[][] = [];
  const gc = new GroupCommit<number, string>({
    run: async (items) => {
      batches.push(items);
      await tick();
      return items.map((i): Outcome<string> =>
        i % 5 === 0 ? { ok: false, error: new Error(`bad ${i}`) } : { ok: true, value: `v${i}` },
      );
    },
  });
  const results = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => gc.submit(i + 1)));
  // the first item runs alone (nothing else was waiting), the rest queued behind it and ran together
  expect(batches).toEqual([[1], [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]]);
  expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual([
    'v1',
    'v2',
    'v3',
    'v4',
    'bad 5',
    'v6',
    'v7',
    'v8',
    'v9',
    'bad 10',
    'v11',
    'v12',
  ]);
});

test('maxBatch bounds a batch; batches run one after the other in submission order', async () => {
  const batches: number[][] = [];
  let running = 0;
  const gc = new GroupCommit<number, number>({
    maxBatch: 3,
    run: async (items) => {
      running++;
      expect(running).toBe(1);
      batches.push(items);
      await tick();
      running--;
      return items.map((i) => ({ ok: true as const, value: i }));
    },
  });
  await Promise.all(Array.from({ length: 8 }, (_, i) => gc.submit(i)));
  expect(batches).toEqual([[0], [1, 2, 3], [4, 5, 6], [7]]);
});

test('a batch that fails whole is retried one item at a time: the others succeed, the culprit fails alone', async () => {
  const applied: number[] = [];
  const failures: number[] = [];
  const gc = new GroupCommit<number, number>({
    onBatchFailure: (_err, size) => failures.push(size),
    run: async (items) => {
      await tick();
      // "the transaction": all or nothing; item 3 makes it fail
      if (items.includes(3)) throw new Error('poison 3');
      applied.push(...items);
      return items.map((i) => ({ ok: true as const, value: i * 10 }));
    },
  });
  const first = gc.submit(0);
  const rest = [1, 2, 3, 4].map((i) => gc.submit(i));
  const results = await Promise.allSettled([first, ...rest]);
  expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual([
    0,
    10,
    20,
    'poison 3',
    40,
  ]);
  expect(failures).toEqual([4]);
  // nothing applied twice: the failed batch applied nothing, its items once each afterwards
  expect(applied).toEqual([0, 1, 2, 4]);
});
