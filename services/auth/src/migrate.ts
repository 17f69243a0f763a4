import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { createPool, ensureDatabase, migrate } from '@exchange/db';
import { baseEnv, databaseEnv, loadConfigOrExit, Type } from '@exchange/config';
import { AUTH_SCHEMA } from './db/schema.ts';

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../drizzle', import.meta.url));

export async function runMigrations(pool: pg.Pool): Promise<void> {
  await migrate(pool, { migrationsFolder: MIGRATIONS_FOLDER, schema: AUTH_SCHEMA });
}

// `node services/auth/src/migrate.ts` (or `pnpm --filter @exchange/auth migrate`): apply migrations and exit.
if (import.meta.url === `file://${process.argv[1]}`) {
  const config = loadConfigOrExit('auth-migrate', Type.Object({ ...baseEnv(3001), ...databaseEnv }));
  if (config.NODE_ENV !== 'production') await ensureDatabase(config.DATABASE_URL);
  const pool = createPool({ connectionString: config.DATABASE_URL, max: 1, applicationName: 'auth-migrate' });
  try {
    await runMigrations(pool);
    process.stdout.write('auth: migrations applied\n');
  } finally {
    await pool.end();
  }
}
