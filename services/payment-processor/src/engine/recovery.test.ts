// kill -9 mid-stream: the service runs as a child process (`node src/main.ts`) and is SIGKILLed twice while it works
// through a command stream; a fresh process each time recovers from snapshot + journal. At the end the journal, the
// book and every emitted trade equal an uninterrupted in-memory run over the same commands: nothing lost, nothing
// doubled.
import { loadCatalog } from '@exchange/contracts/markets';
import { ROUTES } from '@exchange/contracts/trading';
import type { Envelope } from '@exchange/contracts';
import { generateCommands } from '../testing/commands.ts';
import {
  Bus,
  createEnv,
  journal,
  lastSeq,
  outboxMessages,
  startProcess,
  waitFor,
  type Env,
  type ServiceProcess,
} from '../testing/harness.ts';
import type { JournalCommand } from './core.ts';
import { canonical, referenceRun, timeless } from '../testing/reference.ts';

const market = loadCatalog().market('BTC-USD')!;
const QUEUE = ROUTES.ordersQueue('BTC-USD');
const N = 500;

let env: Env;
let bus: Bus;
const procs: ServiceProcess[] = [];

beforeAll(async () => {
  env = await createEnv('pp_recovery');
  bus = await Bus.open(env.vhost.url);
});

afterAll(async () => {
  for (const p of procs) await p.kill();
  await bus.close();
  await env.drop();
});

async function inboxCount(): Promise<number> {
  const { rows } = await env.db.pool.query<{ n: string }>('SELECT count(*) AS n FROM payment.inbox WHERE queue = $1', [
    QUEUE,
  ]);
  return Number(rows[0]!.n);
}

const dedupeById = (xs: Envelope[]) => {
  const seen = new Set<string>();
  return xs.filter((m) => (seen.has(m.id) ? false : (seen.add(m.id), true)));
};

it('recovers exactly after kill -9 (twice) mid-stream', async () => {
  const commands = generateCommands(N, { seed: 21 });
  const extra = { SNAPSHOT_EVERY: '50', ORDERS_PREFETCH: '20' };

  // The stream goes out in three parts, the next one after each kill. A batched replica can apply a few hundred
  // commands between two progress polls on a busy machine; with everything published up front, r2 once finished the
  // whole stream before its kill and r3 had nothing left to do. Each replica now always has work of its own, and the
  // published order (what the reference replays) is the same.
  const p1 = await startProcess(env, 'r1', extra);
  procs.push(p1);
  await bus.publish(QUEUE, commands.slice(0, 250));
  await waitFor('r1 progress', async () => (await lastSeq(env.db)) >= 150, 60_000, 20);
  await p1.kill('SIGKILL');
  const killedAt1 = await lastSeq(env.db);
  expect(killedAt1).toBeLessThanOrEqual(250);

  await bus.publish(QUEUE, commands.slice(250, 400));
  const p2 = await startProcess(env, 'r2', extra);
  procs.push(p2);
  await waitFor('r2 progress', async () => (await lastSeq(env.db)) >= killedAt1 + 120, 60_000, 20);
  await p2.kill('SIGKILL');
  const killedAt2 = await lastSeq(env.db);
  expect(killedAt2).toBeLessThanOrEqual(400);

  await bus.publish(QUEUE, commands.slice(400));

  const p3 = await startProcess(env, 'r3', extra);
  procs.push(p3);
  await waitFor('every command consumed', async () => (await inboxCount()) === commands.length, 90_000, 100);
  await waitFor('outbox drained', async () => (await outboxMessages(env.db)).every((o) => o.sent), 30_000);
  // graceful stop: consumers stop, the engine snapshots its final state
  await p3.kill('SIGTERM');
  expect((await p3.exited).code).toBe(0);

  const rows = await journal(env.db);
  // single writer, gapless, each command once
  expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i + 1));
  expect(new Set(rows.map((r) => r.message_id)).size).toBe(rows.length);
  const writers = [...new Set(rows.map((r) => r.applied_by))];
  expect(writers).toEqual(['r1', 'r2', 'r3']);

  // The broker redelivers the unacknowledged commands of a killed consumer first, in their order, so the engine sees
  // exactly the published order: the uninterrupted run is the reference over the published stream.
  // (with the id epoch each replica applied its commands in: one per load, so at least three)
  const epochs = rows.map((r) => (r.command as JournalCommand).epoch);
  expect(new Set(epochs).size).toBeGreaterThanOrEqual(3);
  const ref = referenceRun(market, commands, undefined, epochs);
  expect(rows.map((r) => r.message_id)).toEqual(ref.commands.map((c) => c.messageId));
  expect(canonical(rows.map((r) => r.command))).toBe(canonical(ref.commands));
  expect(canonical(rows.map((r) => r.events))).toBe(canonical(ref.results.map((r) => r.events)));

  // the book: the final snapshot written on shutdown equals the reference engine's
  const { rows: snaps } = await env.db.pool.query<{ seq: string; state: unknown }>(
    `SELECT seq, state::jsonb AS state FROM payment.engine_snapshots WHERE market = 'BTC-USD' ORDER BY seq DESC LIMIT 1`,
  );
  expect(Number(snaps[0]!.seq)).toBe(ref.commands.length);
  expect(canonical(snaps[0]!.state)).toBe(canonical(ref.core.snapshot()));

  // emitted trades: the outbox holds each trade and settlement once, exactly the reference's
  const outbox = await outboxMessages(env.db);
  const dupTypes = outbox
    .filter((o, i) => outbox.findIndex((x) => x.message.id === o.message.id) !== i)
    .map((o) => o.message.type);
  expect(dupTypes).toEqual([]);
  const tradeTypes = new Set(['engine.trade-executed', 'wallet.settle-trade', 'wallet.release-hold']);
  const mine = outbox.filter((o) => tradeTypes.has(o.message.type)).map((o) => timeless(o.message));
  const want = ref.messages.filter((m) => tradeTypes.has(m.message.type)).map((m) => timeless(m.message));
  expect(mine.length).toBeGreaterThan(50);
  expect(mine).toEqual(want);

  // what reached the wallet (at-least-once: a relay killed between confirm and mark-sent republishes; the wallet's
  // inbox drops the copy by message id) is, per message id, exactly the reference
  const walletWant = ref.messages.filter((m) => m.routingKey === ROUTES.walletSettlementQueue);
  await waitFor(
    'wallet messages delivered',
    async () => dedupeById(bus.wallet.map((c) => c.message)).length >= walletWant.length,
  );
  expect(dedupeById(bus.wallet.map((c) => c.message)).map(timeless)).toEqual(
    walletWant.map((m) => timeless(m.message)),
  );
}, 240_000);
