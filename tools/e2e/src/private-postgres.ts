/**
 * A private PostgreSQL cluster for tests that restart the database (restarting the shared server would break every
 * other test running against it): initdb in a temp dir, its own port and socket directory, removed afterwards.
 * Runs the server as the `postgres` OS user when started as root (initdb refuses root).
 */
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePortBlock } from '@exchange/db/testing';

const run = promisify(execFile);

export interface PrivatePostgres {
  /** Admin URL (user postgres, trust) of the `postgres` database. */
  adminUrl: string;
  port: number;
  /** Crash-like restart: immediate shutdown (no checkpoint, WAL recovery on start), then start. */
  restart(downMs?: number): Promise<void>;
  close(): Promise<void>;
}

function binary(name: string): string {
  for (const dir of ['/usr/local/bin', '/usr/lib/postgresql/15/bin', '/usr/lib/postgresql/16/bin']) {
    if (existsSync(join(dir, name))) return join(dir, name);
  }
  return name;
}

function postgresUser(): { uid: number; gid: number } | undefined {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line) return undefined;
  const [, , u, g] = line.split(':');
  return { uid: Number(u), gid: Number(g) };
}

export async function startPrivatePostgres(opts: { maxConnections?: number } = {}): Promise<PrivatePostgres> {
  // below the ephemeral range, so the port is still free when restart() starts the server again
  const port = await freePortBlock(1);
  const dir = mkdtempSync(join(tmpdir(), 'pg-'));
  const data = join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  const owner = asRoot ? postgresUser() : undefined;
  if (asRoot && !owner) throw new Error('running as root needs a postgres OS user to run the private cluster');
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const as = async (cmd: string, args: string[]) =>
    owner
      ? run('runuser', ['-u', 'postgres', '--', cmd, ...args], { timeout: 120_000 })
      : run(cmd, args, { timeout: 120_000 });
  await as(binary('initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  const serverOpts = [
    `-p ${port}`,
    `-k ${dir}`,
    '-c listen_addresses=127.0.0.1',
    `-c max_connections=${opts.maxConnections ?? 400}`,
    // A crash of the server process, not of the machine, is what the suite injects: the OS keeps what was written.
    '-c fsync=off',
    '-c shared_buffers=64MB',
  ].join(' ');
  const start = () =>
    as(binary('pg_ctl'), ['-D', data, '-l', join(dir, 'log'), '-o', serverOpts, '-w', '-t', '60', 'start']);
  const stop = (mode: 'immediate' | 'fast') => as(binary('pg_ctl'), ['-D', data, '-m', mode, '-w', 'stop']);
  await start();
  return {
    adminUrl: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    async restart(downMs = 1000) {
      await stop('immediate');
      await new Promise((r) => setTimeout(r, downMs));
      await start();
    },
    async close() {
      await stop('fast').catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
