// pnpm bench:engine [--seed 42] [--ops 1000000] [--limit 60] [--cancel 30] [--market 10] [--warmup 200000] [--rounds 3]
//                   [--baseline <order-book.ts of another version>]
//
// One seeded workload (limit orders around a drifting mid, cancels of recent orders, market orders) is generated up
// front into typed arrays, then replayed on @exchange/matching-engine and on hft-limit-order-book in the same process:
//   1. warm-up: the first `warmup` operations on a throw-away book per engine (JIT),
//   2. throughput: all operations on a fresh book, one clock read around the whole loop,
//   3. latency: all operations on another fresh book, process.hrtime.bigint() around every single operation; exact
//      percentiles from the sorted samples (no histogram bucketing).
// With --baseline, a second copy of this engine's OrderBook (e.g. the previous version, extracted with
// `git show <rev>:packages/matching-engine/src/order-book.ts > /tmp/order-book.base.ts`) runs in the same rounds on the
// same workload, and its ratio to the current engine is printed: the way to show a change costs the plain path
// nothing (both must fill the same quantity and leave the same book).
// The shared workload uses only what both engines support with the same semantics (GTC limit, market without
// protection, cancel; self-trades allowed: stp 'none'), so both must report the same total filled quantity and the
// same final book; the run fails otherwise.
import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { resolve } from 'node:path';
import { OrderBook } from '../src/index.ts';

const require = createRequire(import.meta.url);
interface HftResponse {
  quantityLeft: number;
  err: unknown;
}
interface HftBook {
  limit(o: { id: string; side: 'buy' | 'sell'; size: number; price: number }): HftResponse;
  market(o: { side: 'buy' | 'sell'; size: number }): HftResponse;
  cancel(id: string): unknown;
  depth(): [Array<[number, number]>, Array<[number, number]>];
}
// A full GC between phases so that no engine pays for the garbage of the previous one.
setFlagsFromString('--expose-gc');
const fullGc = runInNewContext('gc') as () => void;

const { OrderBook: HftOrderBook } = require('hft-limit-order-book') as { OrderBook: new () => HftBook };

const { values: args } = parseArgs({
  options: {
    seed: { type: 'string', default: '42' },
    ops: { type: 'string', default: '1000000' },
    limit: { type: 'string', default: '60' },
    cancel: { type: 'string', default: '30' },
    market: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '200000' },
    rounds: { type: 'string', default: '3' },
    baseline: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(
    'usage: pnpm bench:engine [--seed N] [--ops N] [--limit W] [--cancel W] [--market W] [--warmup N] [--rounds N] ' +
      '[--baseline path/to/order-book.ts]',
  );
  process.exit(0);
}
const intArg = (name: string, v: string, min: number): number => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}`);
  return n;
};
const SEED = intArg('seed', args.seed, 0);
const OPS = intArg('ops', args.ops, 1);
const W_LIMIT = intArg('limit', args.limit, 0);
const W_CANCEL = intArg('cancel', args.cancel, 0);
const W_MARKET = intArg('market', args.market, 0);
const ROUNDS = intArg('rounds', args.rounds, 1);
const WARMUP = Math.min(intArg('warmup', args.warmup, 0), OPS);
if (W_LIMIT + W_CANCEL + W_MARKET === 0) throw new Error('the mix weights must not all be zero');

// ---------------------------------------------------------------------------------------------------------------
// workload

const OP_LIMIT = 0;
const OP_CANCEL = 1;
const OP_MARKET = 2;

/** mulberry32: small, fast, seeded PRNG */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Workload {
  kind: Uint8Array;
  side: Uint8Array; // 0 buy, 1 sell
  price: Int32Array;
  qty: Int32Array;
  ids: string[]; // order id of op i (limit), or the id to cancel (cancel), '' for market
  accounts: string[];
}

function generate(n: number, seed: number): Workload {
  const rnd = prng(seed);
  const w: Workload = {
    kind: new Uint8Array(n),
    side: new Uint8Array(n),
    price: new Int32Array(n),
    qty: new Int32Array(n),
    ids: new Array<string>(n),
    accounts: Array.from({ length: 1000 }, (_, i) => `acct-${i}`),
  };
  const total = W_LIMIT + W_CANCEL + W_MARKET;
  const recent = new Array<string>(4096);
  let recentCount = 0;
  let mid = 100_000;
  for (let i = 0; i < n; i++) {
    // the mid drifts as a random walk
    const d = rnd();
    if (d < 0.05) mid += 1;
    else if (d < 0.1) mid -= 1;
    const r = rnd() * total;
    const side = rnd() < 0.5 ? 0 : 1;
    w.side[i] = side;
    if (r < W_LIMIT || (r < W_LIMIT + W_CANCEL && recentCount === 0)) {
      w.kind[i] = OP_LIMIT;
      // distance from the mid: mostly passive (exponential, mean ~10 ticks), ~10% aggressive by up to 5 ticks
      const passive = rnd() < 0.9;
      const dist = passive ? Math.floor(-Math.log(1 - rnd()) * 10) : -1 - Math.floor(rnd() * 5);
      w.price[i] = side === 0 ? mid - 1 - dist : mid + 1 + dist;
      w.qty[i] = 1 + Math.floor(rnd() * rnd() * 100);
      const id = `o${i}`;
      w.ids[i] = id;
      recent[recentCount++ & 4095] = id;
    } else if (r < W_LIMIT + W_CANCEL) {
      w.kind[i] = OP_CANCEL;
      // a random order among the last 4096 placed (it may have been filled or cancelled already)
      w.ids[i] = recent[Math.floor(rnd() * Math.min(recentCount, 4096))]!;
    } else {
      w.kind[i] = OP_MARKET;
      w.qty[i] = 1 + Math.floor(rnd() * 30);
      w.ids[i] = `m${i}`;
    }
  }
  return w;
}

// ---------------------------------------------------------------------------------------------------------------
// engines

interface EngineRun {
  /** total quantity filled by takers */
  filled: number;
  finalDepth: string;
}
interface Engine {
  name: string;
  /** run ops [from, to) on a new book; latencies (ns) per op written to `lat` when given */
  run(w: Workload, from: number, to: number, lat: Float64Array | null): EngineRun;
}

const SIDES = ['buy', 'sell'] as const;

type BookClass = typeof OrderBook;

const engineOf = (Book: BookClass, name: string): Engine => ({
  name,
  run(w, from, to, lat) {
    const book = new Book({ market: 'BENCH', defaultStp: 'none' });
    const { kind, side, price, qty, ids, accounts } = w;
    let filled = 0;
    for (let i = from; i < to; i++) {
      const t0 = lat === null ? 0n : process.hrtime.bigint();
      const k = kind[i];
      if (k === OP_LIMIT) {
        filled += book.place({
          id: ids[i]!,
          account: accounts[i % 1000]!,
          side: SIDES[side[i]!]!,
          type: 'limit',
          price: price[i]!,
          quantity: qty[i]!,
          timeInForce: 'GTC',
        }).filledQuantity;
      } else if (k === OP_CANCEL) {
        book.cancel(ids[i]!);
      } else {
        filled += book.place({
          id: ids[i]!,
          account: accounts[i % 1000]!,
          side: SIDES[side[i]!]!,
          type: 'market',
          quantity: qty[i]!,
          timeInForce: 'IOC',
        }).filledQuantity;
      }
      if (lat !== null) lat[i - from] = Number(process.hrtime.bigint() - t0!);
    }
    const d = book.depth(5);
    return {
      filled,
      finalDepth: JSON.stringify({
        bids: d.bids.map((l) => [l.price, l.quantity]),
        asks: d.asks.map((l) => [l.price, l.quantity]),
        orders: book.orderCount,
      }),
    };
  },
});

const ours = engineOf(OrderBook, '@exchange/matching-engine');
const baseline = args.baseline
  ? engineOf(
      ((await import(resolve(args.baseline))) as { OrderBook: BookClass }).OrderBook,
      `baseline (${args.baseline.split('/').pop()})`,
    )
  : undefined;

const hft: Engine = {
  name: 'hft-limit-order-book@7.0.2',
  run(w, from, to, lat) {
    const book = new HftOrderBook();
    const { kind, side, price, qty, ids } = w;
    let filled = 0;
    for (let i = from; i < to; i++) {
      const t0 = lat === null ? 0n : process.hrtime.bigint();
      const k = kind[i];
      if (k === OP_LIMIT) {
        const size = qty[i]!;
        const r = book.limit({ id: ids[i]!, side: SIDES[side[i]!]!, size, price: price[i]! });
        filled += size - r.quantityLeft;
      } else if (k === OP_CANCEL) {
        book.cancel(ids[i]!);
      } else {
        const size = qty[i]!;
        const r = book.market({ side: SIDES[side[i]!]!, size });
        filled += size - r.quantityLeft;
      }
      if (lat !== null) lat[i - from] = Number(process.hrtime.bigint() - t0!);
    }
    const [asks, bids] = book.depth();
    const orders = Object.keys((book as unknown as { orders: Record<string, unknown> }).orders).length;
    return {
      filled,
      finalDepth: JSON.stringify({
        // hft's depth() lists both sides best first
        bids: bids.slice(0, 5).map((l) => [l[0], l[1]]),
        asks: asks.slice(0, 5).map((l) => [l[0], l[1]]),
        orders,
      }),
    };
  },
};

// ---------------------------------------------------------------------------------------------------------------
// measurement

interface Result {
  name: string;
  opsPerSec: number;
  /** operations per CPU-second of the process (user + system, all threads): less sensitive to other processes */
  opsPerCpuSec: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  filled: number;
  finalDepth: string;
}

function percentile(sorted: Float64Array, q: number): number {
  // nearest-rank
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[idx]!;
}

function timerOverheadNs(): number {
  const n = 200_000;
  const lat = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    lat[i] = Number(process.hrtime.bigint() - t0);
  }
  lat.sort();
  return percentile(lat, 0.5);
}

const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');
const fmtUs = (ns: number) => (ns / 1000).toFixed(2);

function main(): void {
  const t = Date.now();
  const w = generate(OPS, SEED);
  const genMs = Date.now() - t;
  const counts = [0, 0, 0];
  for (let i = 0; i < OPS; i++) counts[w.kind[i]!]!++;
  console.log(
    `workload: seed=${SEED} ops=${fmtInt(OPS)} (limit ${fmtInt(counts[0]!)}, cancel ${fmtInt(counts[1]!)}, ` +
      `market ${fmtInt(counts[2]!)}) warmup=${fmtInt(WARMUP)} generated in ${genMs} ms`,
  );
  console.log(`mix weights: limit ${W_LIMIT} / cancel ${W_CANCEL} / market ${W_MARKET}`);
  console.log(
    `node ${process.version}, ${process.platform}/${process.arch}; hrtime.bigint pair overhead p50 ${timerOverheadNs()} ns`,
  );

  const engines = baseline ? [ours, hft, baseline] : [ours, hft];
  for (const e of engines) e.run(w, 0, WARMUP, null);
  fullGc();

  // Rounds alternate the engines so that both see the same (shared, noisy) machine. The table reports, per engine,
  // the median over rounds of each metric, and as ratio the median over rounds of the per-round ratio (the two
  // engines of one round ran seconds apart); every round is printed too.
  const rounds: Result[][] = engines.map(() => []);
  const lat = new Float64Array(OPS);
  for (let round = 1; round <= ROUNDS; round++) {
    const thisRound: Result[] = [];
    for (let k = 0; k < engines.length; k++) {
      const e = engines[k]!;
      fullGc();
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      const r = e.run(w, 0, OPS, null);
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      const cpu = process.cpuUsage(c0);
      const cpuSecs = (cpu.user + cpu.system) / 1e6;
      thisRound.push({
        name: e.name,
        opsPerSec: OPS / secs,
        opsPerCpuSec: OPS / cpuSecs,
        p50: 0,
        p99: 0,
        p999: 0,
        max: 0,
        ...r,
      });
    }
    for (let k = 0; k < engines.length; k++) {
      fullGc();
      const r = engines[k]!.run(w, 0, OPS, lat);
      const res = thisRound[k]!;
      if (r.filled !== res.filled || r.finalDepth !== res.finalDepth) {
        throw new Error(`${res.name}: latency pass disagrees with throughput pass`);
      }
      lat.sort();
      res.p50 = percentile(lat, 0.5);
      res.p99 = percentile(lat, 0.99);
      res.p999 = percentile(lat, 0.999);
      res.max = lat[lat.length - 1]!;
      rounds[k]!.push(res);
    }
    console.log(
      `round ${round}: ` +
        thisRound
          .map(
            (r) =>
              `${r.name.startsWith('@exchange') ? 'ours' : r.name.startsWith('hft') ? 'hft' : 'baseline'} ${fmtInt(r.opsPerSec)} ops/s ` +
              `(${fmtInt(r.opsPerCpuSec)}/cpu-s) ` +
              `p50 ${fmtUs(r.p50)} p99 ${fmtUs(r.p99)} p99.9 ${fmtUs(r.p999)} µs`,
          )
          .join(' | '),
    );
  }
  const median = (xs: number[]) => {
    const s = [...xs].sort((x, y) => x - y);
    return s[(s.length - 1) >> 1]!;
  };
  const results: Result[] = rounds.map((rs) => ({
    ...rs[0]!,
    opsPerSec: median(rs.map((r) => r.opsPerSec)),
    opsPerCpuSec: median(rs.map((r) => r.opsPerCpuSec)),
    p50: median(rs.map((r) => r.p50)),
    p99: median(rs.map((r) => r.p99)),
    p999: median(rs.map((r) => r.p999)),
    max: median(rs.map((r) => r.max)),
  }));
  for (const rs of rounds) {
    if (rs.some((r) => r.filled !== rs[0]!.filled || r.finalDepth !== rs[0]!.finalDepth)) {
      throw new Error(`${rs[0]!.name}: rounds disagree`);
    }
  }

  const rows = [
    [
      `engine (median of ${ROUNDS} rounds)`,
      'ops/s',
      'ops/cpu-s',
      'p50 µs',
      'p99 µs',
      'p99.9 µs',
      'max µs',
      'filled qty',
    ],
    ...results.map((r) => [
      r.name,
      fmtInt(r.opsPerSec),
      fmtInt(r.opsPerCpuSec),
      fmtUs(r.p50),
      fmtUs(r.p99),
      fmtUs(r.p999),
      fmtUs(r.max),
      fmtInt(r.filled),
    ]),
  ];
  const [a, b] = results as [Result, Result];
  const ratio = (f: (r: Result) => number, k = 1) => median(rounds[0]!.map((r, i) => f(r) / f(rounds[k]![i]!)));
  const ratios = {
    opsPerSec: ratio((r) => r.opsPerSec),
    opsPerCpuSec: ratio((r) => r.opsPerCpuSec),
    p50: ratio((r) => r.p50),
    p99: ratio((r) => r.p99),
    p999: ratio((r) => r.p999),
    max: ratio((r) => r.max),
  };
  rows.push([
    'ratio ours/hft (median)',
    `${ratios.opsPerSec.toFixed(2)}x`,
    `${ratios.opsPerCpuSec.toFixed(2)}x`,
    `${ratios.p50.toFixed(3)}x`,
    `${ratios.p99.toFixed(3)}x`,
    `${ratios.p999.toFixed(3)}x`,
    `${ratios.max.toFixed(3)}x`,
    a.filled === b.filled ? 'equal' : 'DIFFERENT',
  ]);
  if (baseline) {
    const c = results[2]!;
    rows.push([
      'ratio ours/baseline (median)',
      `${ratio((r) => r.opsPerSec, 2).toFixed(3)}x`,
      `${ratio((r) => r.opsPerCpuSec, 2).toFixed(3)}x`,
      `${ratio((r) => r.p50, 2).toFixed(3)}x`,
      `${ratio((r) => r.p99, 2).toFixed(3)}x`,
      `${ratio((r) => r.p999, 2).toFixed(3)}x`,
      `${ratio((r) => r.max, 2).toFixed(3)}x`,
      a.filled === c.filled && a.finalDepth === c.finalDepth ? 'equal' : 'DIFFERENT',
    ]);
    if (a.filled !== c.filled || a.finalDepth !== c.finalDepth) process.exitCode = 1;
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]) =>
    `| ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  console.log('');
  console.log(line(rows[0]!));
  console.log(`|${widths.map((wd, i) => (i === 0 ? '-'.repeat(wd + 2) : `${'-'.repeat(wd + 1)}:`)).join('|')}|`);
  for (const r of rows.slice(1)) console.log(line(r));
  console.log('');
  const goalTp = ratios.opsPerSec >= 5;
  const goalP99 = ratios.p99 <= 0.2;
  console.log(`goal >= 5x throughput: ${goalTp ? 'met' : 'NOT met'}; goal <= 1/5 p99: ${goalP99 ? 'met' : 'NOT met'}`);
  console.log(`final book: ${a.finalDepth}`);
  console.log(`final book (top 5 per side, resting orders) identical: ${a.finalDepth === b.finalDepth ? 'yes' : 'NO'}`);
  if (a.filled !== b.filled || a.finalDepth !== b.finalDepth) {
    console.error(`ours:  ${a.finalDepth}\nhft:   ${b.finalDepth}`);
    process.exitCode = 1;
  }
}

main();
