import { fileURLToPath } from 'node:url';
import { createPool, migrate, type Pool } from '@exchange/db';
import { WALLET_SCHEMA } from './db/schema.ts';

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../drizzle', import.meta.url));

/** Apply the wallet's migrations (advisory-locked, so replicas starting together are safe). */
export async function runMigrations(pool: Pool): Promise<void> {
  await migrate(pool, { migrationsFolder: MIGRATIONS_FOLDER, schema: WALLET_SCHEMA });
}

// `pnpm migrate` / `node src/migrate.ts`: migrate the database in DATABASE_URL and exit.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const pool = createPool({
    connectionString: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/exchange',
    max: 1,
    applicationName: 'wallet-migrate',
  });
  try {
    await runMigrations(pool);
    process.stdout.write('wallet: migrations applied\n');
  } finally {
    await pool.end();
  }
}
