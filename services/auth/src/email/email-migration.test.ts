// Migration 0005 (email verification) marks every account that existed before it as verified: they were created
// when no verification link existed, and must not lose withdrawals because of the upgrade.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrate } from '@exchange/db';
import { createTestDatabase, type TestDatabase } from '@exchange/db/testing';
import { MIGRATIONS_FOLDER, runMigrations } from '../migrate.ts';

let db: TestDatabase;
let before: string;

beforeAll(async () => {
  db = await createTestDatabase('auth_email_migration');
  // the migrations as they were before 0005
  before = mkdtempSync(join(tmpdir(), 'auth-migrations-'));
  cpSync(MIGRATIONS_FOLDER, before, { recursive: true });
  const journalPath = join(before, 'meta/_journal.json');
  const journal = JSON.parse(readFileSync(journalPath, 'utf8')) as { entries: Array<{ tag: string }> };
  const i = journal.entries.findIndex((e) => e.tag === '0005_email_verification');
  expect(i).toBeGreaterThan(0);
  journal.entries = journal.entries.slice(0, i);
  writeFileSync(journalPath, JSON.stringify(journal));
});

afterAll(async () => {
  await db?.drop();
  rmSync(before, { recursive: true, force: true });
});

test('existing users become verified; users registered afterwards start unverified', async () => {
  await migrate(db.pool, { migrationsFolder: before, schema: 'auth' });
  await db.pool.query(`INSERT INTO auth.users (email, password_hash) VALUES ('old@example.com', 'x')`);
  await runMigrations(db.pool);
  const { rows } = await db.pool.query<{ verified: boolean }>(
    `SELECT email_verified_at IS NOT NULL AS verified FROM auth.users WHERE email = 'old@example.com'`,
  );
  expect(rows).toEqual([{ verified: true }]);
  await db.pool.query(`INSERT INTO auth.users (email, password_hash) VALUES ('new@example.com', 'x')`);
  const fresh = await db.pool.query<{ verified: boolean }>(
    `SELECT email_verified_at IS NOT NULL AS verified FROM auth.users WHERE email = 'new@example.com'`,
  );
  expect(fresh.rows).toEqual([{ verified: false }]);
});
