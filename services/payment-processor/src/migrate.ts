import { fileURLToPath } from 'node:url';
import { createPool, ensureDatabase, migrate, type Pool } from '@exchange/db';
import { baseEnv, databaseEnv, loadConfigOrExit, Type } from '@exchange/config';
import { PAYMENT_SCHEMA } from './db/schema.ts';

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../drizzle', import.meta.url));

/** Apply this service's migrations (schema `payment`); safe to run from several replicas at once. */
export async function runMigrations(pool: Pool): Promise<void> {
  await migrate(pool, { migrationsFolder: MIGRATIONS_FOLDER, schema: PAYMENT_SCHEMA });
}

// `pnpm migrate` (and the chart's migration hook): apply and exit. DATABASE_URL is validated like every service's
// (never a silent fallback to a local database), and the database is only created outside production, where the
// role has no CREATEDB and the database must already exist.
if (import.meta.url === `file://${process.argv[1]}`) {
  const config = loadConfigOrExit('payment-processor-migrate', Type.Object({ ...baseEnv(3004), ...databaseEnv }));
  const url = config.DATABASE_URL;
  if (config.NODE_ENV !== 'production') await ensureDatabase(url);
  const pool = createPool({ connectionString: url, max: 2, applicationName: 'payment-processor:migrate' });
  try {
    await runMigrations(pool);
    process.stdout.write('payment-processor: migrations applied\n');
  } finally {
    await pool.end();
  }
}
