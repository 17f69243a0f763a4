import { randomUUID } from 'node:crypto';
import { createHarness, type Harness } from './testing/harness.ts';

let h: Harness;

beforeAll(async () => {
  h = await createHarness();
});
afterAll(async () => {
  await h?.close();
});

describe('GET /api/v1/admin/orders/:id', () => {
  test("staff read any user's order with its owner and trace search; users and anonymous cannot", async () => {
    const alice = await h.user();
    const placed = await h.app.inject({
      method: 'POST',
      url: '/api/v1/orders',
      headers: alice.auth,
      payload: { market: 'BTC-USD', side: 'buy', type: 'limit', price: '60000', quantity: '0.5', timeInForce: 'GTC' },
    });
    expect(placed.statusCode).toBe(201);
    const order = placed.json() as { id: string };
    const own = (await h.app.inject({ method: 'GET', url: `/api/v1/orders/${order.id}`, headers: alice.auth })).json();

    for (const roles of [['admin'], ['support']] as const) {
      const staff = await h.user({ fund: false, roles: [...roles] });
      const res = await h.app.inject({ method: 'GET', url: `/api/v1/admin/orders/${order.id}`, headers: staff.auth });
      expect(res.statusCode).toBe(200);
      // the same order the owner sees (exact decimal strings), plus its owner and the Jaeger search for its trace
      expect(res.json()).toEqual({
        ...own,
        userId: alice.id,
        trace: { service: 'order', operation: 'POST /api/v1/orders', tags: { 'order.id': order.id } },
      });
      expect(res.json()).toMatchObject({ price: '60000', quantity: '0.50', market: 'BTC-USD', side: 'buy' });

      const missing = await h.app.inject({
        method: 'GET',
        url: `/api/v1/admin/orders/${randomUUID()}`,
        headers: staff.auth,
      });
      expect(missing.statusCode).toBe(404);
      expect(missing.json().error.code).toBe('ORDER_NOT_FOUND');
      const bad = await h.app.inject({ method: 'GET', url: '/api/v1/admin/orders/not-a-uuid', headers: staff.auth });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().error.code).toBe('VALIDATION_ERROR');
    }

    // the owner is no staff: 403, even for their own order; no token: 401
    const asOwner = await h.app.inject({ method: 'GET', url: `/api/v1/admin/orders/${order.id}`, headers: alice.auth });
    expect(asOwner.statusCode).toBe(403);
    const anonymous = await h.app.inject({ method: 'GET', url: `/api/v1/admin/orders/${order.id}` });
    expect(anonymous.statusCode).toBe(401);
  });
});
