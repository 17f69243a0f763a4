/**
 * CPU time of the stack's processes, read from /proc/<pid>/stat (utime + stime), so the bench can say how many
 * milliseconds of CPU each order costs in each process. The processes are found from outside, the way an operator
 * would: the services and the gateway by the TCP port they listen on (`ss -ltnp`), RabbitMQ by its AMQP port, Redis
 * (the gateway's rate-limit counters) by its port, and
 * PostgreSQL's backends by `pg_stat_activity` of the stack's database plus the server's shared background writers.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type pg from 'pg';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux x86-64
export const BENCH_APP = 'bench';

export interface ProcGroup {
  /** Row label: gateway, auth, …, postgres (backends), postgres (shared), rabbitmq. */
  name: string;
  pids: number[];
  /** Other tenants of the machine use this process too (RabbitMQ node, PostgreSQL's background writers). */
  shared?: boolean;
  /** PostgreSQL backends of the stack's database. */
  postgres?: boolean;
}

/** CPU seconds (user + system) of a process, undefined when it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces and parentheses: fields start after the last ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** pid listening on each TCP port (needs the processes to be the caller's own, or root). */
export function listeners(): Map<number, number> {
  const out = new Map<number, number>();
  const text = execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' });
  for (const line of text.split('\n')) {
    const port = /:(\d+)\s/.exec(line.split(/\s+/).slice(3, 4).join(' ') + ' ')?.[1];
    const pid = /pid=(\d+)/.exec(line)?.[1];
    if (port && pid && !out.has(Number(port))) out.set(Number(port), Number(pid));
  }
  return out;
}

export async function discover(opts: {
  ports: Record<string, number>;
  amqpPort: number;
  redisPort?: number;
  pool: pg.Pool;
  database: string;
}): Promise<ProcGroup[]> {
  const l = listeners();
  const groups: ProcGroup[] = [];
  for (const [name, port] of Object.entries(opts.ports)) {
    const pid = l.get(port);
    if (pid) groups.push({ name, pids: [pid] });
    else process.stderr.write(`bench: no process listens on :${port} (${name}); its CPU is not counted\n`);
  }
  const { rows } = await opts.pool.query<{ pid: number; datname: string | null; backend_type: string; app: string }>(
    `SELECT pid, datname, backend_type, application_name AS app FROM pg_stat_activity`,
  );
  // One row per application_name (each service names its pool), so the profile says whose statements cost what.
  // The bench's own connections (its progress queries) are not the stack's cost.
  for (const r of rows) {
    if (r.datname === opts.database && r.app !== BENCH_APP) backendGroup(groups, r.app).pids.push(r.pid);
  }
  groups.push({
    name: 'postgres wal/bg writers',
    pids: rows
      .filter((r) => ['walwriter', 'checkpointer', 'background writer'].includes(r.backend_type))
      .map((r) => r.pid),
    shared: true,
  });
  const beam = l.get(opts.amqpPort);
  if (beam) groups.push({ name: 'rabbitmq', pids: [beam], shared: true });
  const redis = opts.redisPort ? l.get(opts.redisPort) : undefined;
  if (redis) groups.push({ name: 'redis', pids: [redis], shared: true });
  return groups;
}

function backendGroup(groups: ProcGroup[], app: string): ProcGroup {
  const name = `pg ${app || '(unnamed)'}`;
  let g = groups.find((x) => x.name === name);
  if (!g) {
    g = { name, pids: [], postgres: true };
    // before the shared writers, which come last
    const at = groups.findIndex((x) => x.shared);
    groups.splice(at < 0 ? groups.length : at, 0, g);
  }
  return g;
}

/** Refresh the database's backends (pools open connections under load) without losing the ones seen before. */
export async function refreshBackends(groups: ProcGroup[], pool: pg.Pool, database: string): Promise<void> {
  const { rows } = await pool.query<{ pid: number; app: string }>(
    `SELECT pid, application_name AS app FROM pg_stat_activity WHERE datname = $1 AND application_name <> $2`,
    [database, BENCH_APP],
  );
  const known = new Set(groups.flatMap((g) => g.pids));
  for (const r of rows) if (!known.has(r.pid)) backendGroup(groups, r.app).pids.push(r.pid);
}

export type CpuSample = Map<number, number>;

export function sample(groups: ProcGroup[]): CpuSample {
  const m: CpuSample = new Map();
  for (const g of groups) for (const pid of g.pids) m.set(pid, cpuSeconds(pid) ?? NaN);
  return m;
}

/**
 * CPU seconds each group used between two samples. A backend that started after `a` counts from 0; one that ended
 * before `b` counts up to the last sample that saw it (`b` may lack it).
 */
export function cpuBetween(groups: ProcGroup[], a: CpuSample, b: CpuSample): Record<string, number> {
  const out: Record<string, number> = {};
  for (const g of groups) {
    let s = 0;
    for (const pid of g.pids) {
      const end = b.get(pid);
      if (end === undefined || Number.isNaN(end)) continue;
      const start = a.get(pid);
      s += end - (start === undefined || Number.isNaN(start) ? 0 : start);
    }
    out[g.name] = s;
  }
  return out;
}

/**
 * The whole machine's CPU time by kind and its context switches since boot (`/proc/stat`). An order costs what the
 * wake-ups it causes cost on this kind of guest (docs/benchmarks.md, twenty-second and twenty-third rounds), so the
 * bench reports how many switches each order caused and how much of the machine's busy time the kernel took. Both
 * are machine-wide: the load generator and any other tenant are in them.
 */
export interface MachineSample {
  /** Ticks (USER_HZ) per kind: user (with nice), kernel (system, irq, softirq), idle (with iowait), steal. */
  user: number;
  kernel: number;
  idle: number;
  steal: number;
  contextSwitches: number;
}

export function machineSample(): MachineSample {
  const text = readFileSync('/proc/stat', 'utf8');
  const cpu = /^cpu\s+(.*)$/m.exec(text)?.[1]?.trim().split(/\s+/).map(Number) ?? [];
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = cpu;
  return {
    user: user + nice,
    kernel: system + irq + softirq,
    idle: idle + iowait,
    steal,
    contextSwitches: Number(/^ctxt\s+(\d+)$/m.exec(text)?.[1] ?? NaN),
  };
}

export interface MachineUse {
  /** Context switches on the whole machine per accepted order. */
  contextSwitchesPerOrder: number;
  /** Kernel time as a share of the machine's busy time (user + kernel), in per cent. */
  kernelPercent: number;
  /** Idle and stolen time as shares of all CPU time, in per cent. */
  idlePercent: number;
  stealPercent: number;
}

export function machineBetween(a: MachineSample, b: MachineSample, orders: number): MachineUse {
  const user = b.user - a.user;
  const kernel = b.kernel - a.kernel;
  const idle = b.idle - a.idle;
  const steal = b.steal - a.steal;
  const all = user + kernel + idle + steal;
  return {
    contextSwitchesPerOrder: orders ? (b.contextSwitches - a.contextSwitches) / orders : NaN,
    kernelPercent: user + kernel ? (100 * kernel) / (user + kernel) : NaN,
    idlePercent: all ? (100 * idle) / all : NaN,
    stealPercent: all ? (100 * steal) / all : NaN,
  };
}
