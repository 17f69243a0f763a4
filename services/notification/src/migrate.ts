import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { createPool, ensureDatabase, migrate } from '@exchange/db';
import { baseEnv, databaseEnv, loadConfigOrExit, Type } from '@exchange/config';

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../drizzle', import.meta.url));

export async function runMigrations(pool: pg.Pool): Promise<void> {
  await migrate(pool, { migrationsFolder: MIGRATIONS_FOLDER, schema: 'notification' });
}

// `node services/notification/src/migrate.ts`: apply migrations and exit.
if (import.meta.url === `file://${process.argv[1]}`) {
  const config = loadConfigOrExit('notification-migrate', Type.Object({ ...baseEnv(3005), ...databaseEnv }));
  if (config.NODE_ENV !== 'production') await ensureDatabase(config.DATABASE_URL);
  const pool = createPool({ connectionString: config.DATABASE_URL, max: 1, applicationName: 'notification-migrate' });
  try {
    await runMigrations(pool);
    process.stdout.write('notification: migrations applied\n');
  } finally {
    await pool.end();
  }
}
