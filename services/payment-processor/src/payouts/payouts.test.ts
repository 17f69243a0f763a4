// payout.requested → simulated rail → payment.payouts + payout.completed/failed on `wallet.payouts`, through the real
// broker. Idempotent by message id and by withdrawal id; the rail's answer is deterministic per withdrawal.
import { PayoutRequestedV1, ROUTES } from '@exchange/contracts/trading';
import type { Envelope } from '@exchange/contracts';
import type { Runtime } from '../runtime.ts';
import { Bus, createEnv, startInProcess, stopInProcess, waitFor, type Env } from '../testing/harness.ts';
import { uuidv5 } from '../uuid.ts';
import { railDecision } from './rail.ts';

let env: Env;
let rt: Runtime;
let bus: Bus;
const RATE = 0.3;
const SEED = 'payout-test';

beforeAll(async () => {
  env = await createEnv('pp_payouts');
  bus = await Bus.open(env.vhost.url);
  rt = await startInProcess(env, {
    PAYOUT_FAILURE_RATE: String(RATE),
    PAYOUT_SEED: SEED,
    PAYOUT_DELAY_MS: '20',
    MARKETS: 'BTC-USD',
  });
});

afterAll(async () => {
  await stopInProcess(rt);
  await bus.close();
  await env.drop();
});

function request(i: number, over: Partial<Record<string, string>> = {}): Envelope {
  return PayoutRequestedV1.create(
    {
      withdrawalId: uuidv5(`withdrawal:${i}`),
      userId: uuidv5('payout-user'),
      asset: 'BTC',
      amount: '1500000',
      address: 'bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq',
      requestedAt: '2026-01-01T00:00:00.000Z',
      ...over,
    },
    { producer: 'wallet', id: uuidv5(`payout-request:${i}:${over.withdrawalId ?? ''}`) },
  );
}

async function payoutRows() {
  const { rows } = await env.db.pool.query<{
    withdrawal_id: string;
    status: string;
    rail_tx_id: string | null;
    failure_reason: string | null;
    amount: string;
  }>('SELECT withdrawal_id, status, rail_tx_id, failure_reason, amount FROM payment.payouts ORDER BY withdrawal_id');
  return rows;
}

async function outboxFor(withdrawalId: string): Promise<Envelope[]> {
  const { rows } = await env.db.pool.query<{ message: Envelope }>(
    `SELECT message FROM payment.outbox WHERE message->'payload'->>'withdrawalId' = $1 ORDER BY sequence`,
    [withdrawalId],
  );
  return rows.map((r) => r.message);
}

it('pays out through the rail, records it and answers the wallet per the rail decision', async () => {
  const reqs = Array.from({ length: 30 }, (_, i) => request(i));
  await bus.publish(ROUTES.payoutsQueue, reqs);
  await waitFor('all answered', async () => bus.payouts.length >= reqs.length, 60_000);
  const rows = await payoutRows();
  expect(rows).toHaveLength(30);
  for (const r of reqs) {
    const p = r.payload as { withdrawalId: string; asset: string; amount: string; address: string };
    const want = railDecision(p, { failureRate: RATE, seed: SEED });
    const row = rows.find((x) => x.withdrawal_id === p.withdrawalId)!;
    expect(row.status).toBe(want.status);
    expect(row.amount).toBe('1500000');
    const answers = bus.payouts.filter(
      (c) => (c.message.payload as { withdrawalId: string }).withdrawalId === p.withdrawalId,
    );
    expect(answers).toHaveLength(1);
    const answer = answers[0]!.message;
    expect(answer.causationId).toBe(r.id);
    if (want.status === 'completed') {
      expect(answer.type).toBe('payout.completed');
      expect((answer.payload as { railTxId: string }).railTxId).toBe(want.railTxId);
      expect(row.rail_tx_id).toBe(want.railTxId);
    } else {
      expect(answer.type).toBe('payout.failed');
      expect((answer.payload as { reason: string }).reason).toBe(want.reason);
    }
  }
  expect(new Set(rows.map((r) => r.status))).toEqual(new Set(['completed', 'failed']));
  const metrics = await rt.registry.metrics();
  expect(metrics).toMatch(/payouts_total\{result="completed"\} \d+/);
});

it('pays a withdrawal once however often it is requested (same message, or a new message for it)', async () => {
  const r = request(100);
  const withdrawalId = (r.payload as { withdrawalId: string }).withdrawalId;
  await bus.publish(ROUTES.payoutsQueue, [r]);
  await waitFor('answered', async () => (await outboxFor(withdrawalId)).length === 1);
  const before = { rows: await payoutRows(), outbox: await outboxFor(withdrawalId) };
  const again = { ...r, id: uuidv5('another-message-same-withdrawal') };
  await bus.publish(ROUTES.payoutsQueue, [r, again, r]);
  await waitFor('duplicates consumed', async () => {
    const { rows } = await env.db.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM payment.inbox WHERE queue = 'payouts' AND message_id = $1`,
      [again.id],
    );
    return rows[0]!.n === '1';
  });
  // a marker payout after the duplicates: once it is answered, they have all been handled
  const marker = request(101);
  await bus.publish(ROUTES.payoutsQueue, [marker]);
  await waitFor(
    'marker answered',
    async () => (await outboxFor((marker.payload as { withdrawalId: string }).withdrawalId)).length === 1,
  );
  await waitFor('inbox settled', async () => {
    const { rows } = await env.db.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM payment.inbox WHERE queue = 'payouts'`,
    );
    return rows[0]!.n === String(30 + 3);
  });
  expect(await outboxFor(withdrawalId)).toEqual(before.outbox);
  expect((await payoutRows()).filter((x) => x.withdrawal_id === withdrawalId)).toEqual(
    before.rows.filter((x) => x.withdrawal_id === withdrawalId),
  );
});

it('fails a payout the rail cannot send (unsupported asset, malformed address)', async () => {
  const badAddress = request(200, { address: 'not-an-address' });
  const badAsset = request(201, { asset: 'DOGE' });
  await bus.publish(ROUTES.payoutsQueue, [badAddress, badAsset]);
  for (const r of [badAddress, badAsset]) {
    const id = (r.payload as { withdrawalId: string }).withdrawalId;
    const [answer] = await waitFor('answered', async () => {
      const o = await outboxFor(id);
      return o.length ? o : undefined;
    });
    expect(answer!.type).toBe('payout.failed');
    expect((answer!.payload as { reason: string }).reason).toMatch(
      /RAIL_REJECTED: (invalid BTC address|unsupported asset DOGE)/,
    );
  }
});
