/**
 * `pnpm bench:e2e`: limit orders through the gateway of a running stack, end to end (order entry → hold → engine →
 * settlement), in three phases: one client unloaded, an open model at a fixed arrival rate (latency measured from the
 * scheduled send time, so queueing shows) and a closed model (max throughput). Starts nothing itself: see
 * tools/bench/README.md for how to start a stack for it. Prints one table and one JSON line.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { ExchangeClient } from '@exchange/sdk';
import { forgetStaffEnrolment, staffAccessToken, staffTotpSecret } from '@exchange/e2e';
import {
  BENCH_APP,
  cpuBetween,
  discover,
  machineBetween,
  machineSample,
  refreshBackends,
  sample,
  type MachineUse,
  type ProcGroup,
} from './procs.ts';
import { seedHistory } from './seed.ts';
import { between, quantileMs, readOrderEntryHistogram } from './service-time.ts';
import { pct } from './stats.ts';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://127.0.0.1:18000' },
    'database-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/bench' },
    'amqp-port': { type: 'string', default: '5672' },
    /** The gateway's rate-limit counters live in Redis (Kong's `policy: redis`): its CPU is the stack's too. */
    'redis-port': { type: 'string', default: '6379' },
    /** Ports of auth, wallet, order, payment-processor; default: gateway port + 1..4 (EXCHANGE_PORT_BASE layout). */
    ports: { type: 'string' },
    traders: { type: 'string', default: '100' },
    users: { type: 'string', default: '0' },
    'preload-orders': { type: 'string', default: '0' },
    phases: { type: 'string', default: 'single,open,closed' },
    rate: { type: 'string', default: '500' },
    duration: { type: 'string', default: '20' },
    'single-duration': { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '64' },
    /**
     * Seconds of closed-loop load before the first measured phase, not counted: a stack that just started runs its
     * code in V8's baseline tiers, and a production service is warm (docs/benchmarks.md, fourteenth round).
     */
    warmup: { type: 'string', default: '10' },
    /**
     * ANALYZE the database after the warm-up: the services' prepared statements keep the plans made when the tables
     * were empty until statistics change, and autovacuum may not get to a fresh database for minutes
     * (docs/benchmarks.md, twenty-first round). `--no-analyze` measures those first plans.
     */
    analyze: { type: 'boolean', default: true },
    'drain-timeout': { type: 'string', default: '60' },
    'admin-email': { type: 'string' },
    secrets: { type: 'string' },
    'admin-password': { type: 'string' },
    label: { type: 'string', default: '' },
    seed: { type: 'string', default: '1' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  allowNegative: true,
});

if (args.help) {
  process.stdout
    .write(`pnpm bench:e2e [options]: drive limit orders through a running stack's gateway (docs/benchmarks.md)
  --url URL                 gateway (default http://127.0.0.1:18000)
  --database-url URL        the stack's database, for seeding, outcomes and reconciliation
  --secrets FILE            the stack's .stack/secrets.json (admin login), or --admin-email/--admin-password
  --amqp-port N, --redis-port N  RabbitMQ's and Redis's ports, to count their CPU (default 5672, 6379)
  --phases LIST             single,open,closed (default all three)
  --rate N[,N…]             open model: orders/s offered (default 500); a list runs one open phase per rate
  --duration S              seconds per open/closed phase (default 20); --single-duration S (default 5)
  --concurrency N           closed model: requests in flight (default 64)
  --warmup S                seconds of closed-loop load before the first phase, not counted (default 10; 0: none)
  --no-analyze              skip the ANALYZE after the warm-up (measure the plans made on empty tables)
  --traders N               funded traders (default 100); --users N, --preload-orders N seed history first
  --label TEXT              names the run in the table and the JSON line
`);
  process.exit(0);
}

const gateway = args.url!.replace(/\/$/, '');
const rates = args.rate!.split(',').map(Number);
if (rates.some((r) => !Number.isFinite(r) || r <= 0)) {
  process.stderr.write(`bench: --rate takes positive orders/s, one or a comma-separated list (got "${args.rate}")\n`);
  process.exit(2);
}
const gatewayPort = Number(new URL(gateway).port || 80);
const servicePorts: Record<string, number> = args.ports
  ? Object.fromEntries(
      args.ports
        .split(',')
        .map((kv) => kv.split('='))
        .map(([k, v]) => [k!, Number(v)]),
    )
  : {
      auth: gatewayPort + 1,
      wallet: gatewayPort + 2,
      order: gatewayPort + 3,
      'payment-processor': gatewayPort + 4,
    };
// The order service's own /metrics, on the gateway's host: its durations show where an order waits (service-time.ts).
const orderServiceUrl = `http://${new URL(gateway).hostname}:${servicePorts.order}`;
const dbUrl = args['database-url']!;
const database = decodeURIComponent(new URL(dbUrl).pathname.slice(1));
const pool = new pg.Pool({ connectionString: dbUrl, max: 4, application_name: BENCH_APP });
const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(Number(args.seed));

interface Trader {
  token: string;
  ip: string;
  n: number;
}

// The stack's secrets (admin credentials, and the admin's TOTP secret once the bench enrolled it): another
// checkout's stack is benchmarked from here with `--secrets <its .stack/secrets.json>`.
const secretsFile = args.secrets ?? join(process.cwd(), '.stack/secrets.json');
/**
 * The host-mode admin's TOTP secret is kept in the stack's secrets file per database (`ADMIN_TOTP_SECRETS`), since
 * each database enrols the admin on its own: a bench that alternates databases on one stack (a seeded one and fresh
 * ones, docs/benchmarks.md) would otherwise log in to one with the secret of another and be refused.
 * `ADMIN_TOTP_SECRET` is what earlier versions kept, for one database only; it is still tried when none is kept.
 */
interface StackSecrets {
  ADMIN_EMAIL: string;
  ADMIN_PASSWORD: string;
  ADMIN_TOTP_SECRET?: string;
  ADMIN_TOTP_SECRETS?: Record<string, string>;
}

function adminCredentials(): { email: string; password: string; totpSecret?: string } {
  if (args['admin-email'] && args['admin-password']) {
    return { email: args['admin-email'], password: args['admin-password'] };
  }
  const s = JSON.parse(readFileSync(secretsFile, 'utf8')) as StackSecrets;
  const totpSecret = s.ADMIN_TOTP_SECRETS?.[database] ?? s.ADMIN_TOTP_SECRET;
  return { email: s.ADMIN_EMAIL, password: s.ADMIN_PASSWORD, ...(totpSecret ? { totpSecret } : {}) };
}

function keepAdminTotpSecret(secret: string): void {
  const s = JSON.parse(readFileSync(secretsFile, 'utf8')) as StackSecrets;
  const kept = { ...s, ADMIN_TOTP_SECRETS: { ...s.ADMIN_TOTP_SECRETS, [database]: secret } };
  writeFileSync(secretsFile, JSON.stringify(kept, null, 2), { mode: 0o600 });
}

const FUNDS = { USD: '100000000', BTC: '10000', ETH: '100000' };

/** Register, log in and fund `n` traders through the public API (each its own client IP). */
async function createTraders(n: number, runTag: string): Promise<Trader[]> {
  const out: Trader[] = [];
  const one = async (i: number) => {
    const ip = `10.${77 + Math.floor(i / 62500)}.${Math.floor(i / 250) % 250}.${(i % 250) + 1}`;
    const client = new ExchangeClient({ baseUrl: gateway, headers: { 'x-forwarded-for': ip }, retries: 3 });
    const email = `bench-${runTag}-${i}@bench.test`;
    const password = `Bench-${runTag}-pw-${i}-Xy9`;
    await client.register({ email, password });
    const login = await client.login({ email, password });
    for (const [asset, amount] of Object.entries(FUNDS)) await client.deposit({ asset, amount });
    out.push({ token: login.accessToken, ip, n: i });
    return client;
  };
  const clients: ExchangeClient[] = [];
  for (let i = 0; i < n; i += 10) {
    clients.push(...(await Promise.all(Array.from({ length: Math.min(10, n - i) }, (_, k) => one(i + k)))));
  }
  // Deposits confirm after the wallet's DEPOSIT_CONFIRMATION_MS.
  const deadline = Date.now() + 120_000;
  for (const c of clients) {
    for (;;) {
      const b = await c.balances();
      if (Object.entries(FUNDS).every(([a, amt]) => Number(b.find((x) => x.asset === a)?.total) === Number(amt))) break;
      if (Date.now() > deadline) throw new Error('deposits not credited within 120 s');
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  return out;
}

let orderSeq = 0;
function orderBody(runTag: string) {
  const btc = rand() < 0.7;
  const side = rand() < 0.5 ? 'buy' : 'sell';
  const offset = Math.floor(rand() * 40) - 20; // ticks around the mid: crosses about half the time
  return {
    market: btc ? 'BTC-USD' : 'ETH-USD',
    side,
    type: 'limit',
    price: btc
      ? String(60_000 + (side === 'buy' ? offset : -offset))
      : (3000 + (side === 'buy' ? offset : -offset) / 10).toFixed(1),
    quantity: btc ? (0.01 * (1 + Math.floor(rand() * 5))).toFixed(2) : (0.1 * (1 + Math.floor(rand() * 5))).toFixed(1),
    timeInForce: rand() < 0.15 ? 'IOC' : 'GTC',
    clientOrderId: `b-${runTag}-${orderSeq++}`,
  };
}

interface Outcome {
  latencyMs: number;
  status: number;
  id?: string;
  /** Why a request got no answer (status 0): the error's code, e.g. ECONNRESET or ECONNREFUSED. */
  error?: string;
}

/**
 * The orders go through `node:http` with a keep-alive agent, not `fetch`: the load generator shares the stack's cores,
 * and `fetch` cost 0.22 ms of this process's CPU per request where `node:http` costs 0.08 (20,000 requests, 64 in
 * flight, against a bare server on this machine). What the generator spends, the stack does not get.
 */
const orderUrl = new URL(`${gateway}/api/v1/orders`);
const transport = orderUrl.protocol === 'https:' ? https : http;
const agent = new transport.Agent({ keepAlive: true, maxSockets: Infinity });

function post(t: Trader, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = transport.request(
      orderUrl,
      {
        method: 'POST',
        agent,
        headers: {
          authorization: `Bearer ${t.token}`,
          'x-forwarded-for': t.ip,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function placeOne(t: Trader, runTag: string, scheduledAt: number): Promise<Outcome> {
  try {
    const r = await post(t, JSON.stringify(orderBody(runTag)));
    let body: { id?: string; order?: { id?: string } } = {};
    try {
      body = JSON.parse(r.text) as typeof body;
    } catch {
      // an answer that is not JSON (a proxy's error page) still counts by its status
    }
    return { latencyMs: performance.now() - scheduledAt, status: r.status, id: body.id ?? body.order?.id };
  } catch (err) {
    const e = err as Error & { code?: string };
    return { latencyMs: performance.now() - scheduledAt, status: 0, error: e.code ?? e.message };
  }
}

interface PhaseResult {
  phase: string;
  offeredPerS: number | null;
  loadS: number;
  sent: number;
  accepted: number;
  acceptedPerS: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /**
   * The order service's own p50/p99 for placing an order over the load (its histogram's buckets, interpolated);
   * NaN when its /metrics did not answer. The client's latency beyond these is spent in front of the service.
   */
  orderServiceP50Ms: number;
  orderServiceP99Ms: number;
  status4xx: number;
  status5xx: number;
  networkErrors: number;
  drainS: number;
  processed: number;
  processedPerS: number;
  trades: number;
  unsettledTrades: number;
  cpuSeconds: Record<string, number>;
  cpuMsPerOrder: Record<string, number>;
  cpuMsPerOrderStack: number;
  cpuMsPerOrderStackExShared: number;
  /** This process's own CPU (the load generator, on the same cores), per accepted order: not in the stack's totals. */
  loadGeneratorCpuMsPerOrder: number;
  /** The whole machine over load + drain: context switches per order, the kernel's share of busy time, idle, steal. */
  machine: MachineUse;
  errors: string[];
}

async function outboxHead(): Promise<string> {
  const { rows } = await pool.query<{ seq: string }>(
    `SELECT coalesce(max(sequence), 0)::text AS seq FROM payment.outbox`,
  );
  return rows[0]!.seq;
}

/** Keep asking `done(chunk)` about the oldest ids, 100 at a time (index lookups), until one is not done. */
async function stillOpen(ids: string[], done: (chunk: string[]) => Promise<Set<string>>): Promise<string[]> {
  let remaining = ids;
  while (remaining.length > 0) {
    const chunk = remaining.slice(0, 100);
    const ok = await done(chunk);
    remaining = [...chunk.filter((id) => !ok.has(id)), ...remaining.slice(chunk.length)];
    if (ok.size < chunk.length) break;
  }
  return remaining;
}

const ids = (rows: Array<{ id: string }>) => new Set(rows.map((r) => r.id));

/**
 * Wait until every accepted order has its engine outcome in the order service (`last_seq`, set by
 * engine.order-updated) and every trade the engine emitted since `fromSeq` is settled and every finished order's hold
 * released in the wallet (its inbox has each wallet.settle-trade and wallet.release-hold). They are all known once
 * every order has its outcome: the engine writes a command's messages in the transaction that records it.
 */
async function drain(
  orderIds: string[],
  fromSeq: string,
  timeoutS: number,
): Promise<{ processed: number; trades: number; unsettled: number }> {
  let orders = orderIds;
  let trades: string[] | undefined;
  let tradeCount = 0;
  const deadline = Date.now() + timeoutS * 1000;
  for (;;) {
    orders = await stillOpen(orders, async (chunk) =>
      ids(
        (
          await pool.query<{ id: string }>(
            `SELECT id::text AS id FROM orders.orders WHERE id = ANY($1::uuid[]) AND last_seq IS NOT NULL`,
            [chunk],
          )
        ).rows,
      ),
    );
    if (orders.length === 0 && !trades) {
      const { rows } = await pool.query<{ id: string; type: string }>(
        `SELECT message_id AS id, type FROM payment.outbox
          WHERE sequence > $1::bigint AND type IN ('wallet.settle-trade', 'wallet.release-hold') ORDER BY sequence`,
        [fromSeq],
      );
      trades = rows.map((r) => r.id);
      tradeCount = rows.filter((r) => r.type === 'wallet.settle-trade').length;
    }
    if (trades) {
      // settled and released: the wallet's inbox has every settle-trade and release-hold the engine wrote
      trades = await stillOpen(trades, async (chunk) =>
        ids(
          (
            await pool.query<{ id: string }>(
              `SELECT message_id AS id FROM wallet.inbox WHERE queue = 'wallet.settlement' AND message_id = ANY($1::text[])`,
              [chunk],
            )
          ).rows,
        ),
      );
      if (trades.length === 0) return { processed: orderIds.length, trades: tradeCount, unsettled: 0 };
    }
    if (Date.now() > deadline) {
      log(
        `drain timed out: ${orders.length} orders without an engine outcome, ${trades?.length ?? '?'} wallet messages unapplied`,
      );
      return { processed: orderIds.length - orders.length, trades: tradeCount, unsettled: trades?.length ?? NaN };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function runPhase(
  phase: 'single' | 'open' | 'closed',
  traders: Trader[],
  groups: ProcGroup[],
  runTag: string,
  durationS = phase === 'single' ? Number(args['single-duration']) : Number(args.duration),
  rate = rates[0]!,
): Promise<PhaseResult> {
  const fromSeq = await outboxHead();
  const entry0 = await readOrderEntryHistogram(orderServiceUrl);
  await refreshBackends(groups, pool, database);
  const cpu0 = sample(groups);
  const machine0 = machineSample();
  const own0 = process.cpuUsage();
  const outcomes: Outcome[] = [];
  const t0 = performance.now();
  const end = t0 + durationS * 1000;
  let i = 0;
  const next = () => traders[i++ % traders.length]!;
  if (phase === 'open') {
    // Open model: order k is due at t0 + k/rate whether or not earlier ones have answered.
    const inflight = new Set<Promise<void>>();
    let k = 0;
    while (performance.now() < end) {
      const due = t0 + (k * 1000) / rate;
      const now = performance.now();
      if (due > now) {
        await new Promise((r) => setTimeout(r, Math.max(0, due - now - 0.5)));
        continue;
      }
      k++;
      const p = placeOne(next(), runTag, due).then((o) => {
        outcomes.push(o);
        inflight.delete(p);
      });
      inflight.add(p);
    }
    await Promise.all(inflight);
  } else {
    const workers = phase === 'single' ? 1 : Number(args.concurrency);
    await Promise.all(
      Array.from({ length: workers }, async () => {
        while (performance.now() < end) outcomes.push(await placeOne(next(), runTag, performance.now()));
      }),
    );
  }
  const loadS = (performance.now() - t0) / 1000;
  const entry1 = await readOrderEntryHistogram(orderServiceUrl);
  const entry = entry0 && entry1 ? between(entry0, entry1) : new Map<number, number>();
  const accepted = outcomes.filter((o) => o.status >= 200 && o.status < 300).map((o) => o.id!);
  const tDrain = performance.now();
  const d = await drain(accepted, fromSeq, Number(args['drain-timeout']));
  const drainS = (performance.now() - tDrain) / 1000;
  await refreshBackends(groups, pool, database);
  const cpu1 = sample(groups);
  const machine1 = machineSample();
  const own = process.cpuUsage(own0);
  const cpu = cpuBetween(groups, cpu0, cpu1);
  const lat = outcomes.map((o) => o.latencyMs).sort((a, b) => a - b);
  const perOrder: Record<string, number> = {};
  for (const [k, v] of Object.entries(cpu)) perOrder[k] = accepted.length ? (v * 1000) / accepted.length : NaN;
  const sharedNames = new Set(groups.filter((g) => g.shared).map((g) => g.name));
  const total = Object.values(perOrder).reduce((a, b) => a + b, 0);
  const exShared = Object.entries(perOrder)
    .filter(([k]) => !sharedNames.has(k))
    .reduce((a, [, b]) => a + b, 0);
  const errs = outcomes.filter((o) => o.status >= 400 || o.status === 0);
  return {
    phase,
    offeredPerS: phase === 'open' ? rate : null,
    loadS,
    sent: outcomes.length,
    accepted: accepted.length,
    acceptedPerS: accepted.length / loadS,
    p50Ms: pct(lat, 50),
    p90Ms: pct(lat, 90),
    p99Ms: pct(lat, 99),
    maxMs: lat[lat.length - 1] ?? NaN,
    orderServiceP50Ms: quantileMs(entry, 0.5),
    orderServiceP99Ms: quantileMs(entry, 0.99),
    status4xx: outcomes.filter((o) => o.status >= 400 && o.status < 500).length,
    status5xx: outcomes.filter((o) => o.status >= 500).length,
    networkErrors: outcomes.filter((o) => o.status === 0).length,
    drainS,
    processed: d.processed,
    processedPerS: d.processed / (loadS + drainS),
    trades: d.trades,
    unsettledTrades: d.unsettled,
    cpuSeconds: cpu,
    cpuMsPerOrder: perOrder,
    cpuMsPerOrderStack: total,
    cpuMsPerOrderStackExShared: exShared,
    loadGeneratorCpuMsPerOrder: accepted.length ? (own.user + own.system) / 1000 / accepted.length : NaN,
    machine: machineBetween(machine0, machine1, accepted.length),
    errors: [...new Set(errs.map((o) => (o.status === 0 ? `no answer: ${o.error}` : String(o.status))))].slice(0, 5),
  };
}

async function reconcile(): Promise<{ status: string; failedChecks: string[] }> {
  let creds = adminCredentials();
  const run = async () => {
    // staff routes need 2FA: the first run enrols the host-mode admin and keeps its TOTP secret with the other secrets
    const token = await staffAccessToken(gateway, creds);
    const secret = staffTotpSecret(gateway, creds.email);
    if (secret && secret !== creds.totpSecret && !args['admin-email']) keepAdminTotpSecret(secret);
    return fetch(`${gateway}/api/v1/admin/reconciliation/run`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': '10.250.0.1' },
    });
  };
  let res = await run();
  if (res.status === 403 && creds.totpSecret) {
    const code = (
      (await res
        .clone()
        .json()
        .catch(() => ({}))) as { error?: { code?: string } }
    ).error?.code;
    if (code === 'MFA_ENROLMENT_REQUIRED') {
      // the kept secret belongs to an earlier database (the stack was reset): enrol this admin again
      forgetStaffEnrolment(gateway, creds.email);
      const { totpSecret: _stale, ...fresh } = creds;
      creds = fresh;
      res = await run();
    }
  }
  const r = (await res.json().catch(() => ({}))) as unknown;
  if (!res.ok) {
    // an answer without a report (gateway timeout, 5xx) is shown as such, never as a silent "undefined"
    const err = (r as { error?: { code?: string } }).error?.code ?? '';
    return { status: `http ${res.status}${err ? ` ${err}` : ''}`, failedChecks: [] };
  }
  const rep = r as unknown as { status: string; report?: { checks?: Array<{ name: string; mismatches: number }> } };
  const failed = (rep.report?.checks ?? []).filter((c) => c.mismatches > 0).map((c) => `${c.name}: ${c.mismatches}`);
  return { status: rep.status, failedChecks: failed };
}

const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '-');

async function main() {
  const runTag = Date.now().toString(36);
  const users = Number(args.users);
  const preload = Number(args['preload-orders']);
  if (users > 0 || preload > 0) await seedHistory(pool, { users, orders: preload, tag: 'history' });
  const groups = await discover({
    ports: { gateway: gatewayPort, ...servicePorts },
    amqpPort: Number(args['amqp-port']),
    redisPort: Number(args['redis-port']),
    pool,
    database,
  });
  log(
    `processes: ${groups.map((g) => `${g.name}=${g.pids.length > 3 ? g.pids.length + ' pids' : g.pids.join('+')}`).join(' ')}`,
  );
  const t0 = Date.now();
  const traders = await createTraders(Number(args.traders), runTag);
  log(`${traders.length} traders funded in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const warmupS = Number(args.warmup);
  let warmup: { orders: number; seconds: number } | null = null;
  if (warmupS > 0) {
    log(`warm-up (${warmupS} s, not counted)…`);
    const w = await runPhase('closed', traders, groups, runTag, warmupS);
    warmup = { orders: w.processed, seconds: warmupS };
    log(`warm-up: ${w.processed} orders processed`);
  }
  if (args.analyze) {
    const ta = Date.now();
    await pool.query('ANALYZE');
    log(`ANALYZE in ${((Date.now() - ta) / 1000).toFixed(1)} s`);
  }
  const sizes = await pool.query<{ users: string; orders: string; accounts: string }>(
    `SELECT (SELECT count(*) FROM auth.users)::text AS users, (SELECT count(*) FROM orders.orders)::text AS orders,
            (SELECT count(*) FROM wallet.accounts)::text AS accounts`,
  );
  const results: PhaseResult[] = [];
  for (const phase of args.phases!.split(',') as Array<'single' | 'open' | 'closed'>) {
    if (phase !== 'open') {
      log(`phase ${phase}…`);
      results.push(await runPhase(phase, traders, groups, runTag));
      continue;
    }
    // one open phase per rate: offered rate against latency, the stack's knee in one run
    for (const rate of rates) {
      log(`phase open at ${rate}/s…`);
      results.push(await runPhase(phase, traders, groups, runTag, Number(args.duration), rate));
    }
  }
  // A reconciliation that cannot be run (e.g. a kept TOTP secret of another database) is reported as such: it must not
  // throw away the phases' measurements.
  const recon = await reconcile().catch((err: unknown) => ({
    status: `not run: ${err instanceof Error ? err.message : String(err)}`,
    failedChecks: [] as string[],
  }));
  const load = (await import('node:os')).loadavg();

  const procNames = groups.map((g) => g.name);
  const header = [
    'phase',
    'offered/s',
    'accepted/s',
    'p50 ms',
    'p90 ms',
    'p99 ms',
    'max ms',
    'order service p50/p99 ms',
    '4xx',
    '5xx',
    'drain s',
    'processed/s',
    'trades',
    'CPU ms/order',
    ...procNames.map((n) => `${n} ms`),
    'load generator ms',
    'switches/order',
    'kernel %',
    'idle %',
  ];
  const rows = results.map((r) => [
    r.phase,
    r.offeredPerS ? f(r.offeredPerS) : '-',
    f(r.acceptedPerS),
    f(r.p50Ms, 1),
    f(r.p90Ms, 1),
    f(r.p99Ms, 1),
    f(r.maxMs, 0),
    `${f(r.orderServiceP50Ms, 1)} / ${f(r.orderServiceP99Ms, 1)}`,
    String(r.status4xx),
    String(r.status5xx + r.networkErrors),
    f(r.drainS, 2),
    f(r.processedPerS),
    r.unsettledTrades ? `${r.trades} (${r.unsettledTrades} unsettled)` : String(r.trades),
    `${f(r.cpuMsPerOrderStack, 2)} (${f(r.cpuMsPerOrderStackExShared, 2)} own)`,
    ...procNames.map((n) => f(r.cpuMsPerOrder[n] ?? NaN, 2)),
    f(r.loadGeneratorCpuMsPerOrder, 2),
    f(r.machine.contextSwitchesPerOrder, 0),
    f(r.machine.kernelPercent, 0),
    f(r.machine.idlePercent, 0),
  ]);
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const out = [
    `${args.label ? `${args.label}: ` : ''}${sizes.rows[0]!.users} users, ${sizes.rows[0]!.accounts} accounts, ${sizes.rows[0]!.orders} orders in the database before the load; ${traders.length} traders; ${warmup ? `warm-up ${warmup.seconds} s (${warmup.orders} orders, not counted)` : 'no warm-up'}; ${args.analyze ? 'analyzed' : 'not analyzed'}; load average ${load.map((x) => x.toFixed(1)).join(' ')}`,
    line(header),
    line(header.map(() => '---')),
    ...rows.map(line),
    `reconciliation: ${recon.status}${recon.failedChecks.length ? ` (${recon.failedChecks.join(', ')})` : ''}`,
  ];
  process.stdout.write(out.join('\n') + '\n');
  process.stdout.write(
    JSON.stringify({
      label: args.label,
      at: new Date().toISOString(),
      database: {
        users: Number(sizes.rows[0]!.users),
        accounts: Number(sizes.rows[0]!.accounts),
        orders: Number(sizes.rows[0]!.orders),
      },
      traders: traders.length,
      warmup,
      analyzed: args.analyze,
      loadAverage: load,
      phases: results,
      reconciliation: recon,
    }) + '\n',
  );
  await pool.end();
}

main().catch(async (err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  await pool.end().catch(() => {});
  process.exit(1);
});
