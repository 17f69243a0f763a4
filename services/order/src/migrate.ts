import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { migrate } from '@exchange/db';
import { ORDERS_SCHEMA } from './db/schema.ts';

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../drizzle', import.meta.url));

export async function runMigrations(pool: pg.Pool): Promise<void> {
  await migrate(pool, { migrationsFolder: MIGRATIONS_FOLDER, schema: ORDERS_SCHEMA });
}

// `node src/migrate.ts` (pnpm migrate): apply the migrations and exit.
if (import.meta.url === `file://${process.argv[1]}`) {
  const { createPool } = await import('@exchange/db');
  const { loadConfigOrExit, Type, databaseEnv } = await import('@exchange/config');
  const cfg = loadConfigOrExit('order-migrate', Type.Object({ ...databaseEnv }));
  const pool = createPool({ connectionString: cfg.DATABASE_URL, max: 1 });
  try {
    await runMigrations(pool);
    process.stdout.write('order: migrations applied\n');
  } finally {
    await pool.end();
  }
}
