// Per-account order entry limits: a rate (in-process bucket) and an open-order cap, so free sandbox funds cannot
// fill the engine's memory. Cancels are never limited.
import { createHarness, type Harness } from './testing/harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await createHarness({ orderLimits: { ordersPerSecond: 1, burst: 5, maxOpenOrders: 3 } });
});
afterAll(async () => {
  await h?.close();
});

const buy = (price: string) => ({
  market: 'BTC-USD',
  side: 'buy',
  type: 'limit',
  price,
  quantity: '1',
  timeInForce: 'GTC',
});
const place = (auth: Record<string, string>, price: string) =>
  h.app.inject({ method: 'POST', url: '/api/v1/orders', headers: auth, payload: buy(price) });

test('the open-order cap: the next order is 409 TOO_MANY_OPEN_ORDERS; a cancel frees a slot', async () => {
  const u = await h.user();
  const ids: string[] = [];
  for (const p of ['100', '101', '102']) {
    const r = await place(u.auth, p);
    expect(r.statusCode).toBe(201);
    ids.push(r.json().id);
  }
  const over = await place(u.auth, '103');
  expect([over.statusCode, over.json().error.code]).toEqual([409, 'TOO_MANY_OPEN_ORDERS']);
  // another account is unaffected
  expect((await place((await h.user()).auth, '103')).statusCode).toBe(201);
  // cancels are not limited, and once the order is finished the slot is free
  const c = await h.app.inject({ method: 'DELETE', url: `/api/v1/orders/${ids[0]}`, headers: u.auth });
  expect(c.statusCode).toBeLessThan(300);
  await h.db.pool.query(`UPDATE orders.orders SET status = 'cancelled' WHERE id = $1`, [ids[0]]);
  expect((await place(u.auth, '104')).statusCode).toBe(201);
});

test('the rate: past the burst, 429 ORDER_RATE_LIMITED with Retry-After', async () => {
  const u = await h.user();
  const codes: number[] = [];
  for (let i = 0; i < 8; i++) {
    const r = await place(u.auth, String(200 + i));
    codes.push(r.statusCode);
    if (r.statusCode === 429) {
      expect(r.json().error.code).toBe('ORDER_RATE_LIMITED');
      expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
  }
  // 5 in the burst (of which 3 fit the open-order cap), the rest refused by the rate
  expect(codes.filter((c) => c === 429).length).toBeGreaterThanOrEqual(3);
});
