import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyRequest } from 'fastify';
import type pg from 'pg';
import { AppError, promClient } from '@exchange/platform';
import { audit } from '../audit/repository.ts';
import type { AuthContext } from '../context.ts';
import * as repo from './repository.ts';

/** `.dump.age`: encrypted (every backup since); `.dump`: a plaintext one an older version wrote, still listed. */
const NAME = /^exchange-\d{8}T\d{9}Z\.dump(\.age)?$/;

export interface BackupEntry {
  name: string;
  sizeBytes: number;
  createdAt: string;
  sha256: string;
  encrypted: boolean;
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
  return { name, sizeBytes: s.size, createdAt: s.mtime.toISOString(), sha256, encrypted: name.endsWith('.age') };
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

/** age recipients from BACKUP_AGE_RECIPIENTS (commas, spaces or newlines between keys). */
export function parseRecipients(value: string | undefined): string[] {
  const keys = (value ?? '').split(/[\s,]+/).filter(Boolean);
  for (const k of keys) if (!/^age1[02-9ac-hj-np-z]{58}$/.test(k)) throw new Error(`not an age public key: ${k}`);
  return keys;
}

export interface BackupOptions {
  dir: string;
  /** The role pg_dump connects as (read access to every schema). */
  databaseUrl: string;
  /** age public keys: the dump is encrypted to them as it streams out of pg_dump (required). */
  recipients: string[];
  pgDump?: string;
  age?: string;
}

/**
 * `pg_dump --format=custom` of the whole database, piped through `age` into `dir` as `exchange-<stamp>.dump.age`:
 * no plaintext dump ever touches a disk, and only the holder of the private key (not this service) can read it.
 * Written to a temp name, renamed when both processes succeeded, with a `.sha256` sidecar of the encrypted file. The
 * password travels in PGPASSWORD, never on the command line. Same format as the chart's backup CronJob, so
 * `k8s/charts/exchange/files/restore.sh` (or `age -d -i key | pg_restore`) restores either.
 */
export async function createBackup(o: BackupOptions): Promise<BackupEntry> {
  if (!o.recipients.length) throw new Error('no age recipients: backups are never written unencrypted');
  await mkdir(o.dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[-:.]/g, '');
  const name = `exchange-${stamp}.dump.age`;
  const final = join(o.dir, name);
  const tmp = `${final}.partial`;
  const url = new URL(o.databaseUrl);
  const password = decodeURIComponent(url.password);
  url.password = '';
  const redact = (t: string) => t.replaceAll(password || '\u0000', '***').slice(0, 500);
  try {
    await pipeline(
      [o.pgDump ?? 'pg_dump', ['--format=custom', '--no-owner', '--dbname', url.toString()]],
      [o.age ?? 'age', [...o.recipients.flatMap((r) => ['-r', r]), '-o', tmp]],
      { ...process.env, ...(password ? { PGPASSWORD: password } : {}) },
    );
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw new Error(`backup failed: ${redact((e as Error).message)}`);
  }
  const sha256 = await sha256File(tmp);
  await rename(tmp, final);
  await writeFile(`${final}.sha256`, `${sha256}  ${name}\n`);
  return entry(o.dir, name);
}

/** `a | b`, both must exit 0; stderr of each is kept for the error. 30 min at most. */
function pipeline(a: [string, string[]], b: [string, string[]], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const first = spawn(a[0], a[1], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const second = spawn(b[0], b[1], { env, stdio: ['pipe', 'ignore', 'pipe'] });
    const errs: Record<string, string> = { [a[0]]: '', [b[0]]: '' };
    first.stderr.on('data', (d: Buffer) => (errs[a[0]] += d.toString()));
    second.stderr.on('data', (d: Buffer) => (errs[b[0]] += d.toString()));
    first.stdout.pipe(second.stdin);
    second.stdin.on('error', () => {}); // age gone early: its own exit code says why
    const timer = setTimeout(() => {
      first.kill('SIGKILL');
      second.kill('SIGKILL');
    }, 30 * 60_000);
    const exited = (p: ReturnType<typeof spawn>, label: string) =>
      new Promise<string | undefined>((done) => {
        p.once('error', (e) => done(`${label}: ${e.message}`));
        p.once('close', (code, signal) =>
          done(code === 0 ? undefined : `${label} exited ${code ?? signal}: ${errs[label]!.trim()}`),
        );
      });
    void Promise.all([exited(first, a[0]), exited(second, b[0])]).then(([e1, e2]) => {
      clearTimeout(timer);
      if (e1 || e2) reject(new Error([e1, e2].filter(Boolean).join('; ')));
      else resolve();
    });
  });
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
  await repo.insertBackupRun(pool, [
    run.startedAt,
    run.status,
    run.file,
    run.location,
    run.sizeBytes ?? 0,
    run.error ?? null,
  ]);
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
    (pending ??= repo
      .lastBackupTimes(pool)
      .then((row) => {
        last = { succeeded: row?.succeeded ?? 0, failed: row?.failed ?? 0 };
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

/**
 * A backup on an operator's request (POST /api/v1/admin/backups): written with createBackup into BACKUP_DIR,
 * recorded in auth.backup_runs whatever the outcome, and audited. Without `recipients` nothing is dumped (503
 * BACKUP_ENCRYPTION_NOT_CONFIGURED: never a plaintext dump); a failure is 503 BACKUP_FAILED, its cause in the log.
 */
export async function runBackup(
  ctx: AuthContext,
  req: FastifyRequest,
  actorId: string,
  recipients: string[],
): Promise<BackupEntry> {
  let b;
  const startedAt = new Date();
  if (!recipients.length) {
    await recordBackupRun(ctx.pool, {
      startedAt,
      status: 'failed',
      file: '',
      location: ctx.config.BACKUP_DIR,
      error: 'BACKUP_AGE_RECIPIENTS is not set',
    });
    throw new AppError(
      503,
      'BACKUP_ENCRYPTION_NOT_CONFIGURED',
      'backups are only written encrypted: set BACKUP_AGE_RECIPIENTS (age public keys) on the auth service',
    );
  }
  try {
    b = await createBackup({
      dir: ctx.config.BACKUP_DIR,
      databaseUrl: ctx.config.BACKUP_DATABASE_URL ?? ctx.config.DATABASE_URL,
      recipients,
      pgDump: ctx.config.PG_DUMP_PATH,
      age: ctx.config.AGE_PATH,
    });
  } catch (e) {
    req.log.error({ err: e }, 'backup failed');
    await recordBackupRun(ctx.pool, {
      startedAt,
      status: 'failed',
      file: '',
      location: ctx.config.BACKUP_DIR,
      error: (e as Error).message.slice(0, 500),
    });
    await audit(ctx.pool, req, { action: 'admin.backup_failed', actorId });
    throw new AppError(503, 'BACKUP_FAILED', 'the backup could not be created; see the service log');
  }
  await recordBackupRun(ctx.pool, {
    startedAt,
    status: 'succeeded',
    file: b.name,
    location: `${ctx.config.BACKUP_DIR}/${b.name}`,
    sizeBytes: b.sizeBytes,
  });
  await audit(ctx.pool, req, { action: 'admin.backup_created', actorId, details: { ...b } });
  return b;
}
