import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

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
