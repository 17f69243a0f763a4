// node packages/matching-engine/bench/memory.ts [--ops 5000000] [--window 2000] [--every 500000]
//
// Long-run memory check: a steady-state workload where at most `window` orders rest (each new limit order cancels the
// one placed `window` limit orders earlier if it is still there); market orders and crossing limits fill the rest.
// After a full GC every `every` operations it prints heapUsed and the engine's counters. Flat numbers mean that
// filled and cancelled orders leave nothing behind.
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { OrderBook } from '../src/index.ts';

setFlagsFromString('--expose-gc');
const fullGc = runInNewContext('gc') as () => void;

const { values } = parseArgs({
  options: {
    ops: { type: 'string', default: '5000000' },
    window: { type: 'string', default: '2000' },
    every: { type: 'string', default: '500000' },
    seed: { type: 'string', default: '7' },
  },
});
const OPS = Number(values.ops);
const WINDOW = Number(values.window);
const EVERY = Number(values.every);
let a = Number(values.seed) >>> 0;
const rnd = () => {
  a = (a + 0x6d2b79f5) >>> 0;
  let t = a;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

const book = new OrderBook({ market: 'MEM', defaultStp: 'decrement' });
const ring = new Array<string>(WINDOW).fill('');
let placed = 0;
let mid = 100_000;
let trades = 0;
const mb = (n: number) => (n / 1048576).toFixed(2);
console.log('ops        heapUsed MB  resting  bid levels  ask levels  seq         trades');
for (let i = 1; i <= OPS; i++) {
  const d = rnd();
  if (d < 0.05) mid++;
  else if (d < 0.1) mid--;
  const side = rnd() < 0.5 ? 'buy' : 'sell';
  const account = `acct-${Math.floor(rnd() * 50)}`;
  if (rnd() < 0.85) {
    const old = ring[placed % WINDOW]!;
    if (old !== '' && book.has(old)) book.cancel(old);
    const id = `o${i}`;
    ring[placed++ % WINDOW] = id;
    const dist = Math.floor(rnd() * 20) - 3;
    const r = book.place({
      id,
      account,
      side,
      type: 'limit',
      price: side === 'buy' ? mid - dist : mid + dist,
      quantity: 1 + Math.floor(rnd() * 50),
      timeInForce: rnd() < 0.1 ? 'IOC' : 'GTC',
    });
    trades += r.fills.length;
  } else {
    trades += book.place({ id: `m${i}`, account, side, type: 'market', quantity: 1 + Math.floor(rnd() * 40) }).fills
      .length;
  }
  if (i % EVERY === 0) {
    fullGc();
    const lc = book.levelCount;
    console.log(
      `${String(i).padEnd(10)} ${mb(process.memoryUsage().heapUsed).padStart(11)}  ${String(book.orderCount).padStart(7)}  ` +
        `${String(lc.bids).padStart(10)}  ${String(lc.asks).padStart(10)}  ${String(book.seq).padEnd(10)}  ${trades}`,
    );
  }
}
