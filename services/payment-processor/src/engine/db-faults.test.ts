// Faults mid-command: the service's Postgres connections are killed again and again (and its broker connection cut
// a few times) while it works through a command stream (a command's transaction dies half-way, or at commit after the in-memory engine already applied
// it). Failed commands go through the retry queues and come back later; the engine rebuilds itself from the journal
// before the next command. In the end every command is applied exactly once, and the journal, the engine state and
// the emitted trades are exactly those of a clean run over the journal's command order: nothing lost or doubled.
import { loadCatalog } from '@exchange/contracts/markets';
import { ROUTES } from '@exchange/contracts/trading';
import type { Runtime } from '../runtime.ts';
import { generateCommands } from '../testing/commands.ts';
import {
  Bus,
  type Env,
  journal,
  outboxMessages,
  outboxStall,
  sleep,
  startInProcess,
  stopInProcess,
  useEngineEnv,
  waitFor,
} from '../testing/harness.ts';
import { canonical, timeless } from '../testing/reference.ts';
import { MarketCore, type JournalCommand } from './core.ts';
import { messagesFor } from './messages.ts';

const market = loadCatalog().market('BTC-USD')!;
const QUEUE = ROUTES.ordersQueue('BTC-USD');

let env: Env;
let bus: Bus;
let rt: Runtime | undefined;

useEngineEnv('pp_dbfaults', {
  ready: (e, b) => {
    env = e;
    bus = b;
  },
  runtime: () => rt,
});

it('loses and doubles nothing when database and broker connections die mid-command', async () => {
  // One command per transaction here, so the faults below land inside commands on an idle machine too (group commit
  // under the same faults is covered by packages/messaging batch.test.ts and the chaos suite).
  rt = await startInProcess(env, {
    SNAPSHOT_EVERY: '25',
    REPLICA_ID: 'faulty',
    DATABASE_POOL_MAX: '4',
    CONSUMER_BATCH_SIZE: '1',
  });
  const commands = generateCommands(1500, { seed: 44 });
  await bus.publish(QUEUE, commands);

  // Faults start at once and the stream is long enough (several seconds on an idle machine) that they land while
  // commands are being applied; the reload assertion below proves they did. Whether a kill lands inside a command
  // rather than between two is chance, so the faults go on (while the stream lasts) until one has.
  let killed = 0;
  let brokerCuts = 0;
  const reloaded = async () =>
    /engine_reloads_total\{market="BTC-USD",reason="(recovery|resync)"\} [1-9]/.test(await rt!.registry.metrics());
  const until = Date.now() + 6_000;
  const latest = Date.now() + 60_000;
  let nextCut = Date.now() + 250;
  while (Date.now() < until || (Date.now() < latest && !(await reloaded()))) {
    if (Date.now() > nextCut) {
      // and the broker connection too: unacked commands go back to the queue and are redelivered
      brokerCuts += await env.vhost.closeConnections({ namePrefix: 'payment-processor@faulty', timeoutMs: 2_000 });
      nextCut = Date.now() + 2_000;
    }
    const { rows } = await env.db.pool.query<{ n: string }>(
      `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS n FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = 'payment-processor:faulty'
          AND state IN ('active', 'idle in transaction')`,
    );
    killed += Number(rows[0]!.n);
    await sleep(40);
  }
  expect(killed).toBeGreaterThan(0); // and the reload below shows a kill landed inside a command
  expect(brokerCuts).toBeGreaterThan(0);

  // every message consumed once (retries come back within seconds)
  await waitFor(
    'all commands consumed',
    async () => {
      const { rows } = await env.db.pool.query<{ n: string }>(
        'SELECT count(*) AS n FROM payment.inbox WHERE queue = $1',
        [QUEUE],
      );
      return Number(rows[0]!.n) === commands.length;
    },
    90_000,
    200,
  );
  await waitFor('outbox drained', async () => (await outboxMessages(env.db)).every((o) => o.sent), 30_000).catch(
    async (err: Error) => {
      throw new Error(`${err.message}: ${await outboxStall(env.db, rt)}`);
    },
  );

  const rows = await journal(env.db);
  expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i + 1));
  const ids = rows.map((r) => r.message_id);
  expect(new Set(ids).size).toBe(ids.length);
  const published = new Set(commands.map((c) => c.id));
  expect(ids.every((id) => published.has(id))).toBe(true);
  // each order placed at most once, and every order of the stream reached the engine
  const placed = rows.flatMap((r) => {
    const c = r.command as JournalCommand;
    return c.kind === 'place' ? [c.order.orderId] : [];
  });
  expect(new Set(placed).size).toBe(placed.length);
  const orderIds = new Set(
    commands.filter((c) => c.type === 'engine.place-order').map((c) => (c.payload as { orderId: string }).orderId),
  );
  expect(new Set(placed)).toEqual(orderIds);

  // a clean run over the journal's commands reproduces the journal's events, the outbox's trades and the engine
  const clean = new MarketCore(market);
  const want: unknown[] = [];
  rows.forEach((r) => {
    const cmd = r.command as JournalCommand;
    const res = clean.apply(cmd);
    expect(canonical(res.events)).toBe(canonical(r.events));
    want.push(
      ...messagesFor(market, cmd, res, '2026-01-01T00:00:00.000Z').filter(
        (m) => m.message.type !== 'market.book-snapshot',
      ),
    );
  });
  const outbox = (await outboxMessages(env.db)).filter((o) => o.message.type !== 'market.book-snapshot');
  expect(outbox.map((o) => timeless(o.message))).toEqual(
    (want as Array<{ message: Parameters<typeof timeless>[0] }>).map((m) => timeless(m.message)),
  );
  // the engine did have to rebuild itself from the journal after failed commands
  expect(await rt.registry.metrics()).toMatch(
    /engine_reloads_total\{market="BTC-USD",reason="(recovery|resync)"\} [1-9]/,
  );
  await stopInProcess(rt); // graceful: writes the final snapshot
  rt = undefined;
  const { rows: snap } = await env.db.pool.query<{ state: unknown }>(
    `SELECT state::jsonb AS state FROM payment.engine_snapshots WHERE market = 'BTC-USD' ORDER BY seq DESC LIMIT 1`,
  );
  expect(canonical(snap[0]!.state)).toBe(canonical(clean.snapshot()));
}, 180_000);
