/**
 * Preflight as a user meets it: `main.ts preflight` (and the ./exchange entry point for the Node check) with one
 * dependency pointed at a closed port at a time; each failure is one sentence with its fix, exit code 1, no stack
 * trace. The baseline (everything reachable) passes, so the failures are caused by the one thing changed.
 */
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePortBlock } from '@exchange/db/testing';
import { ROOT } from './stack.ts';

const stateDir = mkdtempSync(join(tmpdir(), 'preflight-'));
afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

function run(
  command: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command[0]!, command.slice(1), {
      cwd: ROOT,
      env: { ...process.env, EXCHANGE_STATE_DIR: stateDir, NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const preflight = (env: Record<string, string>) =>
  run([process.execPath, '--disable-warning=ExperimentalWarning', 'tools/stack/src/main.ts', 'preflight'], env);

/** One failure: exit 1, exactly the expected ✗ sentence(s), no stack trace. */
function expectFailure(r: { code: number | null; stderr: string }, ...patterns: RegExp[]) {
  expect(r.code).toBe(1);
  const failures = r.stderr.split('\n').filter((l) => l.startsWith('✗ ') && !/checks? failed; nothing/.test(l));
  expect(failures).toHaveLength(patterns.length);
  patterns.forEach((p, i) => expect(failures[i]).toMatch(p));
  expect(r.stderr).toMatch(/✗ \d checks? failed; nothing was started\./);
  expect(r.stderr + (r as { stdout?: string }).stdout).not.toMatch(/^\s+at /m);
}

let base: number;
beforeAll(async () => {
  base = await freePortBlock(8);
});

test('with everything reachable every check passes', async () => {
  const r = await preflight({ EXCHANGE_PORT_BASE: String(base) });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/✓ Node 2\d\./);
  expect(r.stdout).toMatch(/✓ PostgreSQL .* at postgres:\/\/postgres@127\.0\.0\.1:5432/);
  expect(r.stdout).toMatch(/✓ RabbitMQ .*management API at http:\/\/127\.0\.0\.1:15672/);
  expect(r.stdout).toMatch(/✓ Redis at 127\.0\.0\.1:6379/);
  // gateway, the four services, notification, MailDev's web UI and SMTP
  expect(r.stdout).toContain(`✓ ports ${[0, 1, 2, 3, 4, 5, 6, 7].map((i) => base + i).join(', ')} free`);
  expect(r.stdout).toContain('All checks passed.');
});

test('PostgreSQL down: which address, how to start it', async () => {
  const port = await closedPort();
  const r = await preflight({
    EXCHANGE_PORT_BASE: String(base),
    DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/exchange`,
  });
  expectFailure(
    r,
    new RegExp(
      `^✗ PostgreSQL is not running at 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\): start it \\(\`sudo systemctl start postgresql\`.*or set DATABASE_URL`,
    ),
  );
});

test('RabbitMQ down: one answer, naming the management plugin too', async () => {
  const port = await closedPort();
  const r = await preflight({
    EXCHANGE_PORT_BASE: String(base),
    AMQP_URL: `amqp://guest:guest@127.0.0.1:${port}/exchange`,
  });
  expectFailure(
    r,
    new RegExp(
      `^✗ RabbitMQ is not running at 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\): start it .*rabbitmq-plugins enable rabbitmq_management.*or set AMQP_URL\\.$`,
    ),
  );
});

test('RabbitMQ up without its management plugin: the command that enables it', async () => {
  const port = await closedPort();
  const r = await preflight({
    EXCHANGE_PORT_BASE: String(base),
    RABBITMQ_MANAGEMENT_URL: `http://guest:guest@127.0.0.1:${port}`,
  });
  expectFailure(
    r,
    new RegExp(
      `^✗ RabbitMQ is running but its management plugin does not answer at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\): enable it with \`sudo rabbitmq-plugins enable rabbitmq_management\``,
    ),
  );
  expect(r.stdout).toMatch(/✓ RabbitMQ at 127\.0\.0\.1:5672/);
});

test('Redis down', async () => {
  const port = await closedPort();
  const r = await preflight({ EXCHANGE_PORT_BASE: String(base), REDIS_URL: `redis://127.0.0.1:${port}` });
  expectFailure(
    r,
    new RegExp(
      `^✗ Redis is not running at 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\): start it .*or set REDIS_URL\\.$`,
    ),
  );
});

test('a port the stack needs is taken', async () => {
  const holder = createServer();
  await new Promise<void>((r) => holder.listen(base, '127.0.0.1', r));
  try {
    const r = await preflight({ EXCHANGE_PORT_BASE: String(base) });
    expectFailure(
      r,
      new RegExp(
        `^✗ Port ${base} \\(gateway\\) is already in use: stop what holds it \\(\`./exchange stop\`.*EXCHANGE_PORT_BASE\\.$`,
      ),
    );
  } finally {
    await new Promise((r) => holder.close(r));
  }
});

test('too little disk space', async () => {
  const r = await preflight({ EXCHANGE_PORT_BASE: String(base), EXCHANGE_MIN_FREE_DISK_MB: String(1024 ** 3) });
  expectFailure(r, /^✗ Only .* free on the disk of .* and the stack needs 1048576\.0 GB .*: free some space/);
});

test('several things down at once: every one is named', async () => {
  const [pgPort, redisPort] = [await closedPort(), await closedPort()];
  const r = await preflight({
    EXCHANGE_PORT_BASE: String(base),
    DATABASE_URL: `postgres://postgres@127.0.0.1:${pgPort}/exchange`,
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
  });
  expectFailure(r, /^✗ PostgreSQL is not running/, /^✗ Redis is not running/);
});

test('Node older than 24 with fetching turned off: ./exchange says what is needed', async () => {
  // A stand-in `node` that reports version 20, so the check does not depend on which Node the machine has.
  const bin = mkdtempSync(join(tmpdir(), 'old-node-'));
  writeFileSync(
    join(bin, 'node'),
    '#!/bin/sh\ncase "$*" in *--version*) echo v20.11.1 ;; *process.versions*) echo 20 ;; *) exit 1 ;; esac\n',
  );
  chmodSync(join(bin, 'node'), 0o755);
  // The script on its own, without this checkout's .tools/ (where ./exchange setup put a Node 24 it would prefer).
  const bare = mkdtempSync(join(tmpdir(), 'bare-exchange-'));
  copyFileSync(join(ROOT, 'exchange'), join(bare, 'exchange'));
  copyFileSync(join(ROOT, 'package.json'), join(bare, 'package.json'));
  try {
    const r = await run(['/bin/sh', join(bare, 'exchange'), 'preflight'], {
      PATH: `${bin}:/usr/bin:/bin`,
      EXCHANGE_BOOTSTRAP: '0',
    });
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(
      'exchange: Node 24 or newer is needed (this machine has v20.11.1): install Node 24, or run without EXCHANGE_BOOTSTRAP=0 so ./exchange fetches it into .tools/.',
    );
  } finally {
    rmSync(bin, { recursive: true, force: true });
    rmSync(bare, { recursive: true, force: true });
  }
});

test('the Node check of the stack itself', async () => {
  const { checkNode } = await import('./preflight.ts');
  expect(checkNode('24.1.0').ok).toBe(true);
  expect(checkNode('20.11.1')).toEqual({
    name: 'node',
    ok: false,
    message:
      'Node 24 or newer is needed and this is Node 20.11.1: start with ./exchange start, which fetches Node 24 into .tools/, or install Node 24.',
  });
});
