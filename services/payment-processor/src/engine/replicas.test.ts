// Two replicas on one market queue (single active consumer): only one consumes; kill -9 it and the other takes over
// and continues the journal from where it ended, with no gap and no duplicate sequence number.
import { loadCatalog } from '@exchange/contracts/markets';
import { ROUTES } from '@exchange/contracts/trading';
import type { TestIssuer } from '@exchange/auth-client/testing';
import { generateCommands } from '../testing/commands.ts';
import {
  Bus,
  journal,
  lastSeq,
  MGMT_URL,
  startProcess,
  useReplicaEnv,
  waitFor,
  type Env,
  type ServiceProcess,
} from '../testing/harness.ts';
import { canonical, referenceRun } from '../testing/reference.ts';
import { uuidv5 } from '../uuid.ts';

const market = loadCatalog().market('BTC-USD')!;
const QUEUE = ROUTES.ordersQueue('BTC-USD');

let env: Env;
let bus: Bus;
let issuer: TestIssuer;
const procs = useReplicaEnv('pp_replicas', {
  ready: (e, b, i) => {
    env = e;
    bus = b;
    issuer = i;
  },
});

interface Status {
  replica: string;
  markets: Array<{ market: string; consumer: string; lastSeq: number; loadedSeq: number | null }>;
}

async function status(p: ServiceProcess): Promise<Status> {
  const token = issuer.sign({ sub: uuidv5('admin'), roles: ['admin'], mfaAt: Math.floor(Date.now() / 1000) });
  const res = await fetch(`http://127.0.0.1:${p.port}/api/v1/admin/engine/markets`, {
    headers: { authorization: `Bearer ${token}` },
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Status;
}

it('gives the market to one replica at a time; the other takes over after kill -9 without a gap', async () => {
  const extra = {
    SNAPSHOT_EVERY: '40',
    ORDERS_PREFETCH: '10',
    RABBITMQ_MANAGEMENT_URL: MGMT_URL,
    AUTH_JWKS_URL: issuer.jwksUrl,
    INTERNAL_API_TOKEN: issuer.internalToken,
  };
  const a = await startProcess(env, 'replica-a', extra);
  procs.push(a);
  const b = await startProcess(env, 'replica-b', extra);
  procs.push(b);
  const byName = new Map([
    ['replica-a', a],
    ['replica-b', b],
  ]);

  const commands = generateCommands(400, { seed: 33 });
  const first = commands.slice(0, 200);
  const second = commands.slice(200);
  const ref = referenceRun(market, commands);
  const refFirst = referenceRun(market, first);

  await bus.publish(QUEUE, first);
  await waitFor('first half applied', async () => (await lastSeq(env.db)) === refFirst.commands.length, 60_000);
  let rows = await journal(env.db);
  const writers = [...new Set(rows.map((r) => r.applied_by))];
  expect(writers).toHaveLength(1); // only one replica consumed
  const active = byName.get(writers[0]!)!;
  const standby = active === a ? b : a;

  // The management API (stats refresh every few seconds) confirms it: one active, one waiting.
  await waitFor(
    'consumer states reported',
    async () =>
      (await status(active)).markets[0]!.consumer === 'active' &&
      (await status(standby)).markets[0]!.consumer === 'standby',
    30_000,
    500,
  );
  const standbyBefore = (await status(standby)).markets[0]!;
  expect(standbyBefore.lastSeq).toBe(refFirst.commands.length);

  // kill -9 the active replica while the second half streams in
  await bus.publish(QUEUE, second);
  await waitFor(
    'some of the second half applied',
    async () => (await lastSeq(env.db)) > refFirst.commands.length + 20,
    60_000,
    10,
  );
  await active.kill('SIGKILL');
  await waitFor('everything applied', async () => (await lastSeq(env.db)) === ref.commands.length, 90_000);

  rows = await journal(env.db);
  expect(rows.map((r) => r.seq)).toEqual(ref.commands.map((_, i) => i + 1)); // no gap, no duplicate seq
  expect(rows.map((r) => r.message_id)).toEqual(ref.commands.map((c) => c.messageId));
  expect(canonical(rows.map((r) => r.events))).toBe(canonical(ref.results.map((r) => r.events)));
  // one switch: the killed replica's prefix, then the survivor's suffix
  const switchAt = rows.findIndex((r) => r.applied_by === standby.replicaId);
  expect(switchAt).toBeGreaterThan(refFirst.commands.length);
  expect(rows.slice(0, switchAt).every((r) => r.applied_by === active.replicaId)).toBe(true);
  expect(rows.slice(switchAt).every((r) => r.applied_by === standby.replicaId)).toBe(true);

  const after = (await status(standby)).markets[0]!;
  expect(after.loadedSeq).toBe(ref.commands.length);
  await waitFor(
    'survivor reported active',
    async () => (await status(standby)).markets[0]!.consumer === 'active',
    30_000,
    500,
  );
}, 240_000);
