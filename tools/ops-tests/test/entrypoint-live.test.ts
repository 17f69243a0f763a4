// The image's entrypoint run for real on this machine (no Docker): the exchange-service script from the Dockerfile,
// with the repository as /app, the real node, and the test PostgreSQL. `migrate` applies every service's migrations
// into a throw-away database; `serve` starts the auth service with the compose environment (.env values) and
// answers /health, /ready and /metrics. This proves the entry paths, the OpenTelemetry --import path and that the
// compose defaults satisfy the service at run time, not only its schema.
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { dotenv, entrypointScript, interpolate, readText, repoRoot, runTool, SERVICES } from '../src/helpers.ts';

const ADMIN_URL = process.env.TEST_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const db = `ops_entry_${randomBytes(4).toString('hex')}`;
const dbUrl = (() => {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${db}`;
  return u.toString();
})();
const dir = mkdtempSync(join(tmpdir(), 'ops-entry-live-'));
const script = join(dir, 'exchange-service');
const PATH = `${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`;
let server: ChildProcess | undefined;

function psql(args: string[]): string {
  const r = runTool('psql', [ADMIN_URL, '-v', 'ON_ERROR_STOP=1', '-X', '-q', '-At', ...args]);
  if (r.status !== 0) throw new Error(`psql: ${r.stderr}`);
  return r.stdout;
}

beforeAll(() => {
  writeFileSync(script, entrypointScript(), { mode: 0o755 });
  psql(['-c', `CREATE DATABASE ${db}`]);
});

afterAll(async () => {
  if (server && server.exitCode === null) {
    server.kill('SIGKILL');
    await new Promise((r) => server!.once('exit', r));
  }
  psql(['-c', `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${db}'`]);
  psql(['-c', `DROP DATABASE IF EXISTS ${db}`]);
  rmSync(dir, { recursive: true, force: true });
});

test('migrate: every service applies its migrations through the image entrypoint', () => {
  for (const s of SERVICES) {
    const r = spawnSync('sh', [script, 'migrate', s.name], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { PATH, APP_DIR: repoRoot, NODE_ENV: 'production', DATABASE_URL: dbUrl },
    });
    expect({ service: s.name, status: r.status, stderr: r.stderr }).toEqual({ service: s.name, status: 0, stderr: '' });
    expect(r.stdout).toContain('migrations applied');
  }
  const r = runTool('psql', [
    dbUrl,
    '-X',
    '-At',
    '-c',
    "SELECT table_schema FROM information_schema.tables WHERE table_schema IN ('auth','wallet','orders','payment') GROUP BY 1 ORDER BY 1",
  ]);
  expect(r.stdout.trim().split('\n')).toEqual(['auth', 'orders', 'payment', 'wallet']);
}, 240_000);

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

test('serve: auth starts with the compose environment and answers /health, /ready and /metrics', async () => {
  const compose = parse(readText('docker-compose.yml'), { merge: true }) as any;
  const env = dotenv();
  const containerEnv = Object.fromEntries(
    Object.entries<string>(compose.services.auth.environment).map(([k, v]) => [k, interpolate(String(v), env)]),
  );
  const port = await freePort();
  let out = '';
  server = spawn('sh', [script, 'serve'], {
    env: {
      ...containerEnv,
      PATH,
      APP_DIR: repoRoot,
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: dbUrl,
      BACKUP_DIR: join(dir, 'backups'),
      OTEL_EXPORTER_OTLP_ENDPOINT: '',
      ARGON2_MEMORY_KIB: '8192',
      ARGON2_TIME_COST: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout!.on('data', (c) => (out += c));
  server.stderr!.on('data', (c) => (out += c));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 45_000;
  let health: Response | undefined;
  while (Date.now() < deadline && server.exitCode === null) {
    health = await fetch(`${base}/health`).catch(() => undefined);
    if (health?.ok) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  if (!health?.ok) throw new Error(`auth did not become healthy (exit ${server.exitCode}):\n${out.slice(-3000)}`);
  expect(await health.json()).toMatchObject({ status: 'healthy', service: 'auth' });

  const ready = await fetch(`${base}/ready`);
  const body = (await ready.json()) as any;
  expect({ status: ready.status, body: body.status }).toEqual({ status: 200, body: 'ready' });
  for (const c of Object.values<any>(body.checks))
    expect(c).toMatchObject({ status: 'healthy', latency_ms: expect.any(Number) });

  const metrics = await (await fetch(`${base}/metrics`)).text();
  for (const m of ['http_requests_total', 'http_request_duration_seconds_bucket', 'auth_login_failures_total'])
    expect(metrics).toContain(m);

  // the admin seeded from ADMIN_EMAIL/ADMIN_PASSWORD of .env can log in
  const login = await fetch(`${base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: env.ADMIN_EMAIL, password: env.ADMIN_PASSWORD }),
  });
  expect(login.status).toBe(200);
  expect(((await login.json()) as any).accessToken).toEqual(expect.any(String));

  server.kill('SIGTERM');
  const code = await new Promise<number | null>((r) => server!.once('exit', (c) => r(c)));
  expect(code).toBe(0);
}, 90_000);
