import { randomUUID } from 'node:crypto';
import { createTestIssuer, type TestIssuer } from '@exchange/auth-client/testing';
import { PayoutCompletedV1, PayoutFailedV1 } from '@exchange/contracts/trading';
import { withTransaction } from '@exchange/db';
import { createTestDatabase, type TestDatabase } from '@exchange/db/testing';
import type { App } from '@exchange/platform';
import { buildApp } from './app.ts';
import { runMigrations } from './migrate.ts';
import { Scheduler } from './jobs/scheduler.ts';
import { completePayout, failPayout } from './settlement/service.ts';
import { fundUser } from './testing/index.ts';

let db: TestDatabase;
let issuer: TestIssuer;
let app: App;
let scheduler: Scheduler;

const BTC_ADDRESS = 'bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq';
const IBAN = 'DE89370400440532013000';

beforeAll(async () => {
  db = await createTestDatabase('wallet_admin_payouts');
  await runMigrations(db.pool);
  issuer = await createTestIssuer();
  app = await buildApp({
    pool: db.pool,
    auth: issuer.authOptions(),
    // a long cancellation window: a withdrawal stays `pending` until the test moves its dispatch time
    settings: { sandboxDeposits: true, depositConfirmationMs: 0, withdrawalDispatchDelayMs: 3_600_000 },
    fastify: { logger: false },
  });
  await app.ready();
  scheduler = new Scheduler({
    pool: db.pool,
    pollMs: 60_000,
    reconciliationIntervalMs: 0,
    log: { info() {}, error() {} },
  });
});
afterAll(async () => {
  await app.close();
  await issuer.close();
  await db.drop();
});

const now = () => Math.floor(Date.now() / 1000);
const bearer = (sub: string, extra: Record<string, unknown> = {}) => ({
  authorization: `Bearer ${issuer.sign({ sub, ...extra })}`,
});
const staff = (role: 'admin' | 'support') => bearer(randomUUID(), { roles: [role], mfaAt: now() });
const get = (url: string, headers: Record<string, string> = staff('support')) =>
  app.inject({ method: 'GET', url, headers });

async function withdraw(user: string, asset: string, amount: string, address: string) {
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/wallet/withdrawals',
    headers: bearer(user),
    payload: { asset, amount, address },
  });
  return res;
}

/** Makes a pending withdrawal due now and lets the scheduler send it to the payment processor (`processing`). */
async function dispatch(id: string) {
  await db.pool.query(`UPDATE wallet.withdrawals SET dispatch_at = now() - interval '1 second' WHERE id = $1`, [id]);
  await scheduler.tick();
}

describe('GET /api/v1/admin/payouts', () => {
  test('pending = not paid out yet (pending and processing), oldest first, exact totals; other states too', async () => {
    const alice = randomUUID();
    const bob = randomUUID();
    await fundUser(db.pool, alice, 'BTC', 100_000_000n); // 1 BTC
    await fundUser(db.pool, bob, 'USD', 100_000n); // 1000.00 USD
    const w1 = (await withdraw(alice, 'BTC', '0.1', BTC_ADDRESS)).json();
    const w2 = (await withdraw(alice, 'BTC', '0.00123456', BTC_ADDRESS)).json();
    const w3 = (await withdraw(bob, 'USD', '100', IBAN)).json();
    const w4 = (await withdraw(bob, 'USD', '200', IBAN)).json();
    const w5 = (await withdraw(bob, 'USD', '50.5', IBAN)).json();
    const w6 = (await withdraw(alice, 'BTC', '0.2', BTC_ADDRESS)).json();
    for (const w of [w1, w2, w3, w4, w5, w6]) expect(w.status).toBe('pending');

    // w2 is sent to the payment processor; w3 paid, w4 failed (both sent first); w5 cancelled by its owner
    for (const w of [w2, w3, w4]) await dispatch(w.id);
    await withTransaction(db.pool, (c) =>
      completePayout(
        c,
        PayoutCompletedV1.create(
          { withdrawalId: w3.id, railTxId: 'rail-42', completedAt: new Date().toISOString() },
          { producer: 'payment-processor' },
        ),
      ),
    );
    await withTransaction(db.pool, (c) =>
      failPayout(
        c,
        PayoutFailedV1.create(
          { withdrawalId: w4.id, reason: 'RAIL_REJECTED: account closed', failedAt: new Date().toISOString() },
          { producer: 'payment-processor' },
        ),
      ),
    );
    const cancel = await app.inject({
      method: 'POST',
      url: `/api/v1/wallet/withdrawals/${w5.id}/cancel`,
      headers: bearer(bob),
    });
    expect(cancel.statusCode).toBe(200);

    for (const headers of [staff('admin'), staff('support')]) {
      const res = await get('/api/v1/admin/payouts?status=pending', headers);
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body.status).toBe('pending');
      expect(body.payouts.map((p: { withdrawalId: string; status: string }) => [p.withdrawalId, p.status])).toEqual([
        [w1.id, 'pending'],
        [w2.id, 'processing'],
        [w6.id, 'pending'],
      ]);
      expect(body.payouts[1]).toEqual({
        withdrawalId: w2.id,
        userId: alice,
        asset: 'BTC',
        amount: '0.00123456',
        fee: '0.00010000',
        address: BTC_ADDRESS,
        status: 'processing',
        dueAt: expect.any(String),
        railTxId: null,
        failureReason: null,
        createdAt: w2.createdAt,
        updatedAt: expect.any(String),
      });
      // 0.1 + 0.00123456 + 0.2, exactly
      expect(body.totals).toEqual([{ asset: 'BTC', count: 3, amount: '0.30123456' }]);
    }
    // the default is pending
    expect((await get('/api/v1/admin/payouts')).json().payouts).toHaveLength(3);

    const completed = (await get('/api/v1/admin/payouts?status=completed')).json();
    expect(completed.payouts).toEqual([
      expect.objectContaining({ withdrawalId: w3.id, status: 'completed', railTxId: 'rail-42', amount: '100.00' }),
    ]);
    expect(completed.totals).toEqual([{ asset: 'USD', count: 1, amount: '100.00' }]);
    const failed = (await get('/api/v1/admin/payouts?status=failed')).json();
    expect(failed.payouts).toEqual([
      expect.objectContaining({ withdrawalId: w4.id, failureReason: 'RAIL_REJECTED: account closed' }),
    ]);
    const cancelled = (await get('/api/v1/admin/payouts?status=cancelled')).json();
    expect(cancelled.payouts.map((p: { withdrawalId: string }) => p.withdrawalId)).toEqual([w5.id]);
    expect(cancelled.totals).toEqual([{ asset: 'USD', count: 1, amount: '50.50' }]);

    // filter by asset, and a page limit that does not cut the totals
    const usd = (await get('/api/v1/admin/payouts?status=pending&asset=USD')).json();
    expect(usd).toEqual({ status: 'pending', payouts: [], totals: [] });
    const page = (await get('/api/v1/admin/payouts?limit=1')).json();
    expect(page.payouts.map((p: { withdrawalId: string }) => p.withdrawalId)).toEqual([w1.id]);
    expect(page.totals).toEqual([{ asset: 'BTC', count: 3, amount: '0.30123456' }]);
  });

  test('bad query → 400; users → 403; no token → 401', async () => {
    for (const q of ['status=paid', 'limit=0', 'limit=501', 'asset=btc', 'foo=1']) {
      const res = await get(`/api/v1/admin/payouts?${q}`);
      expect({ q, status: res.statusCode, code: res.json().error.code }).toEqual({
        q,
        status: 400,
        code: 'VALIDATION_ERROR',
      });
    }
    expect((await get('/api/v1/admin/payouts', bearer(randomUUID()))).statusCode).toBe(403);
    expect((await app.inject({ method: 'GET', url: '/api/v1/admin/payouts' })).statusCode).toBe(401);
  });
});

describe('GET /api/v1/admin/withdrawals/blocked', () => {
  test('withdrawal requests refused by policy, newest first, with reason, code and what was asked', async () => {
    const carol = randomUUID();
    await fundUser(db.pool, carol, 'BTC', 10_000_000n); // 0.1 BTC
    expect((await withdraw(carol, 'BTC', '0.01', 'not-an-address')).json().error.code).toBe('INVALID_ADDRESS');
    expect((await withdraw(carol, 'BTC', '0.1', BTC_ADDRESS)).json().error.code).toBe('INSUFFICIENT_FUNDS');
    const flag = await app.inject({
      method: 'POST',
      url: '/api/v1/admin/feature-flags/withdrawals/disable',
      headers: staff('admin'),
      payload: { reason: 'test' },
    });
    expect(flag.statusCode).toBe(200);
    try {
      expect((await withdraw(carol, 'BTC', '0.02', BTC_ADDRESS)).json().error.code).toBe('WITHDRAWALS_DISABLED');
    } finally {
      await app.inject({
        method: 'POST',
        url: '/api/v1/admin/feature-flags/withdrawals/enable',
        headers: staff('admin'),
        payload: {},
      });
    }
    for (const headers of [staff('admin'), staff('support')]) {
      const res = await get('/api/v1/admin/withdrawals/blocked?limit=3', headers);
      expect(res.statusCode).toBe(200);
      expect(res.json().blocked).toEqual([
        {
          at: expect.any(String),
          userId: carol,
          reason: 'kill_switch',
          code: 'WITHDRAWALS_DISABLED',
          asset: 'BTC',
          amount: '0.02',
          address: BTC_ADDRESS,
          requestId: expect.any(String),
        },
        expect.objectContaining({ userId: carol, reason: 'insufficient_funds', amount: '0.1' }),
        expect.objectContaining({
          userId: carol,
          reason: 'address',
          code: 'INVALID_ADDRESS',
          address: 'not-an-address',
        }),
      ]);
    }
    expect((await get('/api/v1/admin/withdrawals/blocked', bearer(carol))).statusCode).toBe(403);
    expect((await get('/api/v1/admin/withdrawals/blocked?limit=abc')).statusCode).toBe(400);
  });
});
