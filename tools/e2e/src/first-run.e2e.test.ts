/**
 * The README's first command on a bare machine: a scratch copy of the repository (no node_modules, no .tools), a
 * PATH with only the system's directories, whose Node is older than 24 and which has no pnpm. `./exchange start`
 * must fetch Node 24 and pnpm into the copy's .tools/, install, start, and answer on the gateway port; Ctrl-C must
 * leave nothing running. The copy uses a database, vhost and ports of its own (it may reuse the pnpm store and the
 * npm cache, which is what keeps it short).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase, type TestDatabase } from '@exchange/db/testing';
import { createTestVhost, type TestVhost } from '@exchange/messaging/testing';
import { ROOT } from '@exchange/stack';

const SYSTEM_PATH = '/usr/bin:/bin';
const scratch = mkdtempSync(join(tmpdir(), 'first-run-'));
let db: TestDatabase;
let vhost: TestVhost;
let child: ChildProcess | undefined;
let output = '';

beforeAll(async () => {
  db = await createTestDatabase('firstrun');
  vhost = await createTestVhost('firstrun');
  // What a fresh clone holds: the tracked files plus new ones not yet committed, nothing ignored.
  execFileSync(
    'sh',
    [
      '-c',
      `git -C "${ROOT}" ls-files -z -co --exclude-standard | tar -C "${ROOT}" --null --ignore-failed-read -T - -cf - | tar -C "${scratch}" -xf -`,
    ],
    { stdio: 'pipe' },
  );
});

afterAll(async () => {
  if (child?.pid && child.exitCode === null) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  // Children a failed run may have left (own process groups): anything still running from the scratch copy.
  for (const pid of processesUnder(scratch)) process.kill(pid, 'SIGKILL');
  await db?.drop();
  await vhost?.drop();
  rmSync(scratch, { recursive: true, force: true });
}, 60_000);

function shell(cmd: string, path = SYSTEM_PATH): string {
  try {
    return execFileSync('sh', ['-c', cmd], { env: { PATH: path }, encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

function processesUnder(dir: string): number[] {
  return shell('ps -eo pid=,args=', `${SYSTEM_PATH}`)
    .split('\n')
    .filter((l) => l.includes(dir) && !l.includes('ps -eo'))
    .map((l) => Number(l.trim().split(/\s+/)[0]))
    .filter((pid) => pid !== process.pid);
}

async function freeBase(): Promise<number> {
  for (;;) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const free = await Promise.all(
      [0, 1, 2, 3, 4].map(
        (i) =>
          new Promise<boolean>((resolve) => {
            const s = createServer()
              .once('error', () => resolve(false))
              .listen(base + i, '127.0.0.1', () => s.close(() => resolve(true)));
          }),
      ),
    );
    if (free.every(Boolean)) return base;
  }
}

test(
  './exchange start on a machine with Node 20 and no pnpm answers on the gateway, Ctrl-C stops it all',
  async () => {
    // The machine must really be bare, or this test proves nothing.
    const systemNode = shell('node --version');
    expect({ systemNodeOlderThan24: /^v(1\d|2[0-3])\./.test(systemNode), systemNode }).toEqual({
      systemNodeOlderThan24: true,
      systemNode,
    });
    expect(shell('command -v pnpm')).toBe('');
    expect(shell('command -v npm')).not.toBe('');

    const base = await freeBase();
    // The caller's environment minus what points at its Node, pnpm or jest.
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined && !/^(npm_|PNPM|NODE_|JEST|INIT_CWD$|PATH$)/i.test(k)) env[k] = v;
    }
    Object.assign(env, {
      PATH: SYSTEM_PATH,
      NO_COLOR: '1',
      DATABASE_URL: db.url,
      AMQP_URL: vhost.url,
      EXCHANGE_PORT_BASE: String(base),
    });
    child = spawn('./exchange', ['start', '--no-demo'], { cwd: scratch, env, detached: true });
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));

    const deadline = Date.now() + 12 * 60_000;
    let up = false;
    while (!up && Date.now() < deadline && child.exitCode === null) {
      try {
        up = (await fetch(`http://127.0.0.1:${base}/api/v1/markets`, { signal: AbortSignal.timeout(2_000) })).ok;
      } catch {
        /* not yet */
      }
      if (!up) await new Promise((r) => setTimeout(r, 1_000));
    }
    expect({ up, tail: up ? '' : output.slice(-3_000) }).toEqual({ up: true, tail: '' });

    // Node 24 and pnpm came from the registry into the copy; the system's Node is what it was.
    expect(output).toMatch(
      /Node 24 is needed \(this machine has v2\d[.\d]*\): fetching node-\w+-\w+@24 from the npm registry/,
    );
    expect(output).toMatch(/pnpm [\d.]+ is needed: fetching it from the npm registry/);
    expect(shell(`"${scratch}/.tools/bin/node" --version`)).toMatch(/^v24\./);
    expect(shell('node --version')).toBe(systemNode);
    expect(output).toContain('Exchange is up (host mode)');
    expect(output).toContain(`API (gateway):   http://localhost:${base}/api/v1/markets`);

    // Ctrl-C (SIGINT to the runner; `./exchange` exec'd into it) stops everything.
    process.kill(child.pid!, 'SIGINT');
    expect(await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 60_000))])).toBe(0);
    expect(output).toContain('Stack stopped; data kept');
    expect(processesUnder(scratch)).toEqual([]);
    await expect(fetch(`http://127.0.0.1:${base}/api/v1/markets`)).rejects.toThrow();
  },
  15 * 60_000,
);
