/**
 * Order entry's group commit: the `pending` → `new` + PlaceOrderV1 transactions of one market are batched. Every
 * order is still accepted exactly once, in an order the outbox keeps, and a batch that fails half-way is rolled back
 * whole and retried order by order without doubling a command.
 */
import { createHarness, type Harness } from './testing/harness.ts';

let h: Harness;
const batches: string[][] = [];
let failNextBatch = false;

beforeAll(async () => {
  h = await createHarness({
    beforeFinalizeCommit: async (ids) => {
      batches.push(ids);
      if (failNextBatch && ids.length > 1) {
        failNextBatch = false;
        throw new Error('injected fault inside the batch, after its UPDATE');
      }
    },
  });
});
afterAll(async () => {
  await h?.close();
});

const body = (i: number, over: Record<string, unknown> = {}) => ({
  market: 'BTC-USD',
  side: i % 2 ? 'buy' : 'sell',
  type: 'limit',
  price: String(i % 2 ? 50_000 - i : 70_000 + i),
  quantity: '0.01',
  clientOrderId: `batch-${i}-${Math.random()}`,
  ...over,
});
const placeCommands = async () =>
  (
    await h.db.pool.query<{ order_id: string }>(
      `SELECT message->'payload'->>'orderId' AS order_id FROM orders.outbox
        WHERE type = 'engine.place-order' AND routing_key = 'orders.BTC-USD' ORDER BY sequence`,
    )
  ).rows.map((r) => r.order_id);

async function placeConcurrently(n: number) {
  const users = await Promise.all(Array.from({ length: 4 }, () => h.user()));
  const res = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      h.app.inject({ method: 'POST', url: '/api/v1/orders', headers: users[i % 4]!.auth, payload: body(i) }),
    ),
  );
  expect(res.map((r) => r.statusCode)).toEqual(Array(n).fill(201));
  return res.map((r) => (r.json() as { id: string }).id);
}

it('concurrent orders of a market share transactions; each is new with one command, in batch order', async () => {
  batches.length = 0;
  const before = await placeCommands();
  const ids = await placeConcurrently(40);
  expect(Math.max(...batches.map((b) => b.length))).toBeGreaterThan(1);
  const commands = (await placeCommands()).slice(before.length);
  // exactly one PlaceOrderV1 per order ...
  expect([...commands].sort()).toEqual([...ids].sort());
  // ... and the outbox (hence the engine) sees them in the order the batches committed them, across batch boundaries
  expect(commands).toEqual(batches.flat());
  const { rows } = await h.db.pool.query(`SELECT DISTINCT status FROM orders.orders WHERE id = ANY($1::uuid[])`, [ids]);
  expect(rows).toEqual([{ status: 'new' }]);
});

it('orders placed one after the other keep their order in the outbox', async () => {
  const u = await h.user();
  const before = (await placeCommands()).length;
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await h.app.inject({ method: 'POST', url: '/api/v1/orders', headers: u.auth, payload: body(i) });
    ids.push((r.json() as { id: string }).id);
  }
  expect((await placeCommands()).slice(before)).toEqual(ids);
});

it('a batch that fails half-way rolls back whole; its orders are retried one by one, none doubled', async () => {
  batches.length = 0;
  failNextBatch = true;
  const before = await placeCommands();
  const ids = await placeConcurrently(30);
  expect(failNextBatch).toBe(false); // the fault fired
  const failed = batches.find((b) => b.length > 1)!;
  // its orders were applied again, each alone
  for (const id of failed) expect(batches.filter((b) => b.length === 1 && b[0] === id)).toHaveLength(1);
  const commands = (await placeCommands()).slice(before.length);
  expect([...commands].sort()).toEqual([...ids].sort());
  const { rows } = await h.db.pool.query(`SELECT DISTINCT status FROM orders.orders WHERE id = ANY($1::uuid[])`, [ids]);
  expect(rows).toEqual([{ status: 'new' }]);
  // one hold per order in the wallet
  const holds = (await h.wallet.holds()).filter((x) => ids.includes(x.holdId));
  expect(holds).toHaveLength(30);
});
