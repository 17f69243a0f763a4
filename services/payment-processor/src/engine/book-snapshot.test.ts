// The throttled book snapshots of a real engine on a real database: while commands flow, the batches carry every
// snapshot (no transaction of its own queues a batch behind the market's lock), and once they stop one trailing
// snapshot publishes the last book. Own database; the engine is driven directly, in transactions of its own.
import type { Envelope } from '@exchange/contracts';
import { silentLogger } from '@exchange/messaging';
import { loadCatalog } from '@exchange/contracts/markets';
import { createTestDatabase, type TestDatabase } from '@exchange/db/testing';
import { runMigrations } from '../migrate.ts';
import { generateCommands } from '../testing/commands.ts';
import { sleep, waitFor } from '../testing/harness.ts';
import { MarketEngine, TRAILING_BOOK_GRACE_MS } from './market-engine.ts';
import type { OutgoingMessage } from './messages.ts';
import { PostgresEngineStore, type AppliedCommand } from './store.ts';
import type pg from 'pg';

const INTERVAL_MS = 100;

/** The engine's store, recording which book snapshots went out with a batch and which in a transaction of their own. */
class RecordingStore extends PostgresEngineStore {
  readonly carried: number[] = [];
  readonly alone: number[] = [];
  /** When each batch's write began: right after the engine decided whether it carries a snapshot (no await between). */
  readonly batches: number[] = [];
  /** Whether the last batch carried a book snapshot (then its book needs no trailing one). */
  lastBatchCarried = false;
  override async append(
    tx: pg.PoolClient,
    market: string,
    applied: AppliedCommand[],
    messages: OutgoingMessage[],
  ): Promise<void> {
    const at = Date.now();
    this.batches.push(at);
    await super.append(tx, market, applied, messages);
    this.lastBatchCarried = messages.some((m) => m.message.type === 'market.book-snapshot');
    if (this.lastBatchCarried) this.carried.push(at);
  }
  override async enqueue(tx: pg.PoolClient, messages: OutgoingMessage[]): Promise<void> {
    // when the engine chose to send it (no await between that choice and this call), not when it was written: a
    // batch deciding in between, after the choice, rightly carries none
    const at = Date.now();
    await super.enqueue(tx, messages);
    for (const m of messages) if (m.message.type === 'market.book-snapshot') this.alone.push(at);
  }
}

let db: TestDatabase;
let engine: MarketEngine | undefined;
let late: MarketEngine | undefined;

beforeAll(async () => {
  db = await createTestDatabase('pp_book');
  await runMigrations(db.pool);
});
/** A market's engine with book snapshots every `INTERVAL_MS`, restored from the database. */
async function startEngine(market: string, store: RecordingStore): Promise<MarketEngine> {
  const e = new MarketEngine({
    market: loadCatalog(undefined).market(market)!,
    pool: db.pool,
    store,
    replicaId: 'replica-a',
    snapshotEvery: 10_000,
    bookSnapshotIntervalMs: INTERVAL_MS,
    bookSnapshotDepth: 10,
    logger: silentLogger,
  });
  await e.restore();
  return e;
}

afterAll(async () => {
  engine?.stop();
  late?.stop();
  await db.drop();
});

it('lets the batches carry the book snapshots while commands flow, then sends one trailing snapshot', async () => {
  const store = new RecordingStore(db.pool);
  engine = await startEngine('BTC-USD', store);
  const FLOW = 120;
  const commands: Envelope[] = generateCommands(FLOW + 20, { seed: 31 });

  // One command every 10 ms or so for over a second: a snapshot falls due about every 100 ms, and the next batch
  // normally comes well within the grace after it. A snapshot may go alone during the flow only where the commands
  // left a gap longer than the grace (a stalled machine), never merely because one fell due.
  const handled: number[] = [];
  const apply = async (c: Envelope) => {
    await store.transaction((tx) => engine!.handle(c, tx));
    handled.push(Date.now());
  };
  for (const c of commands.slice(0, FLOW)) {
    await apply(c);
    await sleep(10);
  }
  const last = handled[handled.length - 1]!;
  const flowed = last - handled[0]!;
  expect(store.carried.length).toBeGreaterThanOrEqual(Math.floor(flowed / INTERVAL_MS / 2));
  const duringFlow = store.alone.filter((t) => t <= last);
  // A batch deciding within the grace after one fell due would have carried it. Measured between the batches'
  // decisions, not their commits (a slow commit must not shorten the gap); 2 ms for timer and clock rounding.
  for (const t of duringFlow) {
    const before = store.batches.filter((b) => b <= t).at(-1)!;
    const after = store.batches.find((b) => b > t) ?? Number.POSITIVE_INFINITY;
    expect(after - before).toBeGreaterThanOrEqual(TRAILING_BOOK_GRACE_MS - 2);
  }
  expect(duringFlow.length).toBeLessThan(store.carried.length);

  // The flow's last batch may have carried a snapshot itself (one fell due just then): its book needs no trailing one.
  // The next command, applied at once, is then well inside the interval, so only a trailing snapshot can publish it.
  let next = FLOW;
  while (store.lastBatchCarried && next < commands.length) await apply(commands[next++]!);
  expect(store.lastBatchCarried).toBe(false);

  // Quiet now: one trailing snapshot follows, with the last command's book, and no other.
  await waitFor('the trailing snapshot', async () => store.alone.length > duringFlow.length);
  await sleep(3 * INTERVAL_MS);
  expect(store.alone.length).toBe(duringFlow.length + 1);
  const { rows } = await db.pool.query<{ message: { payload: { seq: string } } }>(
    `SELECT message FROM payment.outbox WHERE type = 'market.book-snapshot' ORDER BY sequence DESC LIMIT 1`,
  );
  expect(rows[0]!.message.payload.seq).toBe(String(engine.loaded!.orderBook.seq));
});

it('sends no snapshot alone when its timer fires late, just before the next batch would carry it', async () => {
  const store = new RecordingStore(db.pool);
  late = await startEngine('ETH-USD', store);
  const commands = generateCommands(40, { seed: 37, market: 'ETH-USD' });
  const apply = async () => {
    await store.transaction((tx) => late!.handle(commands.shift()!, tx));
    return store.lastBatchCarried;
  };
  const spin = (until: number) => {
    let n = 0;
    while (Date.now() < until) n++;
    return n;
  };

  // The arrangement needs each step within tens of milliseconds; on a stalled machine it is tried again.
  let arranged = false;
  for (let attempt = 0; attempt < 5 && !arranged; attempt++) {
    await sleep(INTERVAL_MS + TRAILING_BOOK_GRACE_MS + 50); // the last snapshot is past due: the next batch carries
    const aloneBefore = store.alone.length;
    // c1 carries one; c2 arms the trailing timer for c1's snapshot + interval + grace
    if (!(await apply()) || (await apply())) continue;
    const l1 = store.carried.at(-1)!;
    // c3 carries the next one before that timer fires; c4 changes the book again and finds the timer armed
    await sleep(Math.max(0, l1 + INTERVAL_MS + 5 - Date.now()));
    if (!(await apply())) continue;
    const l2 = store.carried.at(-1)!;
    if (await apply()) continue;
    if (store.alone.length !== aloneBefore || Date.now() > l2 + INTERVAL_MS) continue;
    // the event loop is busy past c3's snapshot + interval: the timer, due at c1's, fires late, inside c3's grace
    spin(l2 + INTERVAL_MS + 10);
    arranged = true;
    await sleep(TRAILING_BOOK_GRACE_MS / 2); // a snapshot sent now would be written by then
    expect(store.alone.slice(aloneBefore).filter((t) => t < l2 + INTERVAL_MS + TRAILING_BOOK_GRACE_MS)).toEqual([]);
    // the trailing snapshot still follows, after the grace
    await waitFor('the trailing snapshot', async () => store.alone.length > aloneBefore);
    expect(store.alone[aloneBefore]!).toBeGreaterThanOrEqual(l2 + INTERVAL_MS + TRAILING_BOOK_GRACE_MS - 2);
  }
  expect(arranged).toBe(true);
});
