/**
 * `pnpm bench:floor`: what the order path's hops cost on this machine with nothing behind them, the floor under
 * `pnpm bench:e2e`'s figures. It starts its own processes (floor-roles.ts) and drives them the way bench:e2e drives
 * the stack (the same request, headers and closed loop), one scenario after another:
 * - `service`: client → a fastify service that validates the order and answers 201;
 * - `gateway`: client → a fastify + reply-from proxy → that service (the two hops no batch can share);
 * - `hold`: … → the service takes an unbatched hold from a third process first (the synchronous wallet call);
 * - `db`: … and runs the accept path's statements unbatched against PostgreSQL: entry read, pending insert, the hold
 *   as its own transaction, the finalize (update + outbox insert) as one (with --database-url);
 * - `broker`: client → proxy → a service that publishes each order to a quorum queue (persistent, confirmed) before
 *   it answers, and a consumer process that acks it: one AMQP hop, of the several an order makes (with --amqp-url).
 * For each: one client in flight (latency floor), one request at a time on a schedule (`--paced-rate`, so that every
 * process sleeps between requests, as at a low rate) and the closed model (CPU per request at saturation), with the
 * CPU seconds of every process it started and of their PostgreSQL backends, per request.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { cpuBetween, listeners, sample, type ProcGroup } from './procs.ts';
import { pct } from './stats.ts';

const { values: args } = parseArgs({
  options: {
    scenarios: { type: 'string', default: 'service,gateway,hold,db,broker' },
    duration: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '64' },
    'paced-rate': { type: 'string', default: '10' },
    'database-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/postgres' },
    'amqp-url': { type: 'string', default: 'amqp://guest:guest@127.0.0.1:5672' },
    'port-base': { type: 'string', default: '21000' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (args.help) {
  process.stdout
    .write(`pnpm bench:floor [options]: the order path's hops alone, no exchange behind them (docs/benchmarks.md)
  --scenarios LIST   service,gateway,hold,db,broker (default all)
  --duration S       seconds per phase (default 10)
  --concurrency N    closed model: requests in flight (default 64)
  --paced-rate N     paced phase: one request every 1/N s, so the processes sleep between requests (default 10; 0: skip)
  --database-url URL a PostgreSQL server; the bench creates and drops its own database there (db scenario)
  --amqp-url URL     a RabbitMQ server; the bench declares and deletes its own quorum queue there (broker scenario)
  --port-base N      ports N..N+2 for the gateway, order and wallet skeletons (default 21000)
`);
  process.exit(0);
}

const durationMs = Number(args.duration) * 1000;
const concurrency = Number(args.concurrency);
const pacedRate = Number(args['paced-rate']);
if (!(pacedRate >= 0)) {
  process.stderr.write(
    `--paced-rate must be a number of requests per second, 0 or more (got "${args['paced-rate']}")\n`,
  );
  process.exit(2);
}
const base = Number(args['port-base']);
const roles = fileURLToPath(new URL('./floor-roles.ts', import.meta.url));
const APP = 'floor';

interface Proc {
  name: string;
  child: ChildProcess;
}

async function start(name: string, port: number, upstream = '', databaseUrl = '-'): Promise<Proc> {
  const child = spawn(process.execPath, [roles, name, String(port), upstream, databaseUrl], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await Promise.race([
    once(child.stdout!, 'data'),
    once(child, 'exit').then(([code]) => {
      throw new Error(`${name} exited with ${code}`);
    }),
  ])) as [Buffer];
  if (!line.toString().includes('ready')) throw new Error(`${name}: ${line.toString()}`);
  return { name, child };
}

async function stop(procs: Proc[]): Promise<void> {
  await Promise.all(
    procs.map(async (p) => {
      p.child.kill('SIGTERM');
      if (p.child.exitCode === null) await once(p.child, 'exit');
    }),
  );
}

let seq = 0;
const body = () =>
  JSON.stringify({
    market: 'BTC-USD',
    side: seq % 2 ? 'buy' : 'sell',
    type: 'limit',
    price: String(60_000 + (seq % 40)),
    quantity: '0.01',
    timeInForce: 'GTC',
    clientOrderId: `f-${process.pid}-${seq++}`,
  });

interface Sent {
  latencies: number[];
  errors: number;
}

/** One order through `url`, its latency recorded when it was answered 201. */
async function send(url: string, client: number, out: Sent): Promise<void> {
  const t0 = performance.now();
  try {
    const r = await fetch(`${url}/api/v1/orders`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer floor',
        'x-forwarded-for': `10.0.0.${client % 250}`,
        'content-type': 'application/json',
      },
      body: body(),
    });
    await r.arrayBuffer();
    if (r.status === 201) out.latencies.push(performance.now() - t0);
    else out.errors++;
  } catch {
    out.errors++;
  }
}

async function closedLoop(url: string, inFlight: number, ms: number): Promise<Sent> {
  const out: Sent = { latencies: [], errors: 0 };
  const end = performance.now() + ms;
  await Promise.all(
    Array.from({ length: inFlight }, async (_, i) => {
      while (performance.now() < end) await send(url, i, out);
    }),
  );
  out.latencies.sort((a, b) => a - b);
  return out;
}

/** One request at a time on a fixed schedule: between requests every process goes back to sleep, as at a low rate. */
async function pacedLoop(url: string, perS: number, ms: number): Promise<Sent> {
  const out: Sent = { latencies: [], errors: 0 };
  const start = performance.now();
  for (let due = start; due < start + ms; due += 1000 / perS) {
    const wait = due - performance.now();
    if (wait > 0) await delay(wait);
    await send(url, 0, out);
  }
  out.latencies.sort((a, b) => a - b);
  return out;
}

async function backends(pool: pg.Pool | undefined): Promise<number[]> {
  if (!pool) return [];
  const { rows } = await pool.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()`,
    [APP],
  );
  return rows.map((r) => r.pid);
}

interface Row {
  scenario: string;
  phase: string;
  inFlight: number;
  perS: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  errors: number;
  cpuMsPerRequest: Record<string, number>;
  cpuMsPerRequestTotal: number;
}

async function measure(
  scenario: string,
  procs: Proc[],
  url: string,
  pool: pg.Pool | undefined,
  brokerPid: number | undefined,
): Promise<Row[]> {
  const rows: Row[] = [];
  const groups: ProcGroup[] = procs.map((p) => ({ name: p.name, pids: [p.child.pid!] }));
  const backendGroup: ProcGroup = { name: 'postgres', pids: [], postgres: true };
  if (pool) groups.push(backendGroup);
  if (brokerPid) groups.push({ name: 'rabbitmq', pids: [brokerPid], shared: true });
  await closedLoop(url, concurrency, 1500); // warm up: JIT, connections, the pools' backends
  const phases: Array<{ phase: string; inFlight: number; run: () => Promise<Sent> }> = [
    { phase: 'single', inFlight: 1, run: () => closedLoop(url, 1, durationMs) },
    ...(pacedRate > 0
      ? [{ phase: `paced ${pacedRate}/s`, inFlight: 1, run: () => pacedLoop(url, pacedRate, durationMs) }]
      : []),
    { phase: 'closed', inFlight: concurrency, run: () => closedLoop(url, concurrency, durationMs) },
  ];
  for (const { phase, inFlight, run } of phases) {
    backendGroup.pids = await backends(pool);
    const before = sample(groups);
    const t0 = performance.now();
    const { latencies, errors } = await run();
    const seconds = (performance.now() - t0) / 1000;
    // a backend a pool opened during the phase counts from 0 (cpuBetween)
    backendGroup.pids = [...new Set([...backendGroup.pids, ...(await backends(pool))])];
    const used = cpuBetween(groups, before, sample(groups));
    const cpu: Record<string, number> = {};
    for (const [k, v] of Object.entries(used)) cpu[k] = (v * 1000) / latencies.length;
    rows.push({
      scenario,
      phase,
      inFlight,
      perS: latencies.length / seconds,
      p50Ms: pct(latencies, 50),
      p90Ms: pct(latencies, 90),
      p99Ms: pct(latencies, 99),
      errors,
      cpuMsPerRequest: cpu,
      cpuMsPerRequestTotal: Object.values(cpu).reduce((a, b) => a + b, 0),
    });
  }
  return rows;
}

const scenarios = args.scenarios.split(',').map((s) => s.trim());
const results: Row[] = [];
let admin: pg.Pool | undefined;
let database: string | undefined;
const f = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : '-');

for (const scenario of scenarios) {
  const procs: Proc[] = [];
  let pool: pg.Pool | undefined;
  let dbUrl = '-';
  if (scenario === 'db') {
    admin ??= new pg.Pool({ connectionString: args['database-url'], max: 1 });
    database = `floor_${process.pid}`;
    await admin.query(`CREATE DATABASE ${database}`);
    const u = new URL(args['database-url']);
    u.pathname = `/${database}`;
    pool = new pg.Pool({ connectionString: u.toString(), max: 1 });
    u.searchParams.set('application_name', APP);
    dbUrl = u.toString();
  }
  try {
    const deep = scenario === 'hold' || scenario === 'db';
    let brokerPid: number | undefined;
    if (deep) procs.push(await start('wallet', base + 2, '', dbUrl));
    if (scenario === 'broker') {
      const spec = `${args['amqp-url']}#floor.${process.pid}`;
      brokerPid = listeners().get(Number(new URL(args['amqp-url']).port || 5672));
      procs.push(await start('engine', base + 2, spec));
      procs.push(await start('publisher', base + 1, spec));
    } else {
      procs.push(await start('order', base + 1, deep ? `http://127.0.0.1:${base + 2}` : '', dbUrl));
    }
    if (scenario !== 'service') procs.push(await start('gateway', base, `http://127.0.0.1:${base + 1}`));
    const url = `http://127.0.0.1:${scenario === 'service' ? base + 1 : base}`;
    process.stderr.write(`floor: ${scenario}…\n`);
    results.push(...(await measure(scenario, procs, url, pool, brokerPid)));
  } finally {
    await stop(procs);
    await pool?.end();
    if (database) await admin!.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    database = undefined;
  }
}
await admin?.end();

const cols = ['gateway', 'order', 'wallet', 'publisher', 'engine', 'postgres', 'rabbitmq'];
process.stdout.write(
  `| scenario | phase | in flight | requests/s | p50 ms | p90 ms | p99 ms | errors | CPU ms/request | ${cols.join(' ms | ')} ms |\n` +
    `| --- | --- | --- | --- | --- | --- | --- | --- | --- | ${cols.map(() => '---').join(' | ')} |\n`,
);
for (const r of results) {
  process.stdout.write(
    `| ${r.scenario} | ${r.phase} | ${r.inFlight} | ${f(r.perS, 0)} | ${f(r.p50Ms)} | ${f(r.p90Ms)} | ${f(r.p99Ms)} | ${r.errors} | ` +
      `${f(r.cpuMsPerRequestTotal)} | ${cols.map((c) => (c in r.cpuMsPerRequest ? f(r.cpuMsPerRequest[c]!) : '-')).join(' | ')} |\n`,
  );
}
process.stdout.write(JSON.stringify({ bench: 'floor', at: new Date().toISOString(), results }) + '\n');
