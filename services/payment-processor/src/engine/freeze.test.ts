// A frozen (SIGSTOP), not killed, active replica: its sockets stay open, so the broker and Postgres see nothing wrong
// unless heartbeats and session timeouts say so. It froze inside a command's transaction, holding the market's
// engine_state row lock. The standby must take the market over in under 30 s, and after SIGCONT the journal is the
// reference run's: no gap, no duplicate, no reordering.
import { loadCatalog } from '@exchange/contracts/markets';
import { ROUTES } from '@exchange/contracts/trading';
import type { TestIssuer } from '@exchange/auth-client/testing';
import { generateCommands } from '../testing/commands.ts';
import { Bus, journal, lastSeq, sleep, startProcess, useReplicaEnv, waitFor, type Env } from '../testing/harness.ts';
import { canonical, referenceRun } from '../testing/reference.ts';

const market = loadCatalog().market('BTC-USD')!;
const QUEUE = ROUTES.ordersQueue('BTC-USD');

let env: Env;
let bus: Bus;
let issuer: TestIssuer;
const procs = useReplicaEnv('pp_freeze', {
  ready: (e, b, i) => {
    env = e;
    bus = b;
    issuer = i;
  },
  beforeKill: (p) => p.child.kill('SIGCONT'),
});

/** Sessions of this test's database left inside a transaction (a live process finishes its command in ms). */
const idleInTransaction = async () =>
  Number(
    (
      await env.db.pool.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM pg_stat_activity WHERE datname = $1 AND state = 'idle in transaction'`,
        [env.db.name],
      )
    ).rows[0]!.n,
  );

it('a replica frozen mid-command loses the market to the standby in under 30 s; nothing lost or reordered', async () => {
  const extra = {
    SNAPSHOT_EVERY: '200',
    ORDERS_PREFETCH: '10',
    AUTH_JWKS_URL: issuer.jwksUrl,
    INTERNAL_API_TOKEN: issuer.internalToken,
  };
  const a = await startProcess(env, 'replica-a', extra);
  procs.push(a);
  const b = await startProcess(env, 'replica-b', extra);
  procs.push(b);

  const commands = generateCommands(4000, { seed: 71 });
  const ref = referenceRun(market, commands);
  const warmup = commands.slice(0, 100);
  await bus.publish(QUEUE, warmup);
  await waitFor(
    'warm-up applied',
    async () => (await lastSeq(env.db)) === referenceRun(market, warmup).commands.length,
  );
  const activeId = (await journal(env.db)).at(-1)!.applied_by;
  const active = activeId === a.replicaId ? a : b;
  const standby = active === a ? b : a;

  await bus.publish(QUEUE, commands.slice(100));
  await waitFor('the stream under way', async () => (await lastSeq(env.db)) > 150, 60_000, 10);

  // Freeze it inside a transaction: stop, look, and try again if it happened to be between two commands.
  let frozenAt = 0;
  for (let attempt = 0; attempt < 100 && !frozenAt; attempt++) {
    active.child.kill('SIGSTOP');
    await sleep(300);
    if ((await idleInTransaction()) > 0) frozenAt = Date.now();
    else {
      active.child.kill('SIGCONT');
      await sleep(5 + Math.floor(Math.random() * 30));
    }
  }
  expect(frozenAt).toBeGreaterThan(0);
  const seqAtFreeze = await lastSeq(env.db);

  const tookOver = await waitFor(
    'the standby to apply a command',
    async () => {
      const rows = await env.db.pool.query(
        `SELECT 1 FROM payment.engine_journal WHERE market = 'BTC-USD' AND seq > $1 AND applied_by = $2 LIMIT 1`,
        [seqAtFreeze, standby.replicaId],
      );
      return rows.rowCount ? Date.now() : undefined;
    },
    60_000,
    100,
  ).catch(() => undefined);
  const takeoverMs = tookOver === undefined ? Infinity : tookOver - frozenAt;
  process.stdout.write(`freeze test: the standby took over ${takeoverMs} ms after the freeze\n`);
  // Let the frozen one run again (as SIGCONT after an operator's pause or a VM resume would).
  active.child.kill('SIGCONT');
  expect(takeoverMs).toBeLessThan(30_000);

  await waitFor('everything applied', async () => (await lastSeq(env.db)) === ref.commands.length, 180_000, 200);
  const rows = await journal(env.db);
  expect(rows.map((r) => r.seq)).toEqual(ref.commands.map((_, i) => i + 1));
  expect(rows.map((r) => r.message_id)).toEqual(ref.commands.map((c) => c.messageId));
  expect(canonical(rows.map((r) => r.events))).toBe(canonical(ref.results.map((r) => r.events)));
  // The standby's outbox goes out too, even if the frozen replica was the active relay.
  await waitFor(
    'outbox drained',
    async () =>
      Number(
        (await env.db.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM payment.outbox WHERE sent_at IS NULL`))
          .rows[0]!.n,
      ) === 0,
    60_000,
    200,
  );
}, 420_000);
