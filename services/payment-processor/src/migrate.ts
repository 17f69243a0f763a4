import { fileURLToPath } from 'node:url';
import { createPool, ensureDatabase, migrate, type Pool } from '@exchange/db';
import { SCHEMA } from './db/schema.ts';

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../drizzle', import.meta.url));

/** Apply this service's migrations (schema `payment`); safe to run from several replicas at once. */
export async function migratePayment(pool: Pool): Promise<void> {
  await migrate(pool, { migrationsFolder: MIGRATIONS_FOLDER, schema: SCHEMA });
}

// `pnpm migrate`: apply and exit.
if (import.meta.url === `file://${process.argv[1]}`) {
  const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/exchange';
  await ensureDatabase(url);
  const pool = createPool({ connectionString: url, max: 2, applicationName: 'payment-processor:migrate' });
  try {
    await migratePayment(pool);
    process.stdout.write('payment-processor: migrations applied\n');
  } finally {
    await pool.end();
  }
}
