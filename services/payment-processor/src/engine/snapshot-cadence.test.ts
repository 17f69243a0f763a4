// The snapshot cadence of a real engine whose book outgrows SNAPSHOT_EVERY (see SnapshotSchedule): commands through
// the broker, snapshots and a restart from them in the real database. Own database and vhost.
import type { Envelope } from '@exchange/contracts';
import { PlaceOrderV1, ROUTES } from '@exchange/contracts/trading';
import type { Runtime } from '../runtime.ts';
import { AT, userId } from '../testing/commands.ts';
import { Bus, createEnv, lastSeq, startInProcess, stopInProcess, waitFor, type Env } from '../testing/harness.ts';
import { uuidv5 } from '../uuid.ts';

const QUEUE = ROUTES.ordersQueue('BTC-USD');

/** `n` resting bids (no asks, so nothing trades): command k leaves k orders in the book. */
function restingBids(n: number, from = 0): Envelope[] {
  return Array.from({ length: n }, (_, j) => {
    const i = from + j;
    return PlaceOrderV1.create(
      {
        orderId: uuidv5(`cadence:order:${i}`),
        userId: userId(7, i % 5),
        market: 'BTC-USD',
        side: 'buy',
        type: 'limit',
        priceTicks: String(20_000 - i),
        quantityLots: '1',
        timeInForce: 'GTC',
        postOnly: false,
        holdAmount: String(20_000 - i),
        acceptedAt: AT,
      },
      { producer: 'test', id: uuidv5(`cadence:msg:${i}`), occurredAt: AT },
    );
  });
}

const snapshotSeqs = async (env: Env) =>
  (
    await env.db.pool.query<{ seq: string }>(
      `SELECT seq FROM payment.engine_snapshots WHERE market = 'BTC-USD' ORDER BY seq`,
    )
  ).rows.map((r) => Number(r.seq));

let env: Env;
let rt: Runtime | undefined;
let bus: Bus;

beforeAll(async () => {
  env = await createEnv('pp_cadence');
  bus = await Bus.open(env.vhost.url);
});

afterAll(async () => {
  if (rt) await stopInProcess(rt);
  await bus.close();
  await env.drop();
});

it('stretches the interval with the book, and a restart resumes from the last snapshot', async () => {
  rt = await startInProcess(env, { SNAPSHOT_EVERY: '5' });
  await bus.publish(QUEUE, restingBids(100));
  await waitFor('100 commands journaled', async () => (await lastSeq(env.db)) === 100);
  // every 5 commands while the book is smaller, then as many as the last snapshot held orders: 5, 10, 20, 40, 80
  // (the last 3 kept); the next is due at 130, 10 × 5 after 80 rather than 80 after it
  expect(await snapshotSeqs(env)).toEqual([20, 40, 80]);
  const { rows: col } = await env.db.pool.query<{ type: string; compression: string }>(
    `SELECT format_type(atttypid, atttypmod) AS type, attcompression AS compression
       FROM pg_attribute WHERE attrelid = 'payment.engine_snapshots'::regclass AND attname = 'state'`,
  );
  // JSON text, lz4-compressed (this PostgreSQL is built with lz4, as Debian's and the official images are)
  expect(col[0]).toEqual({ type: 'text', compression: 'l' });

  await bus.publish(QUEUE, restingBids(30, 100));
  await waitFor('130 commands journaled', async () => (await lastSeq(env.db)) === 130);
  expect(await snapshotSeqs(env)).toEqual([40, 80, 130]);

  // a graceful stop stores one more (at 131, with the book of 131 orders); the restart loads it and counts from it
  await bus.publish(QUEUE, restingBids(1, 130));
  await waitFor('131 commands journaled', async () => (await lastSeq(env.db)) === 131);
  await stopInProcess(rt);
  rt = await startInProcess(env, { SNAPSHOT_EVERY: '5' });
  const status = (await rt.engines.status())[0]!;
  expect(status).toEqual(
    expect.objectContaining({ lastSeq: 131, loadedSeq: 131, lastSnapshotSeq: 131, restingOrders: 131 }),
  );
  expect(await snapshotSeqs(env)).toEqual([80, 130, 131]);
  // the next is due 50 commands later (131 orders, capped at 10 × 5): none at 180, one at 181
  await bus.publish(QUEUE, restingBids(49, 131));
  await waitFor('180 commands journaled', async () => (await lastSeq(env.db)) === 180);
  expect(await snapshotSeqs(env)).toEqual([80, 130, 131]);
  await bus.publish(QUEUE, restingBids(1, 180));
  await waitFor('181 commands journaled', async () => (await lastSeq(env.db)) === 181);
  expect(await snapshotSeqs(env)).toEqual([130, 131, 181]);
}, 120_000);
