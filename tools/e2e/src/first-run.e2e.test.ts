/**
 * The README's first command on a bare machine: a scratch copy of the repository (no node_modules, no .tools), a
 * PATH with only the system's directories, whose Node is older than 24 and which has no pnpm. `./exchange start`
 * must fetch Node 24 and pnpm into the copy's .tools/, install, start, and answer on the gateway port; Ctrl-C must
 * leave nothing running. The copy uses a database, vhost and ports of its own (it may reuse the pnpm store and the
 * npm cache, which is what keeps it short).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { dropRoles } from '@exchange/db';
import { createTestDatabase, freePortBlock, type TestDatabase } from '@exchange/db/testing';
import { createTestVhost, type TestVhost } from '@exchange/messaging/testing';
import { ExchangeClient } from '@exchange/sdk';
import { ROOT } from '@exchange/stack';
import pg from 'pg';
import { eventually } from './harness.ts';

const SYSTEM_PATH = '/usr/bin:/bin';
const PG_ADMIN = process.env.TEST_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const scratch = mkdtempSync(join(tmpdir(), 'first-run-'));
let db: TestDatabase;
let vhost: TestVhost;
let child: ChildProcess | undefined;

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
  // host mode gave each service a role of its own, named after the database: they go with it
  if (db)
    await dropRoles(
      PG_ADMIN,
      ['auth', 'wallet', 'order', 'payment_processor', 'backup'].map((r) => `${db.name}_${r}`),
    );
  await vhost?.drop().catch(() => undefined);
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

interface Run {
  child: ChildProcess;
  exited: Promise<number | null>;
  output: () => string;
  base: number;
}

/** The caller's environment minus what points at its Node, pnpm or jest; PATH is only the system's directories. */
function bareEnv(base: number): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(npm_|PNPM|NODE_|JEST|INIT_CWD$|PATH$)/i.test(k)) env[k] = v;
  }
  return {
    ...env,
    PATH: SYSTEM_PATH,
    NO_COLOR: '1',
    DATABASE_URL: db.url,
    AMQP_URL: vhost.url,
    EXCHANGE_PORT_BASE: String(base),
  };
}

function exchange(args: string[], base: number): Run {
  let text = '';
  const proc = spawn('./exchange', args, { cwd: scratch, env: bareEnv(base), detached: true });
  proc.stdout!.on('data', (d) => (text += d));
  proc.stderr!.on('data', (d) => (text += d));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { child: proc, exited, output: () => text, base };
}

/**
 * `./exchange start --no-demo` until the gateway answers. Other engineers' test stacks take random ports on this
 * machine too; when one grabs ours while Node and the dependencies are being fetched (preflight says so) or between
 * preflight and a slow start-up (EADDRINUSE), we start again on other ports (the fetch is not repeated).
 */
async function startUntilUp(): Promise<Run> {
  for (let attempt = 1; ; attempt++) {
    const run = exchange(['start', '--no-demo'], await freePortBlock(5));
    child = run.child;
    const deadline = Date.now() + 12 * 60_000;
    while (Date.now() < deadline && run.child.exitCode === null) {
      try {
        const r = await fetch(`http://127.0.0.1:${run.base}/api/v1/markets`, { signal: AbortSignal.timeout(2_000) });
        if (r.ok) return run;
      } catch {
        /* not yet */
      }
      await sleep(1_000);
    }
    if (run.child.exitCode === null) process.kill(-run.child.pid!, 'SIGINT');
    await run.exited;
    if (attempt < 3 && /is already in use|EADDRINUSE/.test(run.output())) continue;
    throw new Error(`the stack did not come up:\n${run.output().slice(-3_000)}`);
  }
}

async function expectAllStopped(run: Run) {
  expect(processesUnder(scratch)).toEqual([]);
  await expect(fetch(`http://127.0.0.1:${run.base}/api/v1/markets`)).rejects.toThrow();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test(
  './exchange start with Node 20 and no pnpm; Ctrl-C; restart on the same data; stop; reset',
  async () => {
    // The machine must really be bare, or this test proves nothing.
    const systemNode = shell('node --version');
    expect({ systemNodeOlderThan24: /^v(1\d|2[0-3])\./.test(systemNode), systemNode }).toEqual({
      systemNodeOlderThan24: true,
      systemNode,
    });
    expect(shell('command -v pnpm')).toBe('');
    expect(shell('command -v npm')).not.toBe('');

    // 1. The README's first command on the bare machine.
    const first = await startUntilUp();
    // Node 24 and pnpm came from the registry into the copy; the system's Node is what it was.
    expect(first.output()).toMatch(
      /Node 24 is needed \(this machine has v\d[.\d]*\): fetching node-\w+-\w+@24 from the npm registry/,
    );
    expect(first.output()).toMatch(/pnpm [\d.]+ is needed: fetching it from the npm registry/);
    expect(shell(`"${scratch}/.tools/bin/node" --version`)).toMatch(/^v24\./);
    expect(shell('node --version')).toBe(systemNode);
    // the gateway answers before the last services are ready; on a loaded machine that can take minutes
    await eventually(async () => first.output().includes('Exchange is up (host mode)'), 180_000, 'the summary');
    expect(first.output()).toContain(`API (gateway):   http://localhost:${first.base}/api/v1/markets`);

    // Something to find again after the restart.
    const user = { email: `first-run-${Date.now()}@example.com`, password: 'A-strong-pass-phrase-77' };
    const client = new ExchangeClient({ baseUrl: `http://127.0.0.1:${first.base}` });
    await client.register(user);
    await client.login(user);

    // 2. Ctrl-C (SIGINT to the runner; `./exchange` exec'd into it) stops everything.
    process.kill(first.child.pid!, 'SIGINT');
    // unref'd: a pending 60 s timer would hold the jest worker past the end of the run
    expect(await Promise.race([first.exited, delay(60_000, 'timeout', { ref: false })])).toBe(0);
    expect(first.output()).toContain('Stack stopped; data kept');
    await expectAllStopped(first);

    // 3. A second start fetches nothing and finds the same data.
    const second = await startUntilUp();
    expect(second.output()).not.toMatch(/fetching/);
    const again = new ExchangeClient({ baseUrl: `http://127.0.0.1:${second.base}` });
    expect((await again.login(user)).user.email).toBe(user.email);

    // 4. `./exchange stop` from another terminal.
    const stop = exchange(['stop'], second.base);
    expect(await stop.exited).toBe(0);
    expect(stop.output()).toContain('Stopped.');
    expect(await second.exited).toBe(0);
    await expectAllStopped(second);

    // 5. reset, non-interactive (--yes), drops the database.
    await db.pool.end();
    const reset = exchange(['reset', '--yes', '--no-start'], second.base);
    expect({ code: await reset.exited, output: reset.output() }).toEqual({
      code: 0,
      output: expect.stringContaining(`Deleted the database "${db.name}"`),
    });
    const admin = new pg.Client({ connectionString: db.url.replace(/\/[^/]*$/, '/postgres') });
    await admin.connect();
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [db.name]);
    await admin.end();
    expect(rowCount).toBe(0);
  },
  20 * 60_000,
);
