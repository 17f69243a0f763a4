import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type pg from 'pg';
import { promClient } from '@exchange/platform';

const run = promisify(execFile);
const NAME = /^exchange-\d{8}T\d{9}Z\.dump$/;

export interface BackupEntry {
  name: string;
  sizeBytes: number;
  createdAt: string;
  sha256: string;
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function entry(dir: string, name: string): Promise<BackupEntry> {
  const path = join(dir, name);
  const s = await stat(path);
  let sha256: string;
  try {
    sha256 = (await readFile(`${path}.sha256`, 'utf8')).split(/\s/)[0]!;
  } catch {
    sha256 = await sha256File(path);
  }
  return { name, sizeBytes: s.size, createdAt: s.mtime.toISOString(), sha256 };
}

/** Backup files in `dir`, newest first. */
export async function listBackups(dir: string): Promise<BackupEntry[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const entries = await Promise.all(names.filter((n) => NAME.test(n)).map((n) => entry(dir, n)));
  return entries.sort((a, b) => b.name.localeCompare(a.name));
}

/**
 * `pg_dump --format=custom` of the whole database into `dir` (written to a temp name, renamed when complete, with a
 * `.sha256` sidecar). The password travels in PGPASSWORD, never on the command line.
 */
export async function createBackup(dir: string, databaseUrl: string, pgDump = 'pg_dump'): Promise<BackupEntry> {
  await mkdir(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[-:.]/g, '');
  const name = `exchange-${stamp}.dump`;
  const final = join(dir, name);
  const tmp = `${final}.partial`;
  const url = new URL(databaseUrl);
  const password = decodeURIComponent(url.password);
  url.password = '';
  try {
    await run(pgDump, ['--format=custom', '--no-owner', '--file', tmp, '--dbname', url.toString()], {
      env: { ...process.env, ...(password ? { PGPASSWORD: password } : {}) },
      maxBuffer: 16 * 1024 * 1024,
      timeout: 30 * 60_000,
    });
  } catch (e) {
    await unlink(tmp).catch(() => {});
    const err = e as { stderr?: string; message: string };
    throw new Error(
      `pg_dump failed: ${(err.stderr || err.message).replaceAll(password || '\u0000', '***').slice(0, 500)}`,
    );
  }
  const sha256 = await sha256File(tmp);
  await rename(tmp, final);
  await writeFile(`${final}.sha256`, `${sha256}  ${name}\n`);
  return entry(dir, name);
}

export interface BackupRun {
  startedAt: Date;
  status: 'succeeded' | 'failed';
  file: string;
  location: string;
  sizeBytes?: number;
  error?: string;
}

/** One row of auth.backup_runs (the backup CronJob's script writes the same rows with psql). */
export async function recordBackupRun(pool: pg.Pool, run: BackupRun): Promise<void> {
  await pool.query(
    `INSERT INTO auth.backup_runs (started_at, status, file, location, size_bytes, error) VALUES ($1, $2, $3, $4, $5, $6)`,
    [run.startedAt, run.status, run.file, run.location, run.sizeBytes ?? 0, run.error ?? null],
  );
}

/**
 * backup_last_success_timestamp_seconds / backup_last_failure_timestamp_seconds from auth.backup_runs, read at
 * scrape time (BackupStale and BackupFailed watch them; 0 = never). A database outage keeps the last values.
 */
export function backupMetrics(registry: promClient.Registry, pool: pg.Pool): void {
  let last: { succeeded: number; failed: number } | undefined;
  let pending: Promise<void> | undefined;
  // both gauges are collected in one scrape: one query serves them
  const refresh = () =>
    (pending ??= pool
      .query<{ succeeded: number | null; failed: number | null }>(
        `SELECT extract(epoch FROM max(finished_at) FILTER (WHERE status = 'succeeded'))::float8 AS succeeded,
                extract(epoch FROM max(finished_at) FILTER (WHERE status = 'failed'))::float8 AS failed
           FROM auth.backup_runs`,
      )
      .then(({ rows }) => {
        last = { succeeded: rows[0]?.succeeded ?? 0, failed: rows[0]?.failed ?? 0 };
      })
      .catch(() => undefined)
      .finally(() => setImmediate(() => (pending = undefined))));
  new promClient.Gauge({
    name: 'backup_last_success_timestamp_seconds',
    help: 'End of the latest successful database backup (0: never)',
    registers: [registry],
    async collect() {
      await refresh();
      if (last) this.set(last.succeeded);
    },
  });
  new promClient.Gauge({
    name: 'backup_last_failure_timestamp_seconds',
    help: 'End of the latest failed database backup (0: never)',
    registers: [registry],
    async collect() {
      await refresh();
      if (last) this.set(last.failed);
    },
  });
}
