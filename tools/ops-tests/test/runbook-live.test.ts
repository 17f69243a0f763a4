// The runbook's admin and health commands executed against the real product: the four services started through
// the image entrypoint (as compose starts them, with the compose environment from .env) on this machine, against
// the test PostgreSQL (a throw-away database) and RabbitMQ (a throw-away vhost). Kong is not available here, so
// each call goes to the service that owns the path (the routing itself is checked against kong/kong.yml in
// runbook.test.ts). Every gateway call written in docs/runbook.md must be one this test made successfully.
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import {
  dotenv,
  entrypointScript,
  eventually,
  freePort,
  interpolate,
  readText,
  repoRoot,
  runTool,
  SERVICES,
  startTool,
} from '../src/helpers.ts';
import { stringify } from 'yaml';
import { staffAccessToken } from '@exchange/e2e';

const PG_ADMIN = process.env.TEST_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
// the same variables and defaults as the repository's other tests (packages/db, packages/messaging testing helpers)
const AMQP_BASE = process.env.TEST_RABBITMQ_URL ?? process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const MGMT = process.env.TEST_RABBITMQ_MANAGEMENT_URL ?? 'http://guest:guest@127.0.0.1:15672';
const suffix = randomBytes(4).toString('hex');
const db = `ops_stack_${suffix}`;
const vhost = `ops_stack_${suffix}`;
const dir = mkdtempSync(join(tmpdir(), 'ops-stack-'));
const script = join(dir, 'exchange-service');
const PATH = `${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`;
const env = dotenv();
const procs = new Map<string, { proc: ChildProcess; log: () => string }>();
const ports: Record<string, number> = {};
const done: string[] = []; // "METHOD path" of every successful call
const roles = new Set<string>(); // the database roles this run created (compose's, renamed for this run)

function psql(sql: string): string {
  const r = runTool('psql', [PG_ADMIN, '-v', 'ON_ERROR_STOP=1', '-X', '-q', '-At', '-c', sql]);
  if (r.status !== 0) throw new Error(`psql: ${r.stderr}`);
  return r.stdout;
}

async function mgmt(method: string, path: string, body?: unknown): Promise<void> {
  const u = new URL(MGMT);
  const auth = Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
  u.username = '';
  u.password = '';
  const r = await fetch(new URL(`/api${path}`, u), {
    method,
    headers: { authorization: `Basic ${auth}`, 'content-type': 'application/json' },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  if (!r.ok && !(method === 'DELETE' && r.status === 404))
    throw new Error(`RabbitMQ management ${method} ${path}: ${r.status} ${await r.text()}`);
}

const owner = (path: string): string => {
  if (/^\/api\/v1\/(auth|admin\/(users|audit|backups))/.test(path)) return 'auth';
  if (
    /^\/api\/v1\/admin\/(reconciliation|wallet\/|feature-flags\/(withdrawals|deposits)|dead-letters\/wallet)/.test(path)
  )
    return 'wallet';
  if (/^\/api\/v1\/admin\/(dead-letters\/payment-processor|engine\/)/.test(path)) return 'payment-processor';
  return 'order';
};

let token = '';
async function call(method: string, path: string, body?: unknown, expected: number[] = [200]): Promise<any> {
  const r = await fetch(`http://127.0.0.1:${ports[owner(path)]}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  if (!expected.includes(r.status)) {
    const log = r.status >= 500 ? `\n${owner(path)} log:\n${procs.get(owner(path))!.log().slice(-4000)}` : '';
    throw new Error(`${method} ${path} -> ${r.status}: ${text.slice(0, 500)}${log}`);
  }
  done.push(`${method} ${path}`);
  return text ? JSON.parse(text) : null;
}

async function waitFor(name: string, path: string, timeoutMs: number): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  let last: Response | undefined;
  while (Date.now() < deadline) {
    const p = procs.get(name)!;
    if (p.proc.exitCode !== null) throw new Error(`${name} exited ${p.proc.exitCode}:\n${p.log().slice(-3000)}`);
    last = await fetch(`http://127.0.0.1:${ports[name]}${path}`).catch(() => undefined);
    if (last?.ok) return last;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(
    `${name} ${path} not OK after ${timeoutMs} ms (last ${last?.status}):\n${procs.get(name)!.log().slice(-3000)}`,
  );
}

beforeAll(async () => {
  writeFileSync(script, entrypointScript(), { mode: 0o755 });
  psql(`CREATE DATABASE ${db}`);
  await mgmt('PUT', `/vhosts/${vhost}`, { description: 'ops-tests' });
  const user = decodeURIComponent(new URL(MGMT).username) || 'guest';
  await mgmt('PUT', `/permissions/${vhost}/${encodeURIComponent(user)}`, { configure: '.*', write: '.*', read: '.*' });
  for (const s of SERVICES) ports[s.name] = await freePort();

  const compose = parse(readText('docker-compose.yml'), { merge: true }) as any;
  const dbUrl = (() => {
    const u = new URL(PG_ADMIN);
    u.pathname = `/${db}`;
    return u.toString();
  })();
  // compose's postgres:5432/exchange becomes the test database; its roles (exchange_auth, …) are cluster-wide, so
  // they get this run's name (ops_stack_<suffix>_auth, …) and are dropped with the database
  const localDb = (composeUrl: string) => {
    const u = new URL(composeUrl);
    const local = new URL(dbUrl);
    local.username = `${db}_${decodeURIComponent(u.username).replace(/^exchange_/, '')}`;
    local.password = u.password;
    roles.add(decodeURIComponent(local.username));
    return local.toString();
  };
  // the db-roles one-shot first, through the entrypoint, as compose runs it before the services
  const rolesEnv = Object.fromEntries(
    Object.entries<string>(compose.services['db-roles'].environment).map(([k, v]) => {
      const value = interpolate(String(v), env);
      return [k, k === 'DATABASE_ADMIN_URL' ? dbUrl : localDb(value)];
    }),
  );
  const provisioned = spawnSync('sh', [script, 'db-roles'], {
    env: { ...rolesEnv, PATH, APP_DIR: repoRoot },
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (provisioned.status !== 0) throw new Error(`db-roles: ${provisioned.stderr}`);
  // admin backups are encrypted to a key pair of this run's
  const identity = runTool('age-keygen', []).stdout;
  writeFileSync(join(dir, 'backup-identity.txt'), identity, { mode: 0o600 });
  const recipient = /public key: (age1\S+)/.exec(identity)![1]!;
  const start = (name: string) => {
    const containerEnv = Object.fromEntries(
      Object.entries<string>(compose.services[name].environment).map(([k, v]) => [k, interpolate(String(v), env)]),
    );
    // compose's host names become this machine's test services
    const local: Record<string, string> = {
      DATABASE_URL: localDb(containerEnv.DATABASE_URL!),
      ...(containerEnv.BACKUP_DATABASE_URL
        ? { BACKUP_DATABASE_URL: localDb(containerEnv.BACKUP_DATABASE_URL), BACKUP_AGE_RECIPIENTS: recipient }
        : {}),
      ...(containerEnv.AMQP_URL ? { AMQP_URL: `${AMQP_BASE}/${vhost}` } : {}),
      ...(containerEnv.RABBITMQ_MANAGEMENT_URL ? { RABBITMQ_MANAGEMENT_URL: MGMT } : {}),
      ...(containerEnv.AUTH_JWKS_URL ? { AUTH_JWKS_URL: `http://127.0.0.1:${ports.auth}/.well-known/jwks.json` } : {}),
      ...(containerEnv.WALLET_URL ? { WALLET_URL: `http://127.0.0.1:${ports.wallet}` } : {}),
      ...(containerEnv.ORDER_URL ? { ORDER_URL: `http://127.0.0.1:${ports.order}` } : {}),
      ...(containerEnv.PAYMENT_PROCESSOR_URL
        ? { PAYMENT_PROCESSOR_URL: `http://127.0.0.1:${ports['payment-processor']}` }
        : {}),
      ...(containerEnv.BACKUP_DIR ? { BACKUP_DIR: join(dir, 'backups') } : {}),
      OTEL_EXPORTER_OTLP_ENDPOINT: '',
    };
    let out = '';
    const proc = spawn('sh', [script, 'serve'], {
      env: {
        ...containerEnv,
        ...local,
        PATH,
        APP_DIR: repoRoot,
        PORT: String(ports[name]),
        HOST: '127.0.0.1',
        ARGON2_MEMORY_KIB: '8192',
        ARGON2_TIME_COST: '1',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stdout!.on('data', (c) => (out = (out + c).slice(-20_000)));
    proc.stderr!.on('data', (c) => (out = (out + c).slice(-20_000)));
    procs.set(name, { proc, log: () => out });
  };
  // compose order: auth and wallet first (order depends on the wallet being healthy)
  start('auth');
  start('wallet');
  start('payment-processor');
  await waitFor('auth', '/ready', 60_000);
  await waitFor('wallet', '/ready', 60_000);
  start('order');
  await waitFor('order', '/ready', 60_000);
  await waitFor('payment-processor', '/ready', 60_000);
}, 240_000);

afterAll(async () => {
  await Promise.all(
    [...procs.values()].map(({ proc }) =>
      proc.exitCode !== null
        ? null
        : new Promise((r) => {
            proc.once('exit', r);
            proc.kill('SIGTERM');
            setTimeout(() => proc.kill('SIGKILL'), 10_000).unref();
          }),
    ),
  );
  await mgmt('DELETE', `/vhosts/${vhost}`).catch(() => {});
  try {
    psql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${db}'`);
    psql(`DROP DATABASE IF EXISTS ${db}`);
    for (const role of roles) psql(`DROP ROLE IF EXISTS "${role}"`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

test('health checks: /health, /ready (each dependency with latency_ms) and /metrics on every service', async () => {
  for (const s of SERVICES) {
    const h = (await (await fetch(`http://127.0.0.1:${ports[s.name]}/health`)).json()) as any;
    expect(h).toMatchObject({ status: 'healthy', service: s.name });
    const r = (await (await fetch(`http://127.0.0.1:${ports[s.name]}/ready`)).json()) as any;
    expect(r.status).toBe('ready');
    expect(Object.keys(r.checks).length).toBeGreaterThan(0);
    for (const c of Object.values<any>(r.checks))
      expect(c).toMatchObject({ status: 'healthy', latency_ms: expect.any(Number) });
    const m = await (await fetch(`http://127.0.0.1:${ports[s.name]}/metrics`)).text();
    expect(m).toContain('http_requests_total');
    const e = (await (await fetch(`http://127.0.0.1:${ports[s.name]}/errors?limit=50`)).json()) as any;
    expect(e).toHaveProperty('summary');
  }
});

test('every service metric the alert rules use is exposed on /metrics by the running services', async () => {
  const exposed = new Set<string>();
  for (const s of SERVICES) {
    const text = await (await fetch(`http://127.0.0.1:${ports[s.name]}/metrics`)).text();
    for (const m of text.matchAll(/^# TYPE (\S+) /gm)) exposed.add(m[1]!);
  }
  const used = [
    'http_requests_total',
    'http_request_duration_seconds',
    'http_errors_total',
    'withdrawals_blocked_total',
    'jobs_dead_letter_total',
    'jobs_queue_length',
    'reconciliation_mismatches_total',
    'auth_login_failures_total',
    'outbox_pending',
    'engine_orders_total',
    'trades_total',
  ];
  // prom-client names counters without the _total suffix in # TYPE lines
  const has = (m: string) => exposed.has(m) || exposed.has(m.replace(/_total$/, ''));
  for (const m of used) expect({ metric: m, exposed: has(m) }).toEqual({ metric: m, exposed: true });
  for (const m of used)
    expect(
      readText('config', 'rules', 'alert-rules.yml') + readText('config', 'rules', 'recording-rules.yml'),
    ).toContain(m);
});

test('the runbook admin procedures work against the product', async () => {
  // staff accounts work only with 2FA: the first login enrols TOTP, as the runbook's first-start section says
  token = await staffAccessToken(`http://127.0.0.1:${ports.auth}`, {
    email: env.ADMIN_EMAIL!,
    password: env.ADMIN_PASSWORD!,
  });
  done.push('POST /api/v1/auth/login', 'POST /api/v1/auth/2fa/setup', 'POST /api/v1/auth/2fa/verify');
  expect(token).toEqual(expect.any(String));

  // trading health (engines attach to every market queue)
  const deadline = Date.now() + 60_000;
  let trading: any;
  while (Date.now() < deadline) {
    trading = await fetch(`http://127.0.0.1:${ports.order}/api/health/trading`).then((r) => r.json());
    if (trading.status === 'healthy') break;
    await new Promise((r) => setTimeout(r, 500));
  }
  expect(trading).toMatchObject({ status: 'healthy', tradingEnabled: true });
  done.push('GET /api/health/trading');
  const market = trading.markets[0].market as string;

  // kill switches
  expect(await call('POST', '/api/v1/admin/feature-flags/trading/disable', { reason: 'ops-tests' })).toMatchObject({
    name: 'trading',
    enabled: false,
  });
  expect((await call('GET', '/api/v1/admin/feature-flags')).flags.find((f: any) => f.name === 'trading')).toMatchObject(
    { enabled: false, reason: 'ops-tests' },
  );
  await call('POST', '/api/v1/admin/feature-flags/trading/enable');
  for (const [flag, on] of [
    ['maintenance', 'enable'],
    ['maintenance', 'disable'],
    ['withdrawals', 'disable'],
    ['withdrawals', 'enable'],
    ['deposits', 'disable'],
    ['deposits', 'enable'],
  ]) {
    await call('POST', `/api/v1/admin/feature-flags/${flag}/${on}`, { reason: 'ops-tests' });
  }
  expect(await call('POST', `/api/v1/admin/markets/${market}/halt`, { reason: 'ops-tests' })).toMatchObject({
    halted: true,
  });
  expect(await call('POST', `/api/v1/admin/markets/${market}/resume`)).toMatchObject({ halted: false });
  // the engine's own halt (a command that keeps failing): its status per market, and resume (409 while running)
  expect((await call('GET', '/api/v1/admin/engine/markets')).markets.map((m: any) => m.market)).toContain(market);
  const resumed = await call('POST', `/api/v1/admin/engine/markets/${market}/resume`, undefined, [409]);
  expect(resumed.error.code).toBe('NOT_HALTED');
  // a market's trading phase (continuous, or a volatility call auction with its indicative price)
  expect(await call('GET', `/api/v1/markets/${market}/book`)).toMatchObject({ phase: 'continuous' });

  // dead letters: a well-formed envelope of a type the wallet does not handle is dead-lettered at once, listed,
  // and replayed through the admin API
  const u = new URL(MGMT);
  const basic = Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
  u.username = '';
  u.password = '';
  const messageId = randomUUID();
  const pub = await fetch(new URL(`/api/exchanges/${vhost}/amq.default/publish`, u), {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      properties: { message_id: messageId, content_type: 'application/json' },
      routing_key: 'wallet.settlement',
      payload: JSON.stringify({
        id: messageId,
        type: 'ops_tests.unknown',
        version: 1,
        occurredAt: new Date().toISOString(),
        producer: 'ops-tests',
        payload: {},
      }),
      payload_encoding: 'string',
    }),
  });
  expect(((await pub.json()) as any).routed).toBe(true);
  let letters: any[] = [];
  const dlDeadline = Date.now() + 30_000;
  while (Date.now() < dlDeadline && letters.length === 0) {
    letters = (await call('GET', '/api/v1/admin/dead-letters/wallet')).items;
    if (letters.length === 0) await new Promise((r) => setTimeout(r, 300));
  }
  expect(letters[0]).toMatchObject({ queue: 'wallet.settlement', messageId, reason: expect.any(String) });
  expect((await call('POST', `/api/v1/admin/dead-letters/wallet/${letters[0].id}/retry`)).alreadyRetried).toBe(false);
  for (const svc of ['order', 'payment-processor']) await call('GET', `/api/v1/admin/dead-letters/${svc}`);

  // reconciliation
  const run = await call('POST', '/api/v1/admin/reconciliation/run', undefined, [200, 201]);
  const reports = await call('GET', '/api/v1/admin/reconciliation/reports?limit=1');
  expect(reports.reports).toHaveLength(1);
  await call('GET', `/api/v1/admin/reconciliation/reports/${reports.reports[0].id ?? run.id}`);

  // backups (pg_dump of the whole database into BACKUP_DIR)
  const backup = await call('POST', '/api/v1/admin/backups', undefined, [201]);
  expect(backup.name).toMatch(/^exchange-\d{8}T\d{9}Z\.dump\.age$/);
  expect(backup.encrypted).toBe(true);
  expect((await call('GET', '/api/v1/admin/backups')).backups.map((b: any) => b.name)).toContain(backup.name);

  // users and audit
  const email = `ops-${suffix}@example.com`;
  await call('POST', '/api/v1/auth/register', { email, password: 'a-long-enough-passphrase-42' }, [202]);
  const found = await call('GET', `/api/v1/admin/users?email=${encodeURIComponent(email)}`);
  const id = found.users[0].id as string;
  await call('POST', `/api/v1/admin/users/${id}/lock`);
  await call('POST', `/api/v1/admin/users/${id}/unlock`);
  expect((await call('PUT', `/api/v1/admin/users/${id}/roles`, { roles: ['support'] })).roles).toEqual(
    expect.arrayContaining(['user', 'support']),
  );
  // the runbook's own call (the latest 50 events), which must show what was just done to this user
  const audited = (await call('GET', '/api/v1/admin/audit?limit=50')).items as Array<{
    action: string;
    targetId?: string;
  }>;
  expect(audited.filter((a) => a.targetId === id).map((a) => a.action)).toEqual(
    expect.arrayContaining(['admin.user_locked', 'admin.user_unlocked', 'admin.roles_changed']),
  );
  const balances = await call('GET', `/api/v1/admin/wallet/users/${id}/balances`);
  expect(balances.balances.map((b: any) => b.asset)).toEqual(expect.arrayContaining(['BTC', 'USD']));
  expect((await call('GET', `/api/v1/admin/wallet/users/${id}/ledger?limit=20`)).entries).toEqual([]);
}, 180_000);

test('every gateway call written in the runbook was made above', () => {
  const runbook = readText('docs', 'runbook.md').replace(/\\\n\s*/g, ' ');
  const norm = (p: string) =>
    p
      .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<id>')
      .replace(/\/\d+(\/|$)/g, '/<id>$1')
      .replace(/\/markets\/[A-Z0-9-]+\//, '/markets/<market>/')
      .replace(/email=[^&]+/, 'email=<email>');
  const made = new Set(done.map(norm));
  let loop: string[] = [];
  const missing: string[] = [];
  for (const line of runbook.split('\n')) {
    const l = /for f in ([a-z/ ]+); do/.exec(line);
    if (l) loop = l[1]!.trim().split(/\s+/);
    if (!/\bcurl\b/.test(line)) continue;
    for (const m of line.matchAll(/"\$API(\/[^"\s]*)"/g)) {
      const method = /-X (GET|POST|PUT|DELETE)\b/.exec(line)?.[1] ?? 'GET';
      const paths = m[1]!.includes('$f') ? loop.map((f) => m[1]!.replace('$f', f)) : [m[1]!];
      for (const p of paths) {
        const key = norm(
          `${method} ${p.replace(/<[^>]+>/g, '<id>').replace(/\/markets\/[A-Z0-9-]+\//, '/markets/<market>/')}`,
        );
        if (!made.has(key)) missing.push(key);
      }
    }
  }
  expect(missing).toEqual([]);
});

test('a real Prometheus with config/prometheus.yml scrapes the services and evaluates every rule without error', async () => {
  // config/prometheus.yml with compose's host names replaced by this machine's ports, 1 s intervals, and only the
  // jobs that exist here (the services); rule files as they are
  const prom = parse(readText('config', 'prometheus.yml')) as any;
  const job = prom.scrape_configs.find((j: any) => j.job_name === 'exchange');
  // the services this test runs (the notification service, which needs an SMTP server, is not one of them)
  job.static_configs = job.static_configs.filter((c: any) => ports[(c.targets[0] as string).split(':')[0]!]);
  for (const c of job.static_configs) {
    const [host] = (c.targets[0] as string).split(':');
    c.targets = [`127.0.0.1:${ports[host!]}`];
  }
  const config = {
    global: { ...prom.global, scrape_interval: '1s', evaluation_interval: '1s' },
    // the rules as they are, but every group evaluated each second (the recording groups say 30s / 1m)
    rule_files: prom.rule_files.map((f: string) => {
      const rules = parse(readText('config', f)) as { groups: { interval?: string }[] };
      for (const g of rules.groups) delete g.interval;
      const out = join(dir, f.replace('/', '-'));
      writeFileSync(out, stringify(rules));
      return out;
    }),
    scrape_configs: [job],
  };
  writeFileSync(join(dir, 'prometheus.yml'), stringify(config));
  const port = await freePort();
  const p = startTool('prometheus', [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'tsdb')}`,
    `--web.listen-address=127.0.0.1:${port}`,
  ]);
  const base = `http://127.0.0.1:${port}`;
  const q = async (expr: string) =>
    ((await (await fetch(`${base}/api/v1/query?query=${encodeURIComponent(expr)}`)).json()) as any).data
      .result as any[];
  try {
    const traffic = setInterval(
      () => void fetch(`http://127.0.0.1:${ports.order}/api/v1/markets`).catch(() => {}),
      100,
    );
    try {
      const targets = await eventually(
        'all four services scraped',
        async () => {
          const t = ((await (await fetch(`${base}/api/v1/targets`)).json()) as any).data.activeTargets as any[];
          return t.length === 4 && t.every((x) => x.health === 'up') ? t : undefined;
        },
        30_000,
        p.log,
      );
      expect(targets.map((t) => t.labels.app).sort()).toEqual(SERVICES.map((s) => s.name).sort());
      // every rule evaluated at least twice, none with an error
      const rules = await eventually(
        'rules evaluated',
        async () => {
          const groups = ((await (await fetch(`${base}/api/v1/rules`)).json()) as any).data.groups as any[];
          const all = groups.flatMap((g) => g.rules);
          return all.length > 20 && all.every((r) => r.lastEvaluation && !r.lastEvaluation.startsWith('0001'))
            ? all
            : undefined;
        },
        30_000,
        p.log,
      );
      await new Promise((r) => setTimeout(r, 3000));
      const groups = ((await (await fetch(`${base}/api/v1/rules`)).json()) as any).data.groups as any[];
      for (const r of groups.flatMap((g) => g.rules))
        expect({ rule: r.name, health: r.health, error: r.lastError ?? '' }).toEqual({
          rule: r.name,
          health: 'ok',
          error: '',
        });
      expect(rules.length).toBe(groups.flatMap((g) => g.rules).length);
      expect((await q('up{tier="app"} == 1')).length).toBe(4);
      expect((await q('http_request_duration_ms_p99{service="order"}')).length).toBe(1);
      expect(Number((await q('service:http_requests:rate5m{service="order"}'))[0].value[1])).toBeGreaterThan(0);
      expect(await q('ALERTS{alertname=~"ServiceDown|ERROR_THRESHOLD|RECONCILIATION_MISMATCH"}')).toEqual([]);
    } finally {
      clearInterval(traffic);
    }
  } finally {
    p.proc.kill('SIGTERM');
    await new Promise((r) => (p.proc.exitCode !== null ? r(null) : p.proc.once('exit', r)));
  }
}, 120_000);
