import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '@exchange/db/testing';
import { FeatureFlags, promClient } from '@exchange/platform';
import { FLAG_DEFAULTS } from '../context.ts';
import { Assets } from '../assets.ts';
import { createDeposit, parseWithdrawalLimits, requestWithdrawal } from '../funding/service.ts';
import { userBalances } from '../ledger/service.ts';
import { createWalletMetrics } from '../metrics.ts';
import { runMigrations } from '../migrate.ts';
import { Scheduler } from './scheduler.ts';
import { assertLedgerInvariants, fundUser } from '../testing/index.ts';

let db: TestDatabase;
const log = { info() {}, error() {} };

beforeAll(async () => {
  db = await createTestDatabase('wallet_sched');
  await runMigrations(db.pool);
});
afterAll(async () => {
  await db.drop();
});

const status = async (id: string) =>
  (await db.pool.query<{ status: string }>(`SELECT status FROM wallet.deposits WHERE id = $1`, [id])).rows[0]!.status;

test('a deposit due while the service was down is credited after the restart, exactly once', async () => {
  const user = randomUUID();
  const d = await createDeposit(db.pool, { userId: user, asset: 'USDT', amount: 5_000_000n, confirmationMs: 400 });
  const before = new Scheduler({ pool: db.pool, pollMs: 20, reconciliationIntervalMs: 0, log });
  before.start();
  await new Promise((r) => setTimeout(r, 100));
  await before.stop(); // the process goes away before the deposit is due
  expect(await status(d.id)).toBe('pending');
  await new Promise((r) => setTimeout(r, 400));
  const after = new Scheduler({ pool: db.pool, pollMs: 20, reconciliationIntervalMs: 0, log });
  expect((await after.tick()).deposits).toBe(1);
  expect((await after.tick()).deposits).toBe(0);
  expect(await status(d.id)).toBe('confirmed');
  expect((await userBalances(db.pool, user)).get('USDT')?.total).toBe(5_000_000n);
  await assertLedgerInvariants(db.pool);
});

test('replicas confirming the same due deposits concurrently credit each exactly once', async () => {
  const user = randomUUID();
  for (let i = 0; i < 30; i++)
    await createDeposit(db.pool, { userId: user, asset: 'USD', amount: 100n, confirmationMs: 0 });
  const replicas = [1, 2, 3].map(
    () => new Scheduler({ pool: db.pool, pollMs: 1000, reconciliationIntervalMs: 0, log }),
  );
  const results = await Promise.all(replicas.map((s) => s.tick()));
  expect(results.reduce((n, r) => n + r.deposits, 0)).toBe(30);
  expect((await userBalances(db.pool, user)).get('USD')?.total).toBe(3_000n);
  await assertLedgerInvariants(db.pool);
});

test('scheduled reconciliation runs once per interval across replicas and counts into the metric', async () => {
  const registry = new promClient.Registry();
  const metrics = createWalletMetrics(registry);
  const mk = () => new Scheduler({ pool: db.pool, pollMs: 1000, reconciliationIntervalMs: 3_600_000, metrics, log });
  const first = await Promise.all([mk().tick(), mk().tick()]);
  expect(first.filter((r) => r.reconciled)).toHaveLength(1);
  expect((await mk().tick()).reconciled).toBe(false);
  const { rows } = await db.pool.query(`SELECT status FROM wallet.reconciliation_reports WHERE trigger = 'scheduled'`);
  expect(rows).toEqual([{ status: 'ok' }]);
  const text = await registry.metrics();
  expect(text).toMatch(/reconciliation_runs_total\{status="ok"\} 1/);
  expect(text).toMatch(/reconciliation_mismatches_total\{check="balance_vs_journal"\} 0/);
});

test('no scheduled reconciliation in the start-up delay (the services it asks may still be starting), one after it', async () => {
  await db.pool.query(`DELETE FROM wallet.reconciliation_reports WHERE trigger = 'scheduled'`);
  const scheduler = new Scheduler({
    pool: db.pool,
    pollMs: 1000,
    reconciliationIntervalMs: 3_600_000,
    reconciliationStartDelayMs: 500,
    log,
  });
  expect((await scheduler.tick()).reconciled).toBe(false);
  const { rows } = await db.pool.query(`SELECT 1 FROM wallet.reconciliation_reports WHERE trigger = 'scheduled'`);
  expect(rows).toHaveLength(0);
  await new Promise((r) => setTimeout(r, 500));
  expect((await scheduler.tick()).reconciled).toBe(true);
});

test('an incomplete scheduled reconciliation is retried after 5 minutes, a complete one only after the interval', async () => {
  const scheduled = async (status: string, minutesAgo: number) => {
    await db.pool.query(`DELETE FROM wallet.reconciliation_reports WHERE trigger = 'scheduled'`);
    await db.pool.query(
      `INSERT INTO wallet.reconciliation_reports (id, trigger, status, mismatch_count, started_at, finished_at, report)
       VALUES ($1, 'scheduled', $2, 0, now() - make_interval(mins => $3), now() - make_interval(mins => $3), '{}')`,
      [randomUUID(), status, minutesAgo],
    );
  };
  const scheduler = new Scheduler({ pool: db.pool, pollMs: 1000, reconciliationIntervalMs: 3_600_000, log });
  await scheduled('incomplete', 4);
  expect((await scheduler.tick()).reconciled).toBe(false);
  await scheduled('ok', 6);
  expect((await scheduler.tick()).reconciled).toBe(false);
  await scheduled('mismatch', 6);
  expect((await scheduler.tick()).reconciled).toBe(false);
  await scheduled('incomplete', 6);
  expect((await scheduler.tick()).reconciled).toBe(true);
  expect((await scheduler.tick()).reconciled).toBe(false); // the retry itself counts as the last run
});

test('the withdrawals kill switch also stops payouts already requested; they go out once it is lifted', async () => {
  const assets = new Assets();
  const user = randomUUID();
  await fundUser(db.pool, user, 'USD', 100_000n);
  const policy = { limits: parseWithdrawalLimits(undefined, assets), dispatchDelayMs: 0 };
  const w = await requestWithdrawal(db.pool, assets, policy, {
    userId: user,
    asset: 'USD',
    amount: '100',
    address: 'DE89370400440532013000',
  });
  const flags = new FeatureFlags({ pool: db.pool, schema: 'wallet', defaults: FLAG_DEFAULTS });
  await flags.set('withdrawals', false, 'test', 'incident');
  const scheduler = new Scheduler({ pool: db.pool, pollMs: 1000, reconciliationIntervalMs: 0, log });
  expect((await scheduler.tick()).withdrawals).toBe(0);
  const row = async () =>
    (
      await db.pool.query<{ status: string; sent: string }>(
        `SELECT status, (SELECT count(*) FROM wallet.outbox WHERE type = 'payout.requested'
                           AND message->'payload'->>'withdrawalId' = $1::text)::text AS sent
           FROM wallet.withdrawals WHERE id = $1::uuid`,
        [w.id],
      )
    ).rows[0];
  expect(await row()).toEqual({ status: 'pending', sent: '0' });
  await flags.set('withdrawals', true, 'test');
  expect((await scheduler.tick()).withdrawals).toBe(1);
  expect(await row()).toEqual({ status: 'processing', sent: '1' });
});

test('idempotency keys stuck without a reply are purged after 10 minutes, answered ones after a day', async () => {
  const insert = (key: string, status: number | null, age: string) =>
    db.pool.query(
      `INSERT INTO wallet.idempotency_keys (principal, key, method, path, request_hash, status_code, created_at)
       VALUES ('p', $1, 'POST', '/x', 'h', $2, now() - $3::interval)`,
      [key, status, age],
    );
  await insert('stuck-old', null, '11 minutes');
  await insert('stuck-new', null, '1 minute');
  await insert('done-recent', 201, '2 hours');
  await insert('done-old', 201, '25 hours');
  const scheduler = new Scheduler({ pool: db.pool, pollMs: 1000, reconciliationIntervalMs: 0, log });
  expect((await scheduler.tick()).purgedKeys).toBe(2);
  const { rows } = await db.pool.query(`SELECT key FROM wallet.idempotency_keys WHERE principal = 'p' ORDER BY key`);
  expect(rows.map((r) => r.key)).toEqual(['done-recent', 'stuck-new']);
});
