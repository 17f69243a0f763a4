/**
 * The wallet client against the real wallet service (in process, real HTTP, same database, its own schema): the hold
 * contract the rest of this service's tests assume from the stub — 201 / 200 replay / 400 INSUFFICIENT_FUNDS, release —
 * and the ledger invariants after order entry and recovery.
 */
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { migrate } from '@exchange/db';
import { createTestDatabase, type TestDatabase } from '@exchange/db/testing';
import { createTestIssuer, type TestIssuer } from '@exchange/auth-client/testing';
import { loadCatalog } from '@exchange/contracts/markets';
import type { App } from '@exchange/platform';
import { buildApp as buildWalletApp } from '@exchange/wallet';
import { assertLedgerInvariants, fundUser } from '@exchange/wallet/testing';
import { buildApp } from './app.ts';
import { runMigrations } from './migrate.ts';
import { createWalletClient } from './clients/wallet-client.ts';

let db: TestDatabase;
let issuer: TestIssuer;
let wallet: App;
let app: App;
let crash = false;

beforeAll(async () => {
  db = await createTestDatabase('order_wallet');
  const walletDrizzle = fileURLToPath(new URL('../drizzle', import.meta.resolve('@exchange/wallet')));
  await migrate(db.pool, { migrationsFolder: walletDrizzle, schema: 'wallet' });
  await runMigrations(db.pool);
  issuer = await createTestIssuer();
  wallet = await buildWalletApp({ pool: db.pool, auth: issuer.authOptions(), fastify: { logger: false } });
  await wallet.listen({ port: 0, host: '127.0.0.1' });
  const walletUrl = `http://127.0.0.1:${(wallet.server.address() as AddressInfo).port}`;
  app = await buildApp({
    pool: db.pool,
    catalog: loadCatalog(undefined),
    wallet: createWalletClient({ baseUrl: walletUrl, internalToken: issuer.internalToken }),
    auth: issuer.authOptions(),
    management: { managementUrl: 'http://127.0.0.1:1', vhost: '/' },
    fastify: { logger: false },
    pendingTimeoutMs: 0,
    afterHold: async () => {
      if (crash) throw new Error('simulated crash');
    },
  });
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  await wallet?.close();
  await issuer?.close();
  await db?.drop();
});

const holdOf = async (id: string) =>
  (
    await wallet.inject({
      method: 'GET',
      url: `/internal/holds/${id}`,
      headers: { 'x-internal-token': issuer.internalToken },
    })
  ).json() as { status: string; amount: string; remaining: string };

test('holds, insufficient funds, replay and recovery release against the real wallet', async () => {
  const user = randomUUID();
  await fundUser(db.pool, user, 'USD', 1_000_000n); // 10,000.00 USD
  const auth = { authorization: `Bearer ${issuer.sign({ sub: user })}` };
  const order = (over: Record<string, unknown> = {}) =>
    app.inject({
      method: 'POST',
      url: '/api/v1/orders',
      headers: auth,
      payload: { market: 'BTC-USD', side: 'buy', type: 'limit', price: '60000', quantity: '0.1', ...over },
    });

  const a = await order({ clientOrderId: 'w-1' });
  expect(a.statusCode).toBe(201);
  expect(await holdOf(a.json().id)).toMatchObject({ status: 'active', amount: '600000', remaining: '600000' });
  const replay = await order({ clientOrderId: 'w-1' });
  expect(replay.statusCode).toBe(200);
  expect(replay.json().id).toBe(a.json().id);

  const poor = await order({ quantity: '0.07' }); // 4200 USD > 4000 left
  expect(poor.statusCode).toBe(400);
  expect(poor.json().error.code).toBe('INSUFFICIENT_FUNDS');
  const { rows } = await db.pool.query('SELECT status FROM orders.orders WHERE user_id = $1', [user]);
  expect(rows).toEqual([{ status: 'new' }]);

  crash = true;
  const crashed = await order({ quantity: '0.05', clientOrderId: 'w-2' });
  crash = false;
  expect(crashed.statusCode).toBe(500);
  const {
    rows: [pending],
  } = await db.pool.query(`SELECT id, status FROM orders.orders WHERE client_order_id = 'w-2'`);
  expect(pending.status).toBe('pending');
  expect(await holdOf(pending.id)).toMatchObject({ status: 'active', amount: '300000' });
  await app.orderService.setHalted('BTC-USD', true, 'test', 'incident');
  const r = await app.orderService.sweep();
  await app.orderService.setHalted('BTC-USD', false, 'test', undefined);
  expect(r.released).toEqual([pending.id]);
  expect(await holdOf(pending.id)).toMatchObject({ status: 'released', remaining: '0' });

  await assertLedgerInvariants(db.pool);
});

test('concurrent orders never hold more than the balance; every accepted order has exactly one hold', async () => {
  const user = randomUUID();
  await fundUser(db.pool, user, 'USD', 1_000_000n); // 10,000.00 USD
  const auth = { authorization: `Bearer ${issuer.sign({ sub: user })}` };
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      app.inject({
        method: 'POST',
        url: '/api/v1/orders',
        headers: auth,
        payload: { market: 'BTC-USD', side: 'buy', type: 'limit', price: String(50000 + i), quantity: '0.02' }, // ~1,000 USD
      }),
    ),
  );
  const accepted = results
    .filter((r) => r.statusCode === 201)
    .map((r) => r.json() as { id: string; holdAmount: string });
  const refused = results.filter((r) => r.statusCode === 400);
  expect(accepted.length + refused.length).toBe(20);
  expect(refused.every((r) => r.json().error.code === 'INSUFFICIENT_FUNDS')).toBe(true);
  const held = accepted.reduce((s, o) => s + BigInt(o.holdAmount.replace('.', '')), 0n);
  expect(held).toBeLessThanOrEqual(1_000_000n);
  expect(accepted.length).toBeGreaterThanOrEqual(9); // 10,000 / ~1,000.xx
  for (const o of accepted) expect(await holdOf(o.id)).toMatchObject({ status: 'active' });
  const { rows } = await db.pool.query<{ status: string; n: number }>(
    'SELECT status, count(*)::int AS n FROM orders.orders WHERE user_id = $1 GROUP BY status',
    [user],
  );
  expect(rows).toEqual([{ status: 'new', n: accepted.length }]);
  const { rows: msgs } = await db.pool.query(
    `SELECT count(*)::int AS n FROM orders.outbox WHERE type = 'engine.place-order' AND message->'payload'->>'userId' = $1`,
    [user],
  );
  expect(msgs[0].n).toBe(accepted.length);
  await assertLedgerInvariants(db.pool);
});

test('concurrent orders reach the wallet in batch calls, answered per hold', async () => {
  const users = await Promise.all(
    Array.from({ length: 4 }, async (_, i) => {
      const id = randomUUID();
      // the last user can pay for one order only
      await fundUser(db.pool, id, 'USD', i === 3 ? 150_000n : 1_000_000n);
      return { id, auth: { authorization: `Bearer ${issuer.sign({ sub: id })}` } };
    }),
  );
  const batchCalls = async () => {
    const text = (await wallet.inject({ method: 'GET', url: '/metrics' })).body;
    return [...text.matchAll(/^http_requests_total\{[^}]*route="\/internal\/holds\/batch"[^}]*\} (\d+)/gm)].reduce(
      (n, m) => n + Number(m[1]),
      0,
    );
  };
  const before = await batchCalls();
  const results = await Promise.all(
    Array.from({ length: 24 }, (_, i) =>
      app.inject({
        method: 'POST',
        url: '/api/v1/orders',
        headers: users[i % 4]!.auth,
        payload: { market: 'BTC-USD', side: 'buy', type: 'limit', price: '50000', quantity: '0.02' }, // 1,000 USD
      }),
    ),
  );
  expect(await batchCalls()).toBeGreaterThan(before);
  const poor = results.filter((_, i) => i % 4 === 3);
  expect(poor.filter((r) => r.statusCode === 201)).toHaveLength(1);
  for (const r of poor.filter((x) => x.statusCode !== 201)) {
    expect([r.statusCode, r.json().error.code]).toEqual([400, 'INSUFFICIENT_FUNDS']);
  }
  for (const r of results.filter((_, i) => i % 4 !== 3)) expect(r.statusCode).toBe(201);
  for (const r of results.filter((x) => x.statusCode === 201)) {
    expect(await holdOf(r.json().id)).toMatchObject({ status: 'active', amount: '100000' });
  }
  await assertLedgerInvariants(db.pool);
});
