/**
 * Restore drill: the backup and restore scripts the chart's Jobs run (k8s/charts/exchange/files/{backup,restore}.sh),
 * with real pg_dump/psql/age/rclone, against a live exchange.
 *
 * A trade settles; the backup runs (encrypted, copied "off-site" to an rclone local remote standing in for S3) and
 * is recorded; then the database moves on: a newer release's migration (a new table plus its migration-history row,
 * applied as a migration would be) and a second trade. The restore refuses to start while the services are still
 * connected, runs once they are stopped, over the live database with its newer data, and the services start on the
 * restored database: migrations, engine recovery, reconciliation clean, the trading flow consistent, the first trade
 * there and the second gone.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '@exchange/db/testing';
import { provisionFromEnv } from '@exchange/db';
import { assertTradingConsistency, assertWalletReconciliation, waitForQuiescence } from './consistency.ts';
import { crossTrade, eventually, startTestStack, type TestStack } from './index.ts';

const run = promisify(execFile);
// Two stack starts (migrations, engine recovery) on a loaded 2-core machine: readiness is waited for, not raced.
const READY_MS = 180_000;
// A restored database is only readable with the secrets it was written with (signing keys and API-key secrets are
// sealed with them): both stacks share them, as a real restore must.
const secrets = {
  API_KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
  SIGNING_KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
};
const files = resolve(fileURLToPath(import.meta.url), '../../../../k8s/charts/exchange/files');
const work = mkdtempSync(join(tmpdir(), 'restore-drill-'));
let db: TestDatabase;
let t: TestStack | undefined;

beforeAll(async () => {
  // the services run as their own database roles, as every deployment does
  db = await createTestDatabase('drill', { serviceRoles: true });
  await run('age-keygen', ['-o', join(work, 'key.txt')]);
  const { stdout } = await run('age-keygen', ['-y', join(work, 'key.txt')]);
  await run('sh', ['-c', `printf '%s\\n' "$1" > "$2"`, 'sh', stdout.trim(), join(work, 'recipients.txt')]);
}, 30_000);
afterAll(async () => {
  await t?.close();
  await db?.drop();
  rmSync(work, { recursive: true, force: true });
}, 60_000);

const script = (name: string, env: Record<string, string>) =>
  run('bash', [join(files, name)], {
    env: { PATH: process.env.PATH, HOME: work, DATABASE_URL: db.url, ...env },
    timeout: 120_000,
  });

async function trade(stack: TestStack, price: string): Promise<string> {
  const id = await crossTrade(stack, price);
  await waitForQuiescence(db.pool);
  return id;
}

/**
 * Every message a service published has been consumed by every queue that consumes its type (the consumer's inbox
 * row commits with its effects), and nothing is left to publish. The database alone then holds the whole state:
 * what a dump must capture, since a restore brings back the database and not the broker's queues. Without it the
 * drill was flaky under load: the dump could catch the seller's fill (order.updated) still in RabbitMQ after the
 * buyer's was applied; the restored stack (on a new vhost) never got it, and the seller's order stayed open with an
 * active hold the engine had settled, which reconciliation (rightly) reported.
 */
async function waitForEveryMessageConsumed(): Promise<void> {
  let left: unknown[] = [];
  await eventually(
    async () => {
      const { rows } = await db.pool.query(`
        WITH sent AS (
          SELECT message_id, type, sent_at FROM orders.outbox
          UNION ALL SELECT message_id, type, sent_at FROM payment.outbox
          UNION ALL SELECT message_id, type, sent_at FROM wallet.outbox),
        consumed AS (
          SELECT queue, message_id, type FROM orders.inbox
          UNION ALL SELECT queue, message_id, type FROM payment.inbox
          UNION ALL SELECT queue, message_id, type FROM wallet.inbox),
        routes AS (SELECT DISTINCT queue, type FROM consumed)
        SELECT s.type, r.queue, s.message_id FROM sent s LEFT JOIN routes r ON r.type = s.type
         WHERE s.sent_at IS NULL
            OR (r.queue IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM consumed c WHERE c.queue = r.queue AND c.message_id = s.message_id))
         LIMIT 5`);
      left = rows;
      return rows.length === 0;
    },
    180_000,
    'every published message to be consumed',
  ).catch((e) => {
    throw new Error(`${(e as Error).message}: ${JSON.stringify(left)}`);
  });
  await waitForQuiescence(db.pool);
}

test('a dump taken before a migration restores over the live database; the services start clean on it', async () => {
  t = await startTestStack({ database: db, env: secrets, readyTimeoutMs: READY_MS });
  const before = await trade(t, '60000');
  await waitForEveryMessageConsumed();

  // --- backup, as the CronJob runs it
  const offsite = join(work, 'offsite');
  const backup = await script('backup.sh', {
    BACKUP_DIR: join(work, 'backups'),
    BACKUP_AGE_RECIPIENTS_FILE: join(work, 'recipients.txt'),
    BACKUP_OFFSITE: `offsite:${offsite}`,
    RCLONE_CONFIG_OFFSITE_TYPE: 'local',
  });
  const [dump] = readdirSync(join(work, 'backups')).filter((f) => f.endsWith('.dump.age'));
  expect(backup.stdout).toContain(`copied off-site to offsite:${offsite}/${dump}`);
  // encrypted: the age header, no pg_dump archive magic, and the off-site copy is byte-identical
  const bytes = readFileSync(join(work, 'backups', dump!));
  expect(bytes.subarray(0, 21).toString()).toBe('age-encryption.org/v1');
  expect(bytes.includes(Buffer.from('PGDMP'))).toBe(false);
  expect(readFileSync(join(offsite, dump!)).equals(bytes)).toBe(true);
  const runs = await db.pool.query(`SELECT status, file, location FROM auth.backup_runs ORDER BY id`);
  expect(runs.rows).toEqual([{ status: 'succeeded', file: dump, location: `offsite:${offsite}/${dump}` }]);

  // --- the database moves on: a newer release's migration and more trading
  await db.pool.query(`CREATE TABLE orders.release_2_feature (id bigint PRIMARY KEY)`);
  await db.pool.query(
    `INSERT INTO orders.__migrations (hash, created_at) VALUES ('release-2-migration', 1893456000000)`,
  );
  const after = await trade(t, '61000');

  // --- restore: refused while the services are connected, then over the live database once they are stopped
  const restoreEnv = {
    DUMP: `offsite:${offsite}/${dump}`,
    RCLONE_CONFIG_OFFSITE_TYPE: 'local',
    BACKUP_AGE_IDENTITY_FILE: join(work, 'key.txt'),
  };
  // (the services hold connections: their pollers use the pools every 100 ms, well inside the pools' idle timeout)
  await eventually(
    async () =>
      (
        await db.pool.query(
          `SELECT count(DISTINCT split_part(application_name, ':', 1))::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND application_name ~ '^(auth|wallet|order|payment-processor)'`,
        )
      ).rows[0].n === 4,
    30_000,
    'the services to hold database connections',
  );
  const refused = await script('restore.sh', { ...restoreEnv, RESTORE_WAIT_SECONDS: '2' }).then(
    () => 'restored',
    (e: { stderr: string }) => e.stderr,
  );
  expect(refused).toMatch(/application connections still open after 2s: .*\b(auth|wallet|order|payment-processor)\b/);
  await t.stack.stop();
  const restored = await script('restore.sh', restoreEnv);
  expect(restored.stdout).toContain('restore: done');

  const q = async (sql: string) => (await db.pool.query(sql)).rows;
  // a dump carries no planner statistics: the script gathers them before any service prepares a statement
  const stats = await q(
    `SELECT schemaname, count(*)::int AS tables, count(last_analyze)::int AS analyzed FROM pg_stat_user_tables
      WHERE schemaname IN ('auth', 'wallet', 'orders', 'payment') GROUP BY 1 ORDER BY 1`,
  );
  expect(stats.map((r) => r.schemaname)).toEqual(['auth', 'orders', 'payment', 'wallet']);
  expect(stats).toEqual(stats.map((r) => ({ ...r, analyzed: r.tables })));
  expect(await q(`SELECT to_regclass('orders.release_2_feature') AS t`)).toEqual([{ t: null }]);
  expect(await q(`SELECT count(*)::int AS n FROM orders.__migrations WHERE hash = 'release-2-migration'`)).toEqual([
    { n: 0 },
  ]);
  expect(await q(`SELECT id::text FROM orders.orders WHERE id IN ('${before}', '${after}')`)).toEqual([{ id: before }]);

  // --- the restored objects belong to the restoring role (--no-owner): the services' roles cannot read them until
  // the provisioning step (compose's db-roles one-shot, the chart's migration hook) hands them back
  const walletRole = new pg.Client({ connectionString: db.serviceUrls!.wallet });
  await walletRole.connect();
  try {
    await expect(walletRole.query('SELECT count(*) FROM wallet.accounts')).rejects.toMatchObject({ code: '42501' });
    await provisionFromEnv({
      DATABASE_ADMIN_URL: db.url,
      AUTH_DATABASE_URL: db.serviceUrls!.auth,
      WALLET_DATABASE_URL: db.serviceUrls!.wallet,
      ORDER_DATABASE_URL: db.serviceUrls!.order,
      PAYMENT_PROCESSOR_DATABASE_URL: db.serviceUrls!['payment-processor'],
      BACKUP_DATABASE_URL: db.backupUrl!,
    });
    expect((await walletRole.query('SELECT count(*)::int AS n FROM wallet.accounts')).rows[0].n).toBeGreaterThan(0);
  } finally {
    await walletRole.end();
  }

  // --- the services start on the restored database; the books balance
  await t.close();
  t = await startTestStack({ database: db, env: secrets, readyTimeoutMs: READY_MS });
  await waitForQuiescence(db.pool);
  await assertWalletReconciliation(t.url('auth'), t.url('wallet'));
  const report = await assertTradingConsistency(db.pool);
  expect(report.trades).toBe(1);
  // and trading goes on
  await trade(t, '62000');

  // a failing backup (a recipients file that is not an age key) fails loudly, leaves no file, and is recorded
  const failed = await script('backup.sh', {
    BACKUP_DIR: join(work, 'failed'),
    BACKUP_AGE_RECIPIENTS_FILE: join(work, 'key-missing.txt'),
  }).then(
    () => 'succeeded',
    (e: { code: number }) => e.code,
  );
  expect(failed).not.toBe('succeeded');
  expect(readdirSync(join(work, 'failed'))).toEqual([]);
  expect(await q(`SELECT status, error FROM auth.backup_runs ORDER BY id DESC LIMIT 1`)).toEqual([
    { status: 'failed', error: expect.stringMatching(/^exit \d+ at step: dump$/) },
  ]);
}, 900_000);
