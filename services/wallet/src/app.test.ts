import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { signApiRequest } from '@exchange/auth-client';
import { createTestIssuer, type TestIssuer } from '@exchange/auth-client/testing';
import { PayoutCompletedV1, PayoutFailedV1 } from '@exchange/contracts/trading';
import { withTransaction } from '@exchange/db';
import { createTestDatabase, type TestDatabase } from '@exchange/db/testing';
import type { App } from '@exchange/platform';
import { buildApp } from './app.ts';
import { runMigrations } from './migrate.ts';
import { Scheduler } from './jobs/scheduler.ts';
import { completePayout, failPayout } from './settlement/service.ts';
import { assertLedgerInvariants, fundUser } from './testing/index.ts';

let db: TestDatabase;
/** The app's pool: requests wait for a connection as long as it takes (the 100-way race queues on it). */
let pool: pg.Pool;
let issuer: TestIssuer;
let app: App;
let scheduler: Scheduler;

const BTC_ADDRESS = 'bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq';

beforeAll(async () => {
  db = await createTestDatabase('wallet_http');
  await runMigrations(db.pool);
  pool = new pg.Pool({ connectionString: db.url, max: 20, connectionTimeoutMillis: 120_000 });
  pool.on('error', () => {});
  issuer = await createTestIssuer();
  app = await buildApp({
    pool,
    auth: issuer.authOptions(),
    settings: {
      sandboxDeposits: true,
      depositConfirmationMs: 0,
      withdrawalDispatchDelayMs: 0,
      withdrawalDailyLimits: JSON.stringify({ '0': { BTC: '0.5', USD: '1000' }, '1': { BTC: '5', USD: '100000' } }),
    },
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
  await pool.end();
  await issuer.close();
  await db.drop();
});

const bearer = (sub: string, extra: Parameters<TestIssuer['sign']>[0] = { sub }) => ({
  authorization: `Bearer ${issuer.sign({ ...extra, sub })}`,
});
const admin = () => bearer(randomUUID(), { sub: '', roles: ['admin'], mfaAt: Math.floor(Date.now() / 1000) });
const internal = () => ({ 'x-internal-token': issuer.internalToken });

async function metric(name: string, labels: string): Promise<number> {
  const text = await app.metrics.registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('balances and amounts', () => {
  test('a new user sees every asset at zero, formatted at its precision', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/wallet/balances', headers: bearer(randomUUID()) });
    expect(res.statusCode).toBe(200);
    const balances = res.json().balances as Array<{ asset: string; total: string }>;
    expect(Object.fromEntries(balances.map((b) => [b.asset, b.total]))).toEqual({
      BTC: '0.00000000',
      ETH: '0.000000000000000000',
      USD: '0.00',
      USDT: '0.000000',
    });
  });

  test('unauthenticated → 401', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/wallet/balances' });
    expect(res.statusCode).toBe(401);
  });

  test.each([
    ['1e5', 'INVALID_AMOUNT'],
    ['1E-3', 'INVALID_AMOUNT'],
    ['0.000000001', 'AMOUNT_PRECISION'],
    ['-1', 'AMOUNT_NEGATIVE'],
    ['0', 'AMOUNT_ZERO'],
    ['0.00000000', 'AMOUNT_ZERO'],
    [' 1', 'INVALID_AMOUNT'],
    ['1'.repeat(40), 'AMOUNT_TOO_LARGE'],
    [12.5, 'INVALID_AMOUNT'],
    [null, 'INVALID_AMOUNT'],
  ])('deposit amount %p → 400 %s', async (amount, code) => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/wallet/deposits',
      headers: bearer(randomUUID()),
      payload: { asset: 'BTC', amount },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe(code);
  });

  test('unknown asset and extra fields → 400', async () => {
    const h = bearer(randomUUID());
    const a = await app.inject({
      method: 'POST',
      url: '/api/v1/wallet/deposits',
      headers: h,
      payload: { asset: 'XYZ', amount: '1' },
    });
    expect(a.json().error.code).toBe('UNKNOWN_ASSET');
    const b = await app.inject({
      method: 'POST',
      url: '/api/v1/wallet/deposits',
      headers: h,
      payload: { asset: 'BTC', amount: '1', userId: randomUUID() },
    });
    expect(b.statusCode).toBe(400);
  });
});

describe('deposits', () => {
  test('pending, then confirmed by the scheduler and credited exactly once; Idempotency-Key replays', async () => {
    const user = randomUUID();
    const h = { ...bearer(user), 'idempotency-key': `dep-${user}` };
    const first = await app.inject({
      method: 'POST',
      url: '/api/v1/wallet/deposits',
      headers: h,
      payload: { asset: 'BTC', amount: '1.5' },
    });
    expect(first.statusCode).toBe(201);
    expect(first.json()).toMatchObject({ asset: 'BTC', amount: '1.50000000', status: 'pending' });
    const replay = await app.inject({
      method: 'POST',
      url: '/api/v1/wallet/deposits',
      headers: h,
      payload: { amount: '1.5', asset: 'BTC' },
    });
    expect(replay.statusCode).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.json()).toEqual(first.json());
    const other = await app.inject({
      method: 'POST',
      url: '/api/v1/wallet/deposits',
      headers: h,
      payload: { asset: 'BTC', amount: '2' },
    });
    expect(other.statusCode).toBe(422);

    await scheduler.tick();
    await scheduler.tick();
    const got = await app.inject({
      method: 'GET',
      url: `/api/v1/wallet/deposits/${first.json().id}`,
      headers: bearer(user),
    });
    expect(got.json().status).toBe('confirmed');
    const list = await app.inject({ method: 'GET', url: '/api/v1/wallet/deposits', headers: bearer(user) });
    expect(list.json().deposits).toHaveLength(1);
    const bal = await app.inject({ method: 'GET', url: '/api/v1/wallet/balances', headers: bearer(user) });
    expect(bal.json().balances.find((b: { asset: string }) => b.asset === 'BTC')).toEqual({
      asset: 'BTC',
      available: '1.50000000',
      held: '0.00000000',
      total: '1.50000000',
    });
    // Someone else's deposit is not found.
    const foreign = await app.inject({
      method: 'GET',
      url: `/api/v1/wallet/deposits/${first.json().id}`,
      headers: bearer(randomUUID()),
    });
    expect(foreign.statusCode).toBe(404);
    await assertLedgerInvariants(db.pool);
  });

  test('deposits kill switch → 503 DEPOSITS_DISABLED; only admins flip it', async () => {
    const user = randomUUID();
    const denied = await app.inject({
      method: 'POST',
      url: '/api/v1/admin/feature-flags/deposits/disable',
      headers: bearer(user),
    });
    expect(denied.statusCode).toBe(403);
    const off = await app.inject({
      method: 'POST',
      url: '/api/v1/admin/feature-flags/deposits/disable',
      headers: admin(),
      payload: { reason: 'test' },
    });
    expect(off.statusCode).toBe(200);
    expect(off.json()).toMatchObject({ name: 'deposits', enabled: false });
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/wallet/deposits',
      headers: bearer(user),
      payload: { asset: 'USD', amount: '10' },
    });
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('DEPOSITS_DISABLED');
    await app.inject({ method: 'POST', url: '/api/v1/admin/feature-flags/deposits/enable', headers: admin() });
    const ok = await app.inject({
      method: 'POST',
      url: '/api/v1/wallet/deposits',
      headers: bearer(user),
      payload: { asset: 'USD', amount: '10' },
    });
    expect(ok.statusCode).toBe(201);
  });
});

describe('withdrawals', () => {
  const withdraw = (headers: Record<string, string>, payload: Record<string, unknown>) =>
    app.inject({ method: 'POST', url: '/api/v1/wallet/withdrawals', headers, payload });

  test('request holds amount + fee; only the owner sees or cancels it; cancel releases', async () => {
    const user = randomUUID();
    await fundUser(db.pool, user, 'BTC', 100_000_000n);
    const res = await withdraw(bearer(user), { asset: 'BTC', amount: '0.1', address: BTC_ADDRESS });
    expect(res.statusCode).toBe(201);
    const w = res.json();
    expect(w).toMatchObject({ asset: 'BTC', amount: '0.10000000', fee: '0.00010000', status: 'pending' });
    const bal = await app.inject({ method: 'GET', url: '/api/v1/wallet/balances', headers: bearer(user) });
    expect(bal.json().balances.find((b: { asset: string }) => b.asset === 'BTC')).toMatchObject({
      held: '0.10010000',
      available: '0.89990000',
    });
    const stranger = randomUUID();
    expect(
      (await app.inject({ method: 'GET', url: `/api/v1/wallet/withdrawals/${w.id}`, headers: bearer(stranger) }))
        .statusCode,
    ).toBe(404);
    expect(
      (
        await app.inject({
          method: 'POST',
          url: `/api/v1/wallet/withdrawals/${w.id}/cancel`,
          headers: bearer(stranger),
        })
      ).statusCode,
    ).toBe(404);
    const list = await app.inject({ method: 'GET', url: '/api/v1/wallet/withdrawals', headers: bearer(user) });
    expect(list.json().withdrawals.map((x: { id: string }) => x.id)).toEqual([w.id]);
    const cancelled = await app.inject({
      method: 'POST',
      url: `/api/v1/wallet/withdrawals/${w.id}/cancel`,
      headers: bearer(user),
    });
    expect(cancelled.statusCode).toBe(200);
    expect(cancelled.json().status).toBe('cancelled');
    const after = await app.inject({ method: 'GET', url: '/api/v1/wallet/balances', headers: bearer(user) });
    expect(after.json().balances.find((b: { asset: string }) => b.asset === 'BTC')).toMatchObject({
      held: '0.00000000',
    });
    await assertLedgerInvariants(db.pool);
  });

  test('policy: address, min, max, funds, velocity by KYC tier — each refusal counted', async () => {
    const user = randomUUID();
    await fundUser(db.pool, user, 'BTC', 1_000_000_000n); // 10 BTC
    const h = bearer(user);
    const code = async (payload: Record<string, unknown>) => {
      const r = await withdraw(h, payload);
      return r.statusCode === 201 ? 'ok' : `${r.statusCode} ${r.json().error.code}`;
    };
    const before = await metric('withdrawals_blocked_total', 'reason="velocity"');
    expect(await code({ asset: 'BTC', amount: '0.1', address: '0xnotbitcoin' })).toBe('400 INVALID_ADDRESS');
    expect(await code({ asset: 'BTC', amount: '0.00001', address: BTC_ADDRESS })).toBe('400 AMOUNT_BELOW_MINIMUM');
    expect(await code({ asset: 'BTC', amount: '101', address: BTC_ADDRESS })).toBe('400 AMOUNT_ABOVE_MAXIMUM');
    expect(await code({ asset: 'BTC', amount: '0.000000001', address: BTC_ADDRESS })).toBe('400 AMOUNT_PRECISION');
    expect(await code({ asset: 'BTC', amount: '0.4', address: BTC_ADDRESS })).toBe('ok');
    expect(await code({ asset: 'BTC', amount: '0.2', address: BTC_ADDRESS })).toBe('429 VELOCITY_LIMIT_EXCEEDED');
    expect(await metric('withdrawals_blocked_total', 'reason="velocity"')).toBe(before + 1);
    // The KYC process raises the tier: the limit follows.
    const tier = await app.inject({
      method: 'PUT',
      url: `/internal/users/${user}/kyc-tier`,
      headers: internal(),
      payload: { tier: 1 },
    });
    expect(tier.statusCode).toBe(200);
    expect(await code({ asset: 'BTC', amount: '0.2', address: BTC_ADDRESS })).toBe('ok');
    expect(await code({ asset: 'BTC', amount: '4.5', address: BTC_ADDRESS })).toBe('429 VELOCITY_LIMIT_EXCEEDED');
    const poor = randomUUID();
    await fundUser(db.pool, poor, 'BTC', 10_000_000n); // 0.1 BTC: 0.1 + fee does not fit
    const r = await withdraw(bearer(poor), { asset: 'BTC', amount: '0.1', address: BTC_ADDRESS });
    expect(r.json().error.code).toBe('INSUFFICIENT_FUNDS');
    const audits = await db.pool.query(
      `SELECT details->>'reason' AS reason FROM wallet.audit_events WHERE actor = $1 AND outcome = 'blocked' ORDER BY id`,
      [`user:${user}`],
    );
    expect(audits.rows.map((x) => x.reason)).toEqual(['address', 'limits', 'limits', 'velocity', 'velocity']);
  });

  test('kill switch → 503 WITHDRAWALS_DISABLED (counted, audited); 2FA and API-key scope enforced', async () => {
    const user = randomUUID();
    await fundUser(db.pool, user, 'BTC', 100_000_000n);
    const payload = { asset: 'BTC', amount: '0.01', address: BTC_ADDRESS };
    await app.inject({ method: 'POST', url: '/api/v1/admin/feature-flags/withdrawals/disable', headers: admin() });
    const killed = await withdraw(bearer(user), payload);
    expect(killed.statusCode).toBe(503);
    expect(killed.json().error.code).toBe('WITHDRAWALS_DISABLED');
    expect(await metric('withdrawals_blocked_total', 'reason="kill_switch"')).toBeGreaterThanOrEqual(1);
    await app.inject({ method: 'POST', url: '/api/v1/admin/feature-flags/withdrawals/enable', headers: admin() });

    // 2FA on, last check an hour ago → MFA_REQUIRED; a fresh one passes.
    const stale = await withdraw(bearer(user, { sub: user, mfaAt: Math.floor(Date.now() / 1000) - 3600 }), payload);
    expect(stale.statusCode).toBe(403);
    expect(stale.json().error.code).toBe('MFA_REQUIRED');
    expect(await metric('withdrawals_blocked_total', 'reason="mfa"')).toBeGreaterThanOrEqual(1);
    const fresh = await withdraw(bearer(user, { sub: user, mfaAt: Math.floor(Date.now() / 1000) - 10 }), payload);
    expect(fresh.statusCode).toBe(201);

    // API keys: only with scope `withdraw`.
    const body = JSON.stringify(payload);
    const readOnly = issuer.createApiKey(user, ['read', 'trade']);
    const signed = (k: { apiKey: string; secret: string }) => ({
      'content-type': 'application/json',
      ...signApiRequest({ ...k, method: 'POST', path: '/api/v1/wallet/withdrawals', body }),
    });
    const noScope = await app.inject({
      method: 'POST',
      url: '/api/v1/wallet/withdrawals',
      headers: signed(readOnly),
      payload: body,
    });
    expect(noScope.statusCode).toBe(403);
    expect(noScope.json().error.code).toBe('INSUFFICIENT_SCOPE');
    const withdrawKey = issuer.createApiKey(user, ['read', 'withdraw']);
    const ok = await app.inject({
      method: 'POST',
      url: '/api/v1/wallet/withdrawals',
      headers: signed(withdrawKey),
      payload: body,
    });
    expect(ok.statusCode).toBe(201);
  });

  test('a retried withdrawal request with the same Idempotency-Key holds funds once', async () => {
    const user = randomUUID();
    await fundUser(db.pool, user, 'BTC', 100_000_000n);
    const h = { ...bearer(user), 'idempotency-key': `wd-${user}` };
    const payload = { asset: 'BTC', amount: '0.2', address: BTC_ADDRESS };
    const first = await withdraw(h, payload);
    const again = await withdraw(h, payload);
    expect([first.statusCode, again.statusCode]).toEqual([201, 201]);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json().id).toBe(first.json().id);
    const list = await app.inject({ method: 'GET', url: '/api/v1/wallet/withdrawals', headers: bearer(user) });
    expect(list.json().withdrawals).toHaveLength(1);
  });

  test('Idempotency-Key is atomic with the withdrawal: a reply that fails to be stored never lets a retry withdraw twice', async () => {
    const user = randomUUID();
    await fundUser(db.pool, user, 'BTC', 100_000_000n);
    const key = `atomic-${user}`;
    // A fault on the first attempt to store this key's reply (e.g. the connection drops right after the effect
    // committed). The sequence is not transactional, so the fault fires once whatever rolls back.
    await db.pool.query(`CREATE SEQUENCE IF NOT EXISTS wallet.test_reply_fault`);
    await db.pool.query(`
      CREATE OR REPLACE FUNCTION wallet.test_reply_fault() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.key = '${key}' AND NEW.status_code IS NOT NULL AND nextval('wallet.test_reply_fault') = 1 THEN
          RAISE EXCEPTION 'injected fault storing the reply';
        END IF;
        RETURN NEW;
      END $$`);
    await db.pool.query(`CREATE TRIGGER test_reply_fault BEFORE UPDATE ON wallet.idempotency_keys
                           FOR EACH ROW EXECUTE FUNCTION wallet.test_reply_fault()`);
    try {
      const h = { ...bearer(user), 'idempotency-key': key };
      const payload = { asset: 'BTC', amount: '0.2', address: BTC_ADDRESS };
      const first = await withdraw(h, payload);
      expect(first.statusCode).toBe(500);
      const retry = await withdraw(h, payload);
      expect(retry.statusCode).toBe(201);
      const again = await withdraw(h, payload);
      expect([again.statusCode, again.headers['idempotent-replayed'], again.json().id]).toEqual([
        201,
        'true',
        retry.json().id,
      ]);
      const list = await app.inject({ method: 'GET', url: '/api/v1/wallet/withdrawals', headers: bearer(user) });
      expect(list.json().withdrawals).toHaveLength(1);
      const held = await db.pool.query(`SELECT held::text FROM wallet.accounts WHERE user_id = $1 AND asset = 'BTC'`, [
        user,
      ]);
      expect(held.rows[0].held).toBe('20010000'); // 0.2 BTC + the 0.0001 BTC fee, once
    } finally {
      await db.pool.query(`DROP TRIGGER test_reply_fault ON wallet.idempotency_keys`);
    }
  });

  test('dispatch publishes payout.requested via the outbox; completion captures, failure releases', async () => {
    const user = randomUUID();
    await fundUser(db.pool, user, 'USD', 100_000n); // $1000
    const mk = async (amount: string) =>
      (await withdraw(bearer(user), { asset: 'USD', amount, address: 'DE89370400440532013000' })).json() as {
        id: string;
      };
    const a = await mk('100');
    const b = await mk('200');
    await scheduler.tick();
    const outbox = await db.pool.query(
      `SELECT routing_key, message->'payload'->>'withdrawalId' AS id, message->'payload'->>'amount' AS amount
         FROM wallet.outbox WHERE type = 'payout.requested' AND message->'payload'->>'userId' = $1 ORDER BY sequence`,
      [user],
    );
    expect(outbox.rows).toEqual([
      { routing_key: 'payouts', id: a.id, amount: '10000' },
      { routing_key: 'payouts', id: b.id, amount: '20000' },
    ]);
    const cancel = await app.inject({
      method: 'POST',
      url: `/api/v1/wallet/withdrawals/${a.id}/cancel`,
      headers: bearer(user),
    });
    expect(cancel.statusCode).toBe(409);
    expect(cancel.json().error.code).toBe('WITHDRAWAL_NOT_CANCELLABLE');

    const done = PayoutCompletedV1.create(
      { withdrawalId: a.id, railTxId: 'rail-1', completedAt: new Date().toISOString() },
      { producer: 'payment-processor' },
    );
    expect(await withTransaction(db.pool, (c) => completePayout(c, done))).toBe('completed');
    expect(await withTransaction(db.pool, (c) => completePayout(c, { ...done, id: randomUUID() }))).toBe('duplicate');
    const failed = PayoutFailedV1.create(
      { withdrawalId: b.id, reason: 'rail rejected', failedAt: new Date().toISOString() },
      { producer: 'payment-processor' },
    );
    expect(await withTransaction(db.pool, (c) => failPayout(c, failed))).toBe('failed');
    // A completion for a failed withdrawal is refused loudly (it would go to the dead letters).
    await expect(
      withTransaction(db.pool, (c) =>
        completePayout(c, { ...done, id: randomUUID(), payload: { ...done.payload, withdrawalId: b.id } }),
      ),
    ).rejects.toThrow(/status failed/);

    const got = await app.inject({ method: 'GET', url: `/api/v1/wallet/withdrawals/${a.id}`, headers: bearer(user) });
    expect(got.json()).toMatchObject({ status: 'completed', railTxId: 'rail-1' });
    const bal = await app.inject({ method: 'GET', url: '/api/v1/wallet/balances', headers: bearer(user) });
    // 1000 - 100 - 1 fee
    expect(bal.json().balances.find((x: { asset: string }) => x.asset === 'USD')).toMatchObject({
      total: '899.00',
      held: '0.00',
    });
    const ledger = await app.inject({ method: 'GET', url: '/api/v1/wallet/ledger?asset=USD', headers: bearer(user) });
    expect(ledger.json().entries.map((e: { memo: string; amount: string }) => `${e.memo} ${e.amount}`)).toEqual([
      'withdrawal_fee -1.00',
      'withdrawal -100.00',
      'deposit 1000.00',
    ]);
    await assertLedgerInvariants(db.pool);
  });
});

describe('ledger statement', () => {
  test('paginates with an opaque cursor and filters by asset', async () => {
    const user = randomUUID();
    for (let i = 1; i <= 5; i++) await fundUser(db.pool, user, 'USDT', BigInt(i) * 1_000_000n);
    await fundUser(db.pool, user, 'ETH', 10n ** 18n);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: { statusCode: number; json(): any } = await app.inject({
        method: 'GET',
        url: `/api/v1/wallet/ledger?asset=USDT&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        headers: bearer(user),
      });
      expect(res.statusCode).toBe(200);
      seen.push(...res.json().entries.map((e: { amount: string }) => e.amount));
      cursor = res.json().nextCursor;
    } while (cursor);
    expect(seen).toEqual(['5.000000', '4.000000', '3.000000', '2.000000', '1.000000']);
    const all = await app.inject({ method: 'GET', url: '/api/v1/wallet/ledger', headers: bearer(user) });
    expect(all.json().entries[0]).toMatchObject({ asset: 'ETH', amount: '1.000000000000000000', reason: 'deposit' });
    const bad = await app.inject({ method: 'GET', url: '/api/v1/wallet/ledger?cursor=garbage', headers: bearer(user) });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('INVALID_CURSOR');
    // a cursor of the right shape whose id overflows bigint is refused too, not a 500 at the query
    const huge = Buffer.from(JSON.stringify({ p: '9999999999999999999' })).toString('base64url');
    const overflow = await app.inject({
      method: 'GET',
      url: `/api/v1/wallet/ledger?cursor=${huge}`,
      headers: bearer(user),
    });
    expect(overflow.statusCode).toBe(400);
    expect(overflow.json().error.code).toBe('INVALID_CURSOR');
  });
});

describe('admin writes and 2FA', () => {
  test('a stale 2FA check blocks kill switches, reconciliation runs and dead-letter retries, not reads', async () => {
    const now = Math.floor(Date.now() / 1000);
    const as = (mfaAt: number) => bearer(randomUUID(), { sub: '', roles: ['admin'], mfaAt });
    const writes = [
      '/api/v1/admin/feature-flags/deposits/enable',
      '/api/v1/admin/reconciliation/run',
      `/api/v1/admin/dead-letters/wallet/${randomUUID()}/retry`,
    ];
    for (const url of writes) {
      const res = await app.inject({ method: 'POST', url, headers: as(now - 3600) });
      expect({ url, status: res.statusCode, code: res.json().error.code }).toEqual({
        url,
        status: 403,
        code: 'MFA_REQUIRED',
      });
    }
    for (const url of ['/api/v1/admin/dead-letters/wallet', '/api/v1/admin/reconciliation/reports']) {
      expect((await app.inject({ method: 'GET', url, headers: as(now - 3600) })).statusCode).toBe(200);
    }
    const fresh = await app.inject({ method: 'POST', url: writes[0]!, headers: as(now - 5) });
    expect(fresh.statusCode).toBe(200);
  });
});

describe('support view of a user account', () => {
  test('staff read any user balances and statement (audited); users and anonymous cannot', async () => {
    const user = randomUUID();
    await fundUser(db.pool, user, 'USDT', 2_500_000n);
    const support = bearer(randomUUID(), { sub: '', roles: ['support'], mfaAt: Math.floor(Date.now() / 1000) });
    const base = `/api/v1/admin/wallet/users/${user}`;
    for (const headers of [support, admin()]) {
      const b = await app.inject({ method: 'GET', url: `${base}/balances`, headers });
      expect(b.statusCode).toBe(200);
      expect(b.json().balances.find((x: { asset: string }) => x.asset === 'USDT')).toEqual({
        asset: 'USDT',
        available: '2.500000',
        held: '0.000000',
        total: '2.500000',
      });
      const l = await app.inject({ method: 'GET', url: `${base}/ledger?asset=USDT`, headers });
      expect(l.statusCode).toBe(200);
      expect(l.json().entries).toHaveLength(1);
      expect(l.json().entries[0]).toMatchObject({ asset: 'USDT', amount: '2.500000', reason: 'deposit' });
    }
    for (const url of [`${base}/balances`, `${base}/ledger`]) {
      expect((await app.inject({ method: 'GET', url, headers: bearer(user) })).statusCode).toBe(403);
      expect((await app.inject({ method: 'GET', url })).statusCode).toBe(401);
    }
    const bad = await app.inject({ method: 'GET', url: '/api/v1/admin/wallet/users/nope/balances', headers: support });
    expect(bad.statusCode).toBe(400);
    const { rows } = await db.pool.query<{ action: string; n: string }>(
      `SELECT action, count(*)::text AS n FROM wallet.audit_events WHERE subject_id = $1 GROUP BY action ORDER BY action`,
      [user],
    );
    expect(rows).toEqual([
      { action: 'account.balances_viewed', n: '2' },
      { action: 'account.ledger_viewed', n: '2' },
    ]);
  });
});

describe('internal hold API', () => {
  test('service token required; 201 then 200 replay, 409 conflict, 400 insufficient; release once', async () => {
    const user = randomUUID();
    await fundUser(db.pool, user, 'USD', 10_000n);
    const holdId = randomUUID();
    const body = {
      holdId,
      userId: user,
      asset: 'USD',
      amount: '6000',
      reason: 'order',
      refType: 'order',
      refId: holdId,
    };
    expect((await app.inject({ method: 'POST', url: '/internal/holds', payload: body })).statusCode).toBe(401);
    expect(
      (
        await app.inject({
          method: 'POST',
          url: '/internal/holds',
          headers: { 'x-internal-token': 'wrong-token-wrong-token' },
          payload: body,
        })
      ).statusCode,
    ).toBe(401);
    const created = await app.inject({ method: 'POST', url: '/internal/holds', headers: internal(), payload: body });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ holdId, amount: '6000', remaining: '6000', status: 'active' });
    const replay = await app.inject({ method: 'POST', url: '/internal/holds', headers: internal(), payload: body });
    expect(replay.statusCode).toBe(200);
    const conflict = await app.inject({
      method: 'POST',
      url: '/internal/holds',
      headers: internal(),
      payload: { ...body, amount: '5000' },
    });
    expect(conflict.statusCode).toBe(409);
    expect(conflict.json().error.code).toBe('HOLD_CONFLICT');
    const other = randomUUID();
    const poor = await app.inject({
      method: 'POST',
      url: '/internal/holds',
      headers: internal(),
      payload: { ...body, holdId: other, refId: other, amount: '4001' },
    });
    expect(poor.statusCode).toBe(400);
    expect(poor.json().error.code).toBe('INSUFFICIENT_FUNDS');
    for (const [amount, code] of [
      ['0', 'AMOUNT_ZERO'],
      ['1.5', 'INVALID_AMOUNT'],
      ['-3', 'INVALID_AMOUNT'],
    ]) {
      const r = await app.inject({
        method: 'POST',
        url: '/internal/holds',
        headers: internal(),
        payload: { ...body, holdId: randomUUID(), amount },
      });
      expect([r.statusCode, r.json().error.code]).toEqual([400, code]);
    }
    const get = await app.inject({ method: 'GET', url: `/internal/holds/${holdId}`, headers: internal() });
    expect(get.json().status).toBe('active');
    const missing = await app.inject({ method: 'GET', url: `/internal/holds/${randomUUID()}`, headers: internal() });
    expect(missing.statusCode).toBe(404);
    const r1 = await app.inject({
      method: 'POST',
      url: `/internal/holds/${holdId}/release`,
      headers: internal(),
      payload: { reason: 'cancelled' },
    });
    expect(r1.json()).toMatchObject({ released: '6000', hold: { status: 'released', remaining: '0' } });
    const r2 = await app.inject({ method: 'POST', url: `/internal/holds/${holdId}/release`, headers: internal() });
    expect(r2.json()).toMatchObject({ released: '0' });
    await assertLedgerInvariants(db.pool);
  });

  test('batch: each hold answered as the single call would, in request order; one refusal does not affect the rest', async () => {
    const user = randomUUID();
    await fundUser(db.pool, user, 'USD', 10_000n);
    const hold = (amount: string, id = randomUUID(), asset = 'USD') => ({
      holdId: id,
      userId: user,
      asset,
      amount,
      reason: 'order',
      refType: 'order',
      refId: id,
    });
    const first = hold('3000');
    const single = await app.inject({ method: 'POST', url: '/internal/holds', headers: internal(), payload: first });
    expect(single.statusCode).toBe(201);
    const holds = [
      hold('2000'), // created
      first, // identical replay
      { ...first, amount: '2999' }, // same id, other amount
      hold('6000'), // 10,000 − 3,000 − 2,000 = 5,000 left: refused
      hold('4000'), // fits after the refusal
      hold('0'),
      hold('10', randomUUID(), 'XYZ'),
      hold('1000'), // 0 left now
    ];
    expect((await app.inject({ method: 'POST', url: '/internal/holds/batch', payload: { holds } })).statusCode).toBe(
      401,
    );
    const res = await app.inject({
      method: 'POST',
      url: '/internal/holds/batch',
      headers: internal(),
      payload: { holds },
    });
    expect(res.statusCode).toBe(200);
    const results = res.json().results as Array<{
      status: number;
      hold?: { holdId: string };
      error?: { code: string };
    }>;
    expect(results.map((r) => [r.status, r.error?.code ?? r.hold?.holdId])).toEqual([
      [201, holds[0]!.holdId],
      [200, first.holdId],
      [409, 'HOLD_CONFLICT'],
      [400, 'INSUFFICIENT_FUNDS'],
      [201, holds[4]!.holdId],
      [400, 'AMOUNT_ZERO'],
      [400, 'UNKNOWN_ASSET'],
      [201, holds[7]!.holdId],
    ]);
    const { rows } = await db.pool.query<{ held: string; balance: string }>(
      `SELECT held::text, balance::text FROM wallet.accounts WHERE user_id = $1 AND asset = 'USD'`,
      [user],
    );
    expect(rows).toEqual([{ held: '10000', balance: '10000' }]);
    // each refused hold is counted by its code, as a refusal of the single route is
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    for (const [status, code] of [
      ['409', 'HOLD_CONFLICT'],
      ['400', 'INSUFFICIENT_FUNDS'],
      ['400', 'AMOUNT_ZERO'],
      ['400', 'UNKNOWN_ASSET'],
    ]) {
      expect(metrics).toMatch(
        new RegExp(
          `^http_errors_total\\{[^}]*route="/internal/holds/batch",status="${status}",code="${code}"\\} 1$`,
          'm',
        ),
      );
    }
    // a request the schema refuses whole: 400, nothing held
    const bad = await app.inject({
      method: 'POST',
      url: '/internal/holds/batch',
      headers: internal(),
      payload: { holds: [hold('1'), { ...hold('1'), refId: '' }] },
    });
    expect(bad.statusCode).toBe(400);
    const empty = await app.inject({
      method: 'POST',
      url: '/internal/holds/batch',
      headers: internal(),
      payload: { holds: [] },
    });
    expect(empty.statusCode).toBe(400);
    await assertLedgerInvariants(db.pool);
  });

  test('the hold API cannot release a withdrawal hold (409 HOLD_MISMATCH, nothing changes)', async () => {
    const user = randomUUID();
    await fundUser(db.pool, user, 'USD', 100_000n);
    const w = await app.inject({
      method: 'POST',
      url: '/api/v1/wallet/withdrawals',
      headers: bearer(user),
      payload: { asset: 'USD', amount: '100', address: 'DE89370400440532013000' },
    });
    expect(w.statusCode).toBe(201);
    const id = w.json().id as string;
    const r = await app.inject({ method: 'POST', url: `/internal/holds/${id}/release`, headers: internal() });
    expect([r.statusCode, r.json().error.code]).toEqual([409, 'HOLD_MISMATCH']);
    const hold = await app.inject({ method: 'GET', url: `/internal/holds/${id}`, headers: internal() });
    expect(hold.json()).toMatchObject({ status: 'active', released: '0', refType: 'withdrawal' });
  });
});

test('100 parallel hold requests against one balance over HTTP: no overdraft, the sum is exact', async () => {
  const user = randomUUID();
  await fundUser(db.pool, user, 'USDT', 1_000_000n); // 1 USDT
  const responses = await Promise.all(
    Array.from({ length: 100 }, () => {
      const holdId = randomUUID();
      return app.inject({
        method: 'POST',
        url: '/internal/holds',
        headers: internal(),
        payload: {
          holdId,
          userId: user,
          asset: 'USDT',
          amount: '30000',
          reason: 'order',
          refType: 'order',
          refId: holdId,
        },
      });
    }),
  );
  const codes = responses.map((r) => (r.statusCode === 201 ? 'created' : r.json().error.code));
  expect(codes.filter((c) => c === 'created')).toHaveLength(33); // 33 × 0.03 = 0.99
  expect(codes.filter((c) => c !== 'created').every((c) => c === 'INSUFFICIENT_FUNDS')).toBe(true);
  const bal = await app.inject({ method: 'GET', url: '/api/v1/wallet/balances', headers: bearer(user) });
  expect(bal.json().balances.find((b: { asset: string }) => b.asset === 'USDT')).toEqual({
    asset: 'USDT',
    total: '1.000000',
    held: '0.990000',
    available: '0.010000',
  });
  await assertLedgerInvariants(db.pool);
});

describe('reconciliation', () => {
  test('clean ledger → ok; a corrupted balance is found, reported and counted; staff only', async () => {
    const user = randomUUID();
    await fundUser(db.pool, user, 'ETH', 5n * 10n ** 18n);
    const forbidden = await app.inject({
      method: 'POST',
      url: '/api/v1/admin/reconciliation/run',
      headers: bearer(user),
    });
    expect(forbidden.statusCode).toBe(403);
    const support = bearer(randomUUID(), { sub: '', roles: ['support'], mfaAt: Math.floor(Date.now() / 1000) });
    const clean = await app.inject({ method: 'POST', url: '/api/v1/admin/reconciliation/run', headers: support });
    expect(clean.statusCode).toBe(201);
    expect(clean.json()).toMatchObject({ status: 'ok', mismatchCount: 0 });

    const before = await metric('reconciliation_mismatches_total', 'check="balance_vs_journal"');
    await db.pool.query(`UPDATE wallet.accounts SET balance = balance + 7 WHERE user_id = $1 AND asset = 'ETH'`, [
      user,
    ]);
    const run = await app.inject({ method: 'POST', url: '/api/v1/admin/reconciliation/run', headers: admin() });
    const report = run.json();
    expect(report.status).toBe('mismatch');
    const byName = Object.fromEntries(report.report.checks.map((c: { name: string }) => [c.name, c]));
    expect(byName.balance_vs_journal.items).toEqual([
      expect.objectContaining({
        userId: user,
        asset: 'ETH',
        stored: (5n * 10n ** 18n + 7n).toString(),
        journal: (5n * 10n ** 18n).toString(),
      }),
    ]);
    expect(byName.asset_sum_zero.items).toEqual([{ asset: 'ETH', sum: '7' }]);
    expect(await metric('reconciliation_mismatches_total', 'check="balance_vs_journal"')).toBe(before + 1);
    await expect(assertLedgerInvariants(db.pool)).rejects.toThrow(/balance_vs_journal/);

    const list = await app.inject({
      method: 'GET',
      url: '/api/v1/admin/reconciliation/reports?limit=2',
      headers: support,
    });
    expect(list.json().reports.map((r: { id: string }) => r.id)).toEqual([report.id, clean.json().id]);
    const one = await app.inject({
      method: 'GET',
      url: `/api/v1/admin/reconciliation/reports/${report.id}`,
      headers: support,
    });
    expect(one.json().mismatchCount).toBe(report.mismatchCount);
    const none = await app.inject({
      method: 'GET',
      url: `/api/v1/admin/reconciliation/reports/${randomUUID()}`,
      headers: support,
    });
    expect(none.statusCode).toBe(404);

    // Repair (a compensating fix would be a journal entry; here the corruption is undone) so later tests stay clean.
    await db.pool.query(`UPDATE wallet.accounts SET balance = balance - 7 WHERE user_id = $1 AND asset = 'ETH'`, [
      user,
    ]);
    await assertLedgerInvariants(db.pool);
  });
});

describe('admin dead letters', () => {
  test('mounted for admins only', async () => {
    expect(
      (await app.inject({ method: 'GET', url: '/api/v1/admin/dead-letters/wallet', headers: bearer(randomUUID()) }))
        .statusCode,
    ).toBe(403);
    const res = await app.inject({ method: 'GET', url: '/api/v1/admin/dead-letters/wallet', headers: admin() });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ items: [], nextCursor: null });
  });
});

describe('sandbox deposits are off unless the deployment says it is a sandbox', () => {
  test('a wallet built without sandboxDeposits refuses self-credited deposits', async () => {
    const off = await buildApp({ pool, auth: issuer.authOptions(), fastify: { logger: false } });
    await off.ready();
    try {
      const res = await off.inject({
        method: 'POST',
        url: '/api/v1/wallet/deposits',
        headers: bearer(randomUUID()),
        payload: { asset: 'USD', amount: '1000000.00' },
      });
      expect([res.statusCode, res.json().error.code]).toEqual([403, 'SANDBOX_DEPOSITS_DISABLED']);
    } finally {
      await off.close();
    }
  });

  test('NODE_ENV=production refuses SANDBOX_DEPOSITS=true at start', () => {
    const r = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', "import('./services/wallet/src/config.ts').then((m) => m.loadConfig())"],
      {
        env: {
          PATH: process.env.PATH,
          NODE_ENV: 'production',
          SANDBOX_DEPOSITS: 'true',
          INTERNAL_API_TOKEN: 'a-real-looking-internal-token-42',
          // every other production requirement met, so the refusal is the sandbox's
          INTERNAL_CALLERS: 'order:a-real-looking-order-token-42',
        },
        encoding: 'utf8',
      },
    );
    expect(r.status).toBe(78);
    expect(r.stderr).toMatch(/SANDBOX_DEPOSITS=true is refused/);
  });
});
