/** The SQL of auth.backup_runs (the backup CronJob's script writes the same rows with psql). */
import type { Queryable } from '../audit/repository.ts';

/** started_at, status, file, location, size_bytes, error. */
export async function insertBackupRun(
  db: Queryable,
  values: [startedAt: Date, status: string, file: string, location: string, sizeBytes: number, error: string | null],
): Promise<void> {
  await db.query(
    `INSERT INTO auth.backup_runs (started_at, status, file, location, size_bytes, error) VALUES ($1, $2, $3, $4, $5, $6)`,
    values,
  );
}

/** When (epoch s) the latest successful and the latest failed backup ended (null: never). */
export async function lastBackupTimes(
  db: Queryable,
): Promise<{ succeeded: number | null; failed: number | null } | undefined> {
  const { rows } = await db.query<{ succeeded: number | null; failed: number | null }>(
    `SELECT extract(epoch FROM max(finished_at) FILTER (WHERE status = 'succeeded'))::float8 AS succeeded,
                extract(epoch FROM max(finished_at) FILTER (WHERE status = 'failed'))::float8 AS failed
           FROM auth.backup_runs`,
  );
  return rows[0];
}
