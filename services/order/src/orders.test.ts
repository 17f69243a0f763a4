import { randomUUID } from 'node:crypto';
import { signApiRequest } from '@exchange/auth-client';
import { waitForLockWait } from '@exchange/db/testing';
import { createHarness, type Harness } from './testing/harness.ts';

let h: Harness;
let alice: Awaited<ReturnType<Harness['user']>>;
let bob: Awaited<ReturnType<Harness['user']>>;
let admin: Awaited<ReturnType<Harness['user']>>;

beforeAll(async () => {
  h = await createHarness();
  alice = await h.user();
  bob = await h.user();
  admin = await h.user({ fund: false, roles: ['admin'] });
});
afterAll(async () => {
  await h?.close();
});

const limitBuy = (over: Record<string, unknown> = {}) => ({
  market: 'BTC-USD',
  side: 'buy',
  type: 'limit',
  price: '60000',
  quantity: '0.5',
  timeInForce: 'GTC',
  ...over,
});

async function place(body: unknown, headers: Record<string, string> = alice.auth) {
  return h.app.inject({ method: 'POST', url: '/api/v1/orders', headers, payload: body as object });
}

async function setLastTrade(market: string, ticks: string) {
  await h.db.pool.query(
    `INSERT INTO orders.market_state (market, last_trade_ticks, last_trade_seq, last_trade_at) VALUES ($1,$2,1,now())
     ON CONFLICT (market) DO UPDATE SET last_trade_ticks = $2`,
    [market, ticks],
  );
}

async function orderRows(where = 'true', values: unknown[] = []) {
  const { rows } = await h.db.pool.query(`SELECT * FROM orders.orders WHERE ${where}`, values);
  return rows as Array<Record<string, unknown>>;
}

async function outboxRows() {
  const { rows } = await h.db.pool.query<{
    type: string;
    routing_key: string;
    message: { id: string; payload: Record<string, unknown> };
  }>('SELECT type, routing_key, message FROM orders.outbox ORDER BY sequence');
  return rows;
}

describe('bad input never 500s and never leaves an accepted order', () => {
  interface Case {
    name: string;
    req: () => Promise<{ statusCode: number; json(): unknown }>;
    status: number;
    code: string;
    setup?: () => Promise<void>;
    teardown?: () => Promise<void>;
  }
  const adminPost = (url: string) => h.app.inject({ method: 'POST', url, headers: admin.auth });
  const cases: Case[] = [
    { name: 'no credentials', req: () => place(limitBuy(), {}), status: 401, code: 'UNAUTHENTICATED' },
    {
      name: 'garbage bearer token',
      req: () => place(limitBuy(), { authorization: 'Bearer abc.def.ghi' }),
      status: 401,
      code: 'INVALID_TOKEN',
    },
    {
      name: 'API key without the trade scope',
      req: () => {
        const { apiKey, secret } = h.issuer.createApiKey(alice.id, ['read']);
        const body = JSON.stringify(limitBuy());
        return h.app.inject({
          method: 'POST',
          url: '/api/v1/orders',
          headers: {
            'content-type': 'application/json',
            ...signApiRequest({ apiKey, secret, method: 'POST', path: '/api/v1/orders', body }),
          },
          payload: body,
        });
      },
      status: 403,
      code: 'INSUFFICIENT_SCOPE',
    },
    {
      name: 'body is not JSON',
      req: () =>
        h.app.inject({
          method: 'POST',
          url: '/api/v1/orders',
          headers: { ...alice.auth, 'content-type': 'application/json' },
          payload: '{"market":',
        }),
      status: 400,
      code: 'INVALID_JSON',
    },
    {
      name: 'quantity as a number',
      req: () => place(limitBuy({ quantity: 0.5 })),
      status: 400,
      code: 'VALIDATION_ERROR',
    },
    { name: 'price as a number', req: () => place(limitBuy({ price: 60000 })), status: 400, code: 'VALIDATION_ERROR' },
    {
      name: 'missing quantity',
      req: () => place({ ...limitBuy(), quantity: undefined }),
      status: 400,
      code: 'VALIDATION_ERROR',
    },
    { name: 'unknown side', req: () => place(limitBuy({ side: 'hold' })), status: 400, code: 'VALIDATION_ERROR' },
    { name: 'unknown field', req: () => place(limitBuy({ leverage: '100' })), status: 400, code: 'VALIDATION_ERROR' },
    {
      name: 'postOnly not a boolean',
      req: () => place(limitBuy({ postOnly: 'yes' })),
      status: 400,
      code: 'VALIDATION_ERROR',
    },
    {
      name: 'bad clientOrderId',
      req: () => place(limitBuy({ clientOrderId: 'a b' })),
      status: 400,
      code: 'VALIDATION_ERROR',
    },
    {
      name: 'price in exponent notation',
      req: () => place(limitBuy({ price: '6e4' })),
      status: 400,
      code: 'INVALID_PRICE',
    },
    {
      name: 'quantity in exponent notation',
      req: () => place(limitBuy({ quantity: '5e-1' })),
      status: 400,
      code: 'INVALID_QUANTITY',
    },
    { name: 'negative price', req: () => place(limitBuy({ price: '-60000' })), status: 400, code: 'INVALID_PRICE' },
    { name: 'zero price', req: () => place(limitBuy({ price: '0' })), status: 400, code: 'INVALID_PRICE' },
    { name: 'price with spaces', req: () => place(limitBuy({ price: ' 60000' })), status: 400, code: 'INVALID_PRICE' },
    { name: 'unknown market', req: () => place(limitBuy({ market: 'DOGE-USD' })), status: 400, code: 'UNKNOWN_MARKET' },
    { name: 'off the tick grid', req: () => place(limitBuy({ price: '60000.5' })), status: 400, code: 'INVALID_TICK' },
    { name: 'off the lot grid', req: () => place(limitBuy({ quantity: '0.015' })), status: 400, code: 'INVALID_LOT' },
    { name: 'zero quantity', req: () => place(limitBuy({ quantity: '0' })), status: 400, code: 'QUANTITY_TOO_SMALL' },
    {
      name: 'below the minimum quantity (ETH-USD 0.1)',
      req: () => place(limitBuy({ market: 'ETH-USD', price: '3000', quantity: '0.0' })),
      status: 400,
      code: 'QUANTITY_TOO_SMALL',
    },
    {
      name: 'above the maximum quantity',
      req: () => place(limitBuy({ quantity: '100.01' })),
      status: 400,
      code: 'QUANTITY_TOO_LARGE',
    },
    {
      name: 'below the minimum notional',
      req: () => place(limitBuy({ price: '999', quantity: '0.01' })),
      status: 400,
      code: 'BELOW_MIN_NOTIONAL',
    },
    {
      name: 'absurd price',
      req: () => place(limitBuy({ price: '99999999999999999999' })),
      status: 400,
      code: 'PRICE_OUT_OF_RANGE',
    },
    {
      name: 'limit without price',
      req: () => place({ ...limitBuy(), price: undefined }),
      status: 400,
      code: 'PRICE_REQUIRED',
    },
    {
      name: 'market order with a price',
      req: () => place(limitBuy({ type: 'market', timeInForce: 'IOC' })),
      status: 400,
      code: 'PRICE_NOT_ALLOWED',
    },
    {
      name: 'market order GTC',
      req: () => place({ ...limitBuy({ type: 'market' }), price: undefined }),
      status: 400,
      code: 'INVALID_TIME_IN_FORCE',
    },
    {
      name: 'postOnly IOC',
      req: () => place(limitBuy({ postOnly: true, timeInForce: 'IOC' })),
      status: 400,
      code: 'INVALID_POST_ONLY',
    },
    {
      name: 'market order without a reference price',
      req: () => place({ ...limitBuy({ type: 'market', timeInForce: 'IOC' }), price: undefined }),
      status: 400,
      code: 'NO_REFERENCE_PRICE',
    },
    {
      name: 'price outside the band around the last trade',
      setup: () => setLastTrade('ETH-USD', '30000'), // 3000.0
      req: () => place(limitBuy({ market: 'ETH-USD', price: '3300.1', quantity: '1' })),
      status: 400,
      code: 'PRICE_OUT_OF_BAND',
    },
    {
      name: 'market halted',
      setup: async () => void (await adminPost('/api/v1/admin/markets/BTC-USD/halt')),
      req: () => place(limitBuy()),
      teardown: async () => void (await adminPost('/api/v1/admin/markets/BTC-USD/resume')),
      status: 503,
      code: 'MARKET_HALTED',
    },
    {
      name: 'trading disabled',
      setup: async () => void (await adminPost('/api/v1/admin/feature-flags/trading/disable')),
      req: () => place(limitBuy()),
      teardown: async () => void (await adminPost('/api/v1/admin/feature-flags/trading/enable')),
      status: 503,
      code: 'TRADING_DISABLED',
    },
    {
      name: 'maintenance',
      setup: async () => void (await adminPost('/api/v1/admin/feature-flags/maintenance/enable')),
      req: () => place(limitBuy()),
      teardown: async () => void (await adminPost('/api/v1/admin/feature-flags/maintenance/disable')),
      status: 503,
      code: 'MAINTENANCE',
    },
    {
      name: 'invalid Idempotency-Key',
      req: () => place(limitBuy(), { ...alice.auth, 'idempotency-key': 'has spaces' }),
      status: 400,
      code: 'INVALID_IDEMPOTENCY_KEY',
    },
    {
      name: 'GET an order by a malformed id',
      req: () => h.app.inject({ method: 'GET', url: '/api/v1/orders/not-a-uuid', headers: alice.auth }),
      status: 400,
      code: 'VALIDATION_ERROR',
    },
    {
      name: 'GET an order that does not exist',
      req: () => h.app.inject({ method: 'GET', url: `/api/v1/orders/${randomUUID()}`, headers: alice.auth }),
      status: 404,
      code: 'ORDER_NOT_FOUND',
    },
    {
      name: 'DELETE a malformed id',
      req: () => h.app.inject({ method: 'DELETE', url: '/api/v1/orders/1%27%20OR%201=1', headers: alice.auth }),
      status: 400,
      code: 'VALIDATION_ERROR',
    },
    {
      name: 'list with limit 0',
      req: () => h.app.inject({ method: 'GET', url: '/api/v1/orders?limit=0', headers: alice.auth }),
      status: 400,
      code: 'VALIDATION_ERROR',
    },
    {
      name: 'list with a bogus status',
      req: () => h.app.inject({ method: 'GET', url: '/api/v1/orders?status=open', headers: alice.auth }),
      status: 400,
      code: 'VALIDATION_ERROR',
    },
    {
      name: 'list without auth',
      req: () => h.app.inject({ method: 'GET', url: '/api/v1/orders' }),
      status: 401,
      code: 'UNAUTHENTICATED',
    },
    {
      name: 'fills with a bad cursor',
      req: () => h.app.inject({ method: 'GET', url: '/api/v1/fills?cursor=abc', headers: alice.auth }),
      status: 400,
      code: 'VALIDATION_ERROR',
    },
    {
      name: 'cancel-all in an unknown market',
      req: () => h.app.inject({ method: 'DELETE', url: '/api/v1/orders?market=NOPE-USD', headers: alice.auth }),
      status: 404,
      code: 'UNKNOWN_MARKET',
    },
    {
      name: 'book of an unknown market',
      req: () => h.app.inject({ method: 'GET', url: '/api/v1/markets/NOPE-USD/book' }),
      status: 404,
      code: 'UNKNOWN_MARKET',
    },
    {
      name: 'book depth 0',
      req: () => h.app.inject({ method: 'GET', url: '/api/v1/markets/BTC-USD/book?depth=0' }),
      status: 400,
      code: 'VALIDATION_ERROR',
    },
    {
      name: 'candles with an unknown interval',
      req: () => h.app.inject({ method: 'GET', url: '/api/v1/markets/BTC-USD/candles?interval=2m' }),
      status: 400,
      code: 'VALIDATION_ERROR',
    },
    {
      name: 'candles with a bad from',
      req: () => h.app.inject({ method: 'GET', url: '/api/v1/markets/BTC-USD/candles?from=yesterday' }),
      status: 400,
      code: 'VALIDATION_ERROR',
    },
    {
      name: 'halt as a plain user',
      req: () => h.app.inject({ method: 'POST', url: '/api/v1/admin/markets/BTC-USD/halt', headers: alice.auth }),
      status: 403,
      code: 'FORBIDDEN',
    },
    {
      name: 'halt an unknown market',
      req: () => adminPost('/api/v1/admin/markets/NOPE-USD/halt'),
      status: 404,
      code: 'UNKNOWN_MARKET',
    },
    {
      name: 'feature flags as a plain user',
      req: () => h.app.inject({ method: 'GET', url: '/api/v1/admin/feature-flags', headers: alice.auth }),
      status: 403,
      code: 'FORBIDDEN',
    },
    {
      name: 'a flag this service does not own',
      req: () => adminPost('/api/v1/admin/feature-flags/withdrawals/disable'),
      status: 404,
      code: 'UNKNOWN_FLAG',
    },
    {
      name: 'dead letters as a plain user',
      req: () => h.app.inject({ method: 'GET', url: '/api/v1/admin/dead-letters/order', headers: alice.auth }),
      status: 403,
      code: 'FORBIDDEN',
    },
    {
      name: 'dead letters without auth',
      req: () => h.app.inject({ method: 'GET', url: '/api/v1/admin/dead-letters/order' }),
      status: 401,
      code: 'UNAUTHENTICATED',
    },
  ];

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    await c.setup?.();
    try {
      const res = await c.req();
      expect(res.statusCode).toBeLessThan(600);
      expect({ status: res.statusCode, code: (res.json() as { error?: { code?: string } }).error?.code }).toEqual({
        status: c.status,
        code: c.code,
      });
    } finally {
      await c.teardown?.();
    }
  });

  it('left no order and no message behind', async () => {
    expect(await orderRows()).toEqual([]);
    expect(await outboxRows()).toEqual([]);
    const holds = await h.wallet.holds();
    expect(holds).toEqual([]);
  });
});

describe('placing orders', () => {
  it('holds quote for a buy limit, writes the order and PlaceOrderV1 together', async () => {
    const res = await place(limitBuy({ price: '60000', quantity: '0.5' }));
    expect(res.statusCode).toBe(201);
    const o = res.json();
    expect(o).toMatchObject({
      market: 'BTC-USD',
      side: 'buy',
      type: 'limit',
      price: '60000',
      quantity: '0.50',
      status: 'new',
      filledQuantity: '0.00',
      remainingQuantity: '0.50',
      averagePrice: null,
      holdAsset: 'USD',
      holdAmount: '30000.00',
      cancelRequested: false,
    });
    const holds = await h.wallet.holds();
    expect(holds).toEqual([{ holdId: o.id, userId: alice.id, asset: 'USD', amount: 3_000_000n, status: 'held' }]);
    const out = await outboxRows();
    expect(out).toHaveLength(1);
    expect(out[0]!.type).toBe('engine.place-order');
    expect(out[0]!.routing_key).toBe('orders.BTC-USD');
    expect(out[0]!.message.payload).toMatchObject({
      orderId: o.id,
      userId: alice.id,
      priceTicks: '60000',
      quantityLots: '50',
      timeInForce: 'GTC',
      postOnly: false,
      holdAmount: '3000000',
    });
  });

  it('holds base for a sell (BTC-USDT fine grid)', async () => {
    const res = await place({ market: 'BTC-USDT', side: 'sell', type: 'limit', price: '65000.25', quantity: '0.0003' });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({
      holdAsset: 'BTC',
      holdAmount: '0.00030000',
      price: '65000.25',
      quantity: '0.0003',
    });
  });

  it('a market buy holds quantity × (last + band) and sends budget and protection', async () => {
    await setLastTrade('BTC-USDT', '6000000'); // 60000.00
    const res = await place({ market: 'BTC-USDT', side: 'buy', type: 'market', quantity: '0.01', timeInForce: 'IOC' });
    expect(res.statusCode).toBe(201);
    // protection = 60000.00 × 1.10 = 66000.00 → 6_600_000 ticks; 100 lots; hold = 66000 × 0.01 = 660 USDT
    expect(res.json()).toMatchObject({ holdAsset: 'USDT', holdAmount: '660.000000', price: null });
    const msg = (await outboxRows()).at(-1)!.message.payload;
    expect(msg).toMatchObject({
      type: 'market',
      protectionPriceTicks: '6600000',
      quoteBudgetTickLots: String(6_600_000 * 100),
      holdAmount: '660000000',
    });
    expect(msg.priceTicks).toBeUndefined();
  });

  it('clientOrderId: same body → same order (200), other body → 409, normalised decimals are the same', async () => {
    const body = limitBuy({ clientOrderId: 'abc-1', price: '61000', quantity: '0.1' });
    const first = await place(body);
    expect(first.statusCode).toBe(201);
    const again = await place({ ...body, price: '61000.0', quantity: '0.10' });
    expect(again.statusCode).toBe(200);
    expect(again.json().id).toBe(first.json().id);
    const other = await place({ ...body, price: '61001' });
    expect(other.statusCode).toBe(409);
    expect(other.json().error.code).toBe('CLIENT_ORDER_ID_CONFLICT');
    // Another user may use the same clientOrderId.
    const bobs = await place(body, bob.auth);
    expect(bobs.statusCode).toBe(201);
    expect(bobs.json().id).not.toBe(first.json().id);
    expect(await orderRows(`client_order_id = 'abc-1'`)).toHaveLength(2);
    const holds = (await h.wallet.holds()).filter((x) => x.holdId === first.json().id);
    expect(holds).toHaveLength(1);
  });

  it('concurrent identical clientOrderId requests create one order and one hold', async () => {
    const body = limitBuy({ clientOrderId: 'race-1', price: '59000', quantity: '0.02' });
    const results = await Promise.all(Array.from({ length: 6 }, () => place(body)));
    const ids = new Set(results.map((r) => r.json().id));
    expect(results.every((r) => r.statusCode === 200 || r.statusCode === 201)).toBe(true);
    expect(results.filter((r) => r.statusCode === 201)).toHaveLength(1);
    expect(ids.size).toBe(1);
    const [id] = [...ids];
    expect((await h.wallet.holds()).filter((x) => x.holdId === id)).toHaveLength(1);
    expect((await outboxRows()).filter((m) => m.message.payload.orderId === id)).toHaveLength(1);
  });

  it('insufficient funds → 400, no order row, no hold, no message; the clientOrderId stays usable', async () => {
    const poor = await h.user({ fund: false });
    await h.wallet.credit(poor.id, 'USD', 100_000n); // 1000 USD
    const before = (await outboxRows()).length;
    const res = await place(limitBuy({ clientOrderId: 'poor-1', price: '60000', quantity: '0.1' }), poor.auth); // 6000 USD
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('INSUFFICIENT_FUNDS');
    expect(await orderRows('user_id = $1', [poor.id])).toEqual([]);
    expect((await h.wallet.holds()).filter((x) => x.userId === poor.id)).toEqual([]);
    expect((await outboxRows()).length).toBe(before);
    expect(await h.wallet.balance(poor.id, 'USD')).toEqual({ available: 100_000n, held: 0n });
    const ok = await place(limitBuy({ clientOrderId: 'poor-1', price: '60000', quantity: '0.01' }), poor.auth);
    expect(ok.statusCode).toBe(201);
  });

  it('wallet down → 503 WALLET_UNAVAILABLE, order left pending; a retry with the same clientOrderId finishes it', async () => {
    h.wallet.setDown(true);
    const body = limitBuy({ clientOrderId: 'down-1', quantity: '0.03' });
    const res = await place(body);
    h.wallet.setDown(false);
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('WALLET_UNAVAILABLE');
    const [row] = await orderRows(`client_order_id = 'down-1'`);
    expect(row!.status).toBe('pending');
    // While the market is halted a retry does not push the pending order through.
    await h.app.orderService.setHalted('BTC-USD', true, 'test', undefined);
    const gated = await place(body);
    await h.app.orderService.setHalted('BTC-USD', false, 'test', undefined);
    expect(gated.json().error.code).toBe('MARKET_HALTED');
    expect((await orderRows(`client_order_id = 'down-1'`))[0]!.status).toBe('pending');
    const retry = await place(body);
    expect(retry.statusCode).toBe(200);
    expect(retry.json()).toMatchObject({ id: row!.id, status: 'new' });
    expect((await outboxRows()).filter((m) => m.message.payload.orderId === row!.id)).toHaveLength(1);
  });

  it('Idempotency-Key replays the stored response', async () => {
    const headers = { ...alice.auth, 'idempotency-key': 'idem-1' };
    const a = await place(limitBuy({ quantity: '0.04' }), headers);
    const b = await place(limitBuy({ quantity: '0.04' }), headers);
    expect(a.statusCode).toBe(201);
    expect(b.statusCode).toBe(201);
    expect(b.headers['idempotent-replayed']).toBe('true');
    expect(b.json().id).toBe(a.json().id);
    const c = await place(limitBuy({ quantity: '0.05' }), headers);
    expect(c.statusCode).toBe(422);
  });
});

describe('internal API for the wallet reconciliation', () => {
  it('looks orders up by id and pages through the open ones; internal token only', async () => {
    const carol = await h.user();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await place(limitBuy({ market: 'ETH-USD', price: '2900.0', quantity: '1' }), carol.auth);
      expect(r.statusCode).toBe(201);
      ids.push(r.json().id);
    }
    await h.db.pool.query(`UPDATE orders.orders SET status = 'cancelled' WHERE id = $1`, [ids[2]]);
    const internal = { 'x-internal-token': h.issuer.internalToken };
    const unknown = randomUUID();
    const lookup = await h.app.inject({
      method: 'POST',
      url: '/internal/orders/lookup',
      headers: internal,
      payload: { ids: [...ids, unknown] },
    });
    expect(lookup.statusCode).toBe(200);
    const states = new Map(lookup.json().orders.map((o: { id: string; status: string }) => [o.id, o.status]));
    expect([...states.keys()].sort()).toEqual([...ids].sort());
    expect(states.get(ids[2]!)).toBe('cancelled');
    const open: Array<{ id: string; status: string }> = [];
    let after: string | null = null;
    do {
      const page: { statusCode: number; json(): any } = await h.app.inject({
        url: `/internal/orders/open?limit=2${after ? `&after=${after}` : ''}`,
        headers: internal,
      });
      expect(page.statusCode).toBe(200);
      open.push(...page.json().orders);
      after = page.json().next;
    } while (after);
    expect(open.map((o) => o.id)).toEqual(expect.arrayContaining([ids[0], ids[1]]));
    expect(open.map((o) => o.id)).not.toContain(ids[2]);
    expect(open.every((o) => o.status === 'new' || o.status === 'partially_filled')).toBe(true);
    expect(new Set(open.map((o) => o.id)).size).toBe(open.length);
    expect((await h.app.inject({ url: '/internal/orders/open' })).statusCode).toBe(401);
    expect(
      (await h.app.inject({ method: 'POST', url: '/internal/orders/lookup', headers: carol.auth, payload: { ids } }))
        .statusCode,
    ).toBe(401);
  });

  it('pages through the trade tape of a time window (trades_unsettled); internal token only', async () => {
    const at = (msAgo: number) => new Date(Date.now() - msAgo);
    const ids: string[] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    const times = [at(3_600_000), at(1_800_000), at(900_000), at(10 * 3_600_000)]; // the last one is outside
    for (let i = 0; i < ids.length; i++) {
      await h.db.pool.query(
        `INSERT INTO orders.trades (trade_id, market, seq, price_ticks, quantity_lots, quote_amount, taker_side,
                                    executed_at) VALUES ($1, 'BTC-USD', $2, 30000, 1, 3000, 'buy', $3)`,
        [ids[i], 900_000 + i, times[i]],
      );
    }
    const internal = { 'x-internal-token': h.issuer.internalToken };
    const from = at(2 * 3_600_000).toISOString();
    const to = at(60_000).toISOString();
    const got: Array<{ tradeId: string; market: string; executedAt: string }> = [];
    let after: string | null = null;
    do {
      const q = new URLSearchParams({ from, to, limit: '2', ...(after ? { after } : {}) });
      const page: { statusCode: number; json(): any } = await h.app.inject({
        url: `/internal/trades?${q.toString()}`,
        headers: internal,
      });
      expect(page.statusCode).toBe(200);
      got.push(...page.json().trades);
      after = page.json().next;
    } while (after);
    const mine = got.filter((t) => ids.includes(t.tradeId));
    expect(mine.map((t) => t.tradeId).sort()).toEqual(ids.slice(0, 3).sort());
    expect(mine.find((t) => t.tradeId === ids[0])).toEqual({
      tradeId: ids[0],
      market: 'BTC-USD',
      executedAt: times[0]!.toISOString(),
    });
    expect(new Set(got.map((t) => t.tradeId)).size).toBe(got.length);
    expect((await h.app.inject({ url: `/internal/trades?from=${from}&to=${to}` })).statusCode).toBe(401);
    expect((await h.app.inject({ url: '/internal/trades?from=yesterday&to=now', headers: internal })).statusCode).toBe(
      400,
    );
  });
});

describe('reading and cancelling', () => {
  it('lists own orders with filters and cursor pagination; never another user’s', async () => {
    const mine: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await place(limitBuy({ market: 'ETH-USD', price: '3000.0', quantity: '1' }), bob.auth);
      mine.push(r.json().id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const url: string = `/api/v1/orders?market=ETH-USD&limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const res = await h.app.inject({ method: 'GET', url, headers: bob.auth });
      expect(res.statusCode).toBe(200);
      const page = res.json() as { items: Array<{ id: string }>; nextCursor: string | null };
      seen.push(...page.items.map((o) => o.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...mine].reverse());
    const other = await h.app.inject({ method: 'GET', url: `/api/v1/orders/${mine[0]}`, headers: alice.auth });
    expect(other.statusCode).toBe(404);
    const cancelOther = await h.app.inject({ method: 'DELETE', url: `/api/v1/orders/${mine[0]}`, headers: alice.auth });
    expect(cancelOther.statusCode).toBe(404);
    const aliceList = await h.app.inject({ method: 'GET', url: '/api/v1/orders?market=ETH-USD', headers: alice.auth });
    expect(aliceList.json().items).toEqual([]);
    const own = await h.app.inject({ method: 'GET', url: `/api/v1/orders/${mine[0]}`, headers: bob.auth });
    expect(own.json()).toMatchObject({ id: mine[0], status: 'new', price: '3000.0' });
  });

  it('cancel → 202 with cancelRequested and a CancelOrderV1 per request (re-sendable), also while trading is disabled and halted', async () => {
    const o = (await place(limitBuy({ quantity: '0.06' }))).json();
    const adminPost = (url: string) => h.app.inject({ method: 'POST', url, headers: admin.auth });
    await adminPost('/api/v1/admin/feature-flags/trading/disable');
    await adminPost('/api/v1/admin/markets/BTC-USD/halt');
    try {
      const requestedAt = async () =>
        (await h.db.pool.query(`SELECT cancel_requested_at, updated_at FROM orders.orders WHERE id = $1`, [o.id]))
          .rows[0];
      const c1 = await h.app.inject({ method: 'DELETE', url: `/api/v1/orders/${o.id}`, headers: alice.auth });
      const first = await requestedAt();
      const c2 = await h.app.inject({ method: 'DELETE', url: `/api/v1/orders/${o.id}`, headers: alice.auth });
      expect(await requestedAt()).toEqual(first); // the repeat keeps the first request's time
      expect(first.cancel_requested_at).toBeInstanceOf(Date);
      expect(c1.statusCode).toBe(202);
      expect(c1.json()).toMatchObject({ id: o.id, status: 'new', cancelRequested: true });
      expect(c2.statusCode).toBe(202);
      const cancels = (await outboxRows()).filter(
        (m) => m.type === 'engine.cancel-order' && m.message.payload.orderId === o.id,
      );
      // the repeated DELETE re-sends the cancel (another message, the same order): one that was lost can be re-sent
      expect(cancels).toHaveLength(2);
      expect(new Set(cancels.map((m) => m.message.id)).size).toBe(2);
      for (const m of cancels) {
        expect(m.message.payload).toMatchObject({ orderId: o.id, userId: alice.id, market: 'BTC-USD', reason: 'user' });
      }
      const markets = (await h.app.inject({ method: 'GET', url: '/api/v1/markets' })).json();
      expect(markets.markets.find((m: { symbol: string }) => m.symbol === 'BTC-USD').halted).toBe(true);
    } finally {
      await adminPost('/api/v1/admin/feature-flags/trading/enable');
      await adminPost('/api/v1/admin/markets/BTC-USD/resume');
    }
  });

  it('cancel of a finished order → 409 ORDER_NOT_OPEN', async () => {
    const o = (await place(limitBuy({ quantity: '0.07' }))).json();
    await h.db.pool.query(`UPDATE orders.orders SET status = 'filled' WHERE id = $1`, [o.id]);
    const c = await h.app.inject({ method: 'DELETE', url: `/api/v1/orders/${o.id}`, headers: alice.auth });
    expect(c.statusCode).toBe(409);
    expect(c.json().error.code).toBe('ORDER_NOT_OPEN');
  });

  it("an order filled between the cancel's read and its write → 409 ORDER_NOT_OPEN, no command sent", async () => {
    const o = (await place(limitBuy({ quantity: '0.08' }))).json();
    // The engine's fill holds the order's row while the cancel reads it (a plain read, not blocked) and then tries
    // to mark it: the cancel's statement waits for the row, finds it filled, writes nothing and reads it again.
    const fill = await h.db.pool.connect();
    try {
      await fill.query('BEGIN');
      await fill.query(`SELECT 1 FROM orders.orders WHERE id = $1 FOR UPDATE`, [o.id]);
      const cancel = h.app.inject({ method: 'DELETE', url: `/api/v1/orders/${o.id}`, headers: alice.auth });
      await waitForLockWait(h.db.pool, { query: '%cancel_requested_at%' }, { what: "the cancel's write to wait" });
      await fill.query(`UPDATE orders.orders SET status = 'filled' WHERE id = $1`, [o.id]);
      await fill.query('COMMIT');
      const c = await cancel;
      expect(c.statusCode).toBe(409);
      expect(c.json().error.code).toBe('ORDER_NOT_OPEN');
    } finally {
      fill.release();
    }
    const cancels = (await outboxRows()).filter(
      (m) => m.type === 'engine.cancel-order' && m.message.payload.orderId === o.id,
    );
    expect(cancels).toEqual([]);
    const { rows } = await h.db.pool.query(`SELECT cancel_requested_at FROM orders.orders WHERE id = $1`, [o.id]);
    expect(rows[0].cancel_requested_at).toBeNull();
  });

  it('cancel-all sends one cancel per open order of the user in the market', async () => {
    const carol = await h.user();
    const a = (await place(limitBuy({ quantity: '0.1' }), carol.auth)).json();
    const b = (await place(limitBuy({ quantity: '0.2' }), carol.auth)).json();
    await place(limitBuy({ market: 'ETH-USD', price: '3000.0', quantity: '1' }), carol.auth);
    const res = await h.app.inject({ method: 'DELETE', url: '/api/v1/orders?market=BTC-USD', headers: carol.auth });
    expect(res.statusCode).toBe(202);
    expect(res.json().count).toBe(2);
    expect(
      res
        .json()
        .orders.map((o: { id: string }) => o.id)
        .sort(),
    ).toEqual([a.id, b.id].sort());
    const cancels = (await outboxRows()).filter(
      (m) => m.type === 'engine.cancel-order' && m.message.payload.userId === carol.id,
    );
    expect(cancels.map((m) => m.message.payload.reason)).toEqual(['cancel_all', 'cancel_all']);
  });

  it('halt with cancelOpenOrders cancels every resting order of the market (reason halt)', async () => {
    const dave = await h.user();
    const erin = await h.user();
    const d = (await place(limitBuy({ market: 'BTC-USDT', price: '60000', quantity: '0.001' }), dave.auth)).json();
    const e = (await place(limitBuy({ market: 'BTC-USDT', price: '60001', quantity: '0.001' }), erin.auth)).json();
    const res = await h.app.inject({
      method: 'POST',
      url: '/api/v1/admin/markets/BTC-USDT/halt',
      headers: admin.auth,
      payload: { reason: 'incident 42', cancelOpenOrders: true },
    });
    try {
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({
        market: 'BTC-USDT',
        halted: true,
        reason: 'incident 42',
        changedBy: `user:${admin.id}`,
      });
      expect(res.json().cancelsSent).toBeGreaterThanOrEqual(2);
      const cancels = (await outboxRows()).filter(
        (m) => m.type === 'engine.cancel-order' && [d.id, e.id].includes(m.message.payload.orderId),
      );
      expect(cancels.map((m) => m.message.payload.reason)).toEqual(['halt', 'halt']);
    } finally {
      await h.app.inject({ method: 'POST', url: '/api/v1/admin/markets/BTC-USDT/resume', headers: admin.auth });
    }
  });

  it('markets list the catalog with rules, halted flag and price band', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/api/v1/markets' });
    expect(res.statusCode).toBe(200);
    const markets = res.json().markets as Array<Record<string, unknown>>;
    expect(markets.map((m) => m.symbol)).toEqual(['BTC-USD', 'ETH-USD', 'BTC-USDT']);
    expect(markets.find((m) => m.symbol === 'ETH-USD')).toMatchObject({
      tickSize: '0.1',
      lotSize: '0.1',
      minNotional: '10',
      makerFeeBps: 10,
      takerFeeBps: 20,
      halted: false,
      lastPrice: '3000.0',
      priceBand: { low: '2700.0', high: '3300.0' },
    });
  });

  it('dead letters of this service are listed for admins', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/api/v1/admin/dead-letters/order', headers: admin.auth });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ items: [], nextCursor: null });
  });

  it('exposes order metrics', async () => {
    const text = (await h.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toMatch(/orders_placed_total\{market="BTC-USD",side="buy",type="limit",service="order"\} \d+/);
    expect(text).toMatch(/orders_pending\{service="order"\} \d+/);
    expect(text).toMatch(/http_errors_total\{[^}]*code="INSUFFICIENT_FUNDS"[^}]*\} 1/);
  });

  it('the OpenAPI document covers every public route', async () => {
    const { openapiDocument } = await import('./openapi.ts');
    const doc = (await openapiDocument()) as { paths: Record<string, Record<string, unknown>> };
    for (const p of [
      '/api/v1/markets',
      '/api/v1/markets/{market}/book',
      '/api/v1/markets/{market}/trades',
      '/api/v1/markets/{market}/ticker',
      '/api/v1/markets/{market}/candles',
      '/api/v1/orders',
      '/api/v1/orders/{id}',
      '/api/v1/fills',
      '/api/v1/admin/markets/{market}/halt',
      '/api/v1/admin/feature-flags',
      '/api/health/trading',
    ]) {
      expect(doc.paths[p]).toBeDefined();
    }
    expect(Object.keys(doc.paths['/api/v1/orders']!).sort()).toEqual(['delete', 'get', 'post']);
  });

  it('admin writes need a recent 2FA check when the admin has 2FA on; reads do not', async () => {
    const now = Math.floor(Date.now() / 1000);
    const as = (mfaAt: number) => ({
      authorization: `Bearer ${h.issuer.sign({ sub: admin.id, roles: ['admin'], mfaAt })}`,
    });
    const writes = [
      '/api/v1/admin/markets/ETH-USD/halt',
      '/api/v1/admin/feature-flags/maintenance/disable',
      `/api/v1/admin/dead-letters/order/${randomUUID()}/retry`,
    ];
    for (const url of writes) {
      const stale = await h.app.inject({ method: 'POST', url, headers: as(now - 3600) });
      expect({ url, status: stale.statusCode, code: stale.json().error.code }).toEqual({
        url,
        status: 403,
        code: 'MFA_REQUIRED',
      });
    }
    const list = await h.app.inject({
      method: 'GET',
      url: '/api/v1/admin/dead-letters/order',
      headers: as(now - 3600),
    });
    expect(list.statusCode).toBe(200);
    const fresh = await h.app.inject({ method: 'POST', url: writes[0]!, headers: as(now - 5) });
    expect(fresh.statusCode).toBe(200);
    expect(
      (await h.app.inject({ method: 'POST', url: '/api/v1/admin/markets/ETH-USD/resume', headers: as(now - 5) }))
        .statusCode,
    ).toBe(200);
  });

  it('flags are listed for admins with the defaults', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/api/v1/admin/feature-flags', headers: admin.auth });
    expect(res.statusCode).toBe(200);
    const flags = res.json().flags as Array<{ name: string; enabled: boolean }>;
    expect(flags.map((f) => [f.name, f.enabled])).toEqual([
      ['trading', true],
      ['maintenance', false],
    ]);
  });
});
