import { fileURLToPath } from 'node:url';
import { Type } from '@sinclair/typebox';
import { defineMessage } from '@exchange/contracts';
import { migrate } from '@exchange/db';
import { createTestDatabase, type TestDatabase } from '@exchange/db/testing';
import type pg from 'pg';
import { createTestVhost, type TestVhost } from '../src/testing.ts';

export const SCHEMA = 'svc';
export const MIGRATIONS = fileURLToPath(new URL('./migrations', import.meta.url));

/** The test contract: an item with a sequence number; `behaviour` steers the test handlers. */
export const TestItem = defineMessage({
  type: 'test.item',
  version: 1,
  payload: Type.Object({
    seq: Type.Integer({ minimum: 0 }),
    key: Type.String(),
    amount: Type.Optional(Type.String({ pattern: '^[0-9]+$' })),
  }),
});

export interface TestEnv {
  db: TestDatabase;
  vhost: TestVhost;
  pool: pg.Pool;
  drop(): Promise<void>;
}

export async function setupEnv(prefix: string): Promise<TestEnv> {
  const db = await createTestDatabase(prefix);
  await migrate(db.pool, { migrationsFolder: MIGRATIONS, schema: SCHEMA });
  const vhost = await createTestVhost(prefix);
  return {
    db,
    vhost,
    pool: db.pool,
    async drop() {
      await vhost.drop().catch(() => {});
      await db.drop().catch(() => {});
    },
  };
}

export async function waitFor<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 20_000, intervalMs = 50, what = 'condition' } = {},
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export async function count(pool: pg.Pool, sql: string, values: unknown[] = []): Promise<number> {
  const { rows } = await pool.query<Record<string, string>>(sql, values);
  const first = rows[0] ? Object.values(rows[0])[0] : undefined;
  return Number(first ?? 0);
}
