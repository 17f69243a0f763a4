// A batch's order-id claims (engine_orders) are read once, decided in memory in command order and written once: the
// outcome must be what one command at a time gives, across duplicates inside the batch and claims of earlier batches.
import { loadCatalog } from '@exchange/contracts/markets';
import { CancelOrderV1, PlaceOrderV1, ROUTES } from '@exchange/contracts/trading';
import type { Envelope } from '@exchange/contracts';
import { AT, orderId, userId } from '../testing/commands.ts';
import { Bus, createEnv, journal, startInProcess, stopInProcess, waitFor, type Env } from '../testing/harness.ts';
import type { Runtime } from '../runtime.ts';
import { canonical, referenceRun } from '../testing/reference.ts';
import type { JournalCommand } from './core.ts';
import { uuidv5 } from '../uuid.ts';

const market = loadCatalog().market('BTC-USD')!;
const QUEUE = ROUTES.ordersQueue('BTC-USD');
const SEED = 77;

let env: Env;
let rt: Runtime;
let bus: Bus;

beforeAll(async () => {
  env = await createEnv('pp_claims');
  bus = await Bus.open(env.vhost.url);
  rt = await startInProcess(env);
}, 60_000);

afterAll(async () => {
  await stopInProcess(rt);
  await bus.close();
  await env.drop();
});

let n = 0;
const meta = () => ({ producer: 'order', id: uuidv5(`claims:${n++}`), occurredAt: AT });
const place = (i: number, side: 'buy' | 'sell', price: number) =>
  PlaceOrderV1.create(
    {
      orderId: orderId(SEED, i),
      userId: userId(SEED, i),
      market: 'BTC-USD',
      side,
      type: 'limit',
      priceTicks: String(price),
      quantityLots: '5',
      timeInForce: 'GTC',
      postOnly: false,
      holdAmount: side === 'buy' ? String(price * 5 * 100) : '5000000',
      acceptedAt: AT,
    },
    meta(),
  );
const cancel = (i: number) =>
  CancelOrderV1.create(
    { orderId: orderId(SEED, i), userId: userId(SEED, i), market: 'BTC-USD', reason: 'user', requestedAt: AT },
    meta(),
  );

async function batchMetric(): Promise<{ sum: number; count: number }> {
  const values = (await rt.registry.getSingleMetric('engine_batch_commands')!.get()).values;
  const get = (suffix: string) =>
    values.find((v) => (v as { metricName?: string }).metricName === `engine_batch_commands_${suffix}`)?.value ?? 0;
  return { sum: get('sum'), count: get('count') };
}

it('decides duplicates, pre-cancels and earlier batches’ claims in memory exactly as one command at a time does', async () => {
  const A = 0;
  const B = 1;
  const C = 2;
  // an earlier batch: A placed, B cancelled before its place arrives
  const first: Envelope[] = [place(A, 'buy', 30_000), cancel(B)];
  await bus.publishPack(QUEUE, first);
  await waitFor('the first batch journaled', async () => (await journal(env.db)).length === 2);
  const before = await batchMetric();

  // one batch: A placed again (another message id), B's place (pre-cancelled), A cancelled twice, C placed twice,
  // B cancelled again
  const second: Envelope[] = [
    place(A, 'buy', 30_000),
    place(B, 'sell', 30_010),
    cancel(A),
    cancel(A),
    place(C, 'sell', 30_020),
    place(C, 'sell', 30_020),
    cancel(B),
  ];
  await bus.publishPack(QUEUE, second);
  const expected = referenceRun(market, [...first, ...second]).commands;
  expect(expected.map((c) => c.kind)).toEqual(['place', 'cancel', 'place', 'cancel', 'place']);
  await waitFor('the second batch journaled', async () => (await batchMetric()).count === before.count + 1);

  const rows = await journal(env.db);
  const epochless = rows.map((r) => {
    const { epoch: _e, ...cmd } = r.command as JournalCommand & { epoch?: string };
    return cmd;
  });
  expect(canonical(epochless)).toBe(canonical(expected));
  // the seven commands went through the batched path as one transaction, not split
  expect(await batchMetric()).toEqual({ sum: before.sum + 7, count: before.count + 1 });
  const consumed = (await rt.registry.getSingleMetric('messages_consumed_total')!.get()).values;
  expect(consumed.find((v) => v.labels.queue === QUEUE && v.labels.outcome === 'batch_split')).toBeUndefined();

  const { rows: claims } = await env.db.pool.query<{ order_id: string; placed_seq: string; cancel_seq: string }>(
    'SELECT order_id, placed_seq::text, cancel_seq::text FROM payment.engine_orders ORDER BY placed_seq',
  );
  expect(claims).toEqual([
    { order_id: orderId(SEED, A), placed_seq: '1', cancel_seq: '4' },
    { order_id: orderId(SEED, B), placed_seq: '3', cancel_seq: '2' },
    { order_id: orderId(SEED, C), placed_seq: '5', cancel_seq: null },
  ]);
});
