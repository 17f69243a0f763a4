/**
 * Host-mode stack: the four services and the local gateway as child processes against the local PostgreSQL and
 * RabbitMQ. Used by `pnpm start` (src/main.ts) and by the cross-service tests, which need real processes they can
 * kill -9 and restart.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export type ServiceName = 'auth' | 'wallet' | 'payment-processor' | 'order' | 'gateway';

export interface StackOptions {
  /** The database; also each service's connection unless `serviceDatabaseUrls` names its own role's URL. */
  databaseUrl: string;
  /** Each service's own database role (per-service least privilege, @exchange/db provisionServiceRoles). */
  serviceDatabaseUrls?: Partial<Record<ServiceName, string>>;
  /** The read-only role auth's admin backups dump the whole database with (BACKUP_DATABASE_URL). */
  backupDatabaseUrl?: string;
  amqpUrl: string;
  redisUrl?: string;
  managementUrl?: string;
  /** Base port; services get base+1..base+4, the gateway `gatewayPort`. */
  ports?: Partial<Record<ServiceName, number>>;
  /** Seed of every service's own internal credential (see internalTokenOf). */
  internalToken: string;
  /** Extra env for every process, and per service. */
  env?: Record<string, string>;
  serviceEnv?: Partial<Record<ServiceName, Record<string, string>>>;
  /** Where a process's output goes: a line callback (default: prefixed to stdout). */
  onLine?: (label: string, line: string, stream: 'stdout' | 'stderr') => void;
  /** Start-up progress: each process as it starts and once it is ready. */
  onProgress?: (label: string, phase: 'starting' | 'ready', elapsedMs: number) => void;
  /** Each process right after it was spawned (host mode records the pids for `stop`). */
  onSpawn?: (proc: RunningProcess) => void;
  /**
   * Children in process groups of their own, so a terminal's Ctrl-C reaches only the runner, which then stops them in
   * order (the demo first, so it can withdraw its quotes while the gateway is still up). Host mode sets it.
   */
  detached?: boolean;
  /** Processes started after the services, stopped before them (host mode: the demo market maker, …). */
  auxiliary?: AuxiliaryProcess[];
  /** Which services to start (default all, in dependency order). */
  services?: ServiceName[];
  /** Extra replicas, e.g. { 'payment-processor': 2 } for takeover tests. */
  replicas?: Partial<Record<ServiceName, number>>;
  /** How long a process may take to answer /ready (default 60 s; a loaded test machine may need more). */
  readyTimeoutMs?: number;
  stateDir: string;
}

/**
 * A process that is not one of the services: a node script of this repository (or any command), started after the
 * services with the stack's env plus its own, its output prefixed like theirs, stopped first.
 */
export interface AuxiliaryProcess {
  name: string;
  /** A script run with this Node (path relative to the repository), or `command` for anything else. */
  script?: string;
  command?: string[];
  cwd?: string;
  env?: Record<string, string>;
  /** Port it listens on (checked free before start); with `readyPath`, start-up waits until it answers 200. */
  port?: number;
  readyPath?: string;
  /** One line for the start-up summary, e.g. `Web app:  http://localhost:8080`. */
  summary?: string;
}

/** A caller's own internal credential in host mode, derived from the stack's seed (so every start agrees). */
export function internalTokenFor(seed: string, caller: string): string {
  return createHmac('sha256', seed).update(`internal:${caller}`).digest('hex');
}

export const DEFAULT_PORTS: Record<ServiceName, number> = {
  auth: 3001,
  wallet: 3002,
  order: 3003,
  'payment-processor': 3004,
  gateway: 8000,
};

const ORDER: ServiceName[] = ['auth', 'wallet', 'payment-processor', 'order', 'gateway'];

export interface RunningProcess {
  /** A service name, or an auxiliary process's name. */
  service: ServiceName | (string & {});
  replica: number;
  port: number;
  child: ChildProcess;
  exited: Promise<number | null>;
}

export class Stack {
  readonly opts: StackOptions;
  readonly ports: Record<ServiceName, number>;
  readonly processes: RunningProcess[] = [];
  private stopping = false;

  constructor(opts: StackOptions) {
    this.opts = opts;
    this.ports = { ...DEFAULT_PORTS, ...opts.ports };
  }

  /**
   * Each service's own internal credential, derived from `internalToken` (so one secret seeds them all in host mode
   * and tests), and `kyc` for the KYC process that sets tiers on the wallet.
   */
  internalTokenOf(caller: ServiceName | 'kyc' | 'notification'): string {
    return internalTokenFor(this.opts.internalToken, caller);
  }

  /** Who may call each service's /internal routes (INTERNAL_CALLERS). */
  private internalCallers(service: ServiceName): string | undefined {
    const callers: Partial<Record<ServiceName, Array<ServiceName | 'kyc' | 'notification'>>> = {
      auth: ['wallet', 'order', 'payment-processor', 'notification'],
      wallet: ['order', 'kyc'],
      order: ['wallet'],
      'payment-processor': ['wallet'],
    };
    return callers[service]?.map((c) => `${c}:${this.internalTokenOf(c)}`).join(',');
  }

  url(service: ServiceName): string {
    return `http://127.0.0.1:${this.ports[service]}`;
  }

  envFor(service: ServiceName, port: number): Record<string, string> {
    const o = this.opts;
    return {
      ...(process.env as Record<string, string>),
      NODE_ENV: process.env.NODE_ENV === 'production' ? 'production' : 'development',
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: o.serviceDatabaseUrls?.[service] ?? o.databaseUrl,
      ...(service === 'auth' && o.backupDatabaseUrl ? { BACKUP_DATABASE_URL: o.backupDatabaseUrl } : {}),
      AMQP_URL: o.amqpUrl,
      REDIS_URL: o.redisUrl ?? 'redis://127.0.0.1:6379',
      RABBITMQ_MANAGEMENT_URL: o.managementUrl ?? 'http://guest:guest@127.0.0.1:15672',
      INTERNAL_API_TOKEN: this.internalTokenOf(service),
      ...(this.internalCallers(service) ? { INTERNAL_CALLERS: this.internalCallers(service)! } : {}),
      AUTH_JWKS_URL: `${this.url('auth')}/.well-known/jwks.json`,
      AUTH_URL: this.url('auth'),
      WALLET_URL: this.url('wallet'),
      ORDER_URL: this.url('order'),
      PAYMENT_PROCESSOR_URL: this.url('payment-processor'),
      OTEL_SERVICE_NAME: service,
      KONG_CONFIG: join(ROOT, 'kong/kong.yml'),
      ...o.env,
      ...o.serviceEnv?.[service],
    };
  }

  /** Start one process of a service and wait until its /ready (gateway: /health) answers 200. */
  async startProcess(
    service: ServiceName,
    replica = 0,
    port = this.ports[service] + (replica ? 100 * replica : 0),
  ): Promise<RunningProcess> {
    const cwd = service === 'gateway' ? join(ROOT, 'tools/local-gateway') : join(ROOT, 'services', service);
    // The gateway is traced too, as Kong's opentelemetry plugin traces Kong: a server span per request and the
    // upstream call as its child, so one order is one trace from the edge on.
    const instrument =
      service === 'gateway' ? join(ROOT, 'packages/platform/src/instrument.ts') : '@exchange/platform/instrument';
    const args = ['--import', instrument, 'src/main.ts'];
    return this.spawnProcess({
      label: replica ? `${service}#${replica}` : service,
      service,
      replica,
      port,
      command: [process.execPath, '--disable-warning=ExperimentalWarning', ...args],
      cwd,
      env: this.envFor(service, port),
      readyUrl: `http://127.0.0.1:${port}${service === 'gateway' ? '/health' : '/ready'}`,
    });
  }

  /** Start an auxiliary process (see AuxiliaryProcess); waits for its readyPath when it has one. */
  startAuxiliary(aux: AuxiliaryProcess): Promise<RunningProcess> {
    const command = aux.command ?? [
      process.execPath,
      '--disable-warning=ExperimentalWarning',
      join(ROOT, aux.script ?? ''),
    ];
    return this.spawnProcess({
      label: aux.name,
      service: aux.name,
      replica: 0,
      port: aux.port ?? 0,
      command,
      cwd: aux.cwd ? resolve(ROOT, aux.cwd) : ROOT,
      env: { ...this.envFor('gateway', aux.port ?? 0), OTEL_SERVICE_NAME: aux.name, ...aux.env },
      ...(aux.port && aux.readyPath ? { readyUrl: `http://127.0.0.1:${aux.port}${aux.readyPath}` } : {}),
    });
  }

  private async spawnProcess(p: {
    label: string;
    service: string;
    replica: number;
    port: number;
    command: string[];
    cwd: string;
    env: Record<string, string>;
    readyUrl?: string;
  }): Promise<RunningProcess> {
    // Ctrl-C during start-up: stop() has run, so nothing new may be spawned behind its back.
    if (this.stopping) throw new Error(`not starting ${p.label}: the stack is stopping`);
    const started = Date.now();
    this.opts.onProgress?.(p.label, 'starting', 0);
    const child = spawn(p.command[0]!, p.command.slice(1), {
      cwd: p.cwd,
      env: p.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: this.opts.detached ?? false,
    });
    const onLine = this.opts.onLine ?? ((s: string, l: string) => process.stdout.write(`[${s}] ${l}\n`));
    for (const [name, stream] of [
      ['stdout', child.stdout!],
      ['stderr', child.stderr!],
    ] as const) {
      createInterface({ input: stream }).on('line', (line) => onLine(p.label, line, name));
    }
    // A command that cannot be spawned (ENOENT) emits 'error' and no 'exit'.
    const exited = new Promise<number | null>((done) => {
      child.once('exit', (code, signal) => {
        // a process that dies says so in the log it leaves (a stack's log is often all that is left of a failure)
        onLine(p.label, `process exited (${signal ? `signal ${signal}` : `code ${code}`})`, 'stderr');
        done(code);
      });
      child.once('error', (err) => {
        onLine(p.label, `cannot start ${p.command[0]}: ${err.message}`, 'stderr');
        done(-1);
      });
    });
    const proc: RunningProcess = { service: p.service, replica: p.replica, port: p.port, child, exited };
    this.processes.push(proc);
    this.opts.onSpawn?.(proc);
    if (p.readyUrl) await waitFor(p.readyUrl, this.opts.readyTimeoutMs ?? 60_000, exited, p.label);
    this.opts.onProgress?.(p.label, 'ready', Date.now() - started);
    return proc;
  }

  async start(): Promise<void> {
    const wanted = this.opts.services ?? ORDER;
    for (const s of ORDER.filter((x) => wanted.includes(x))) {
      const n = this.opts.replicas?.[s] ?? 1;
      for (let r = 0; r < n; r++) await this.startProcess(s, r);
    }
    for (const aux of this.opts.auxiliary ?? []) await this.startAuxiliary(aux);
  }

  /** kill -9 one process (crash tests). */
  async kill(proc: RunningProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    proc.child.kill(signal);
    await proc.exited;
    this.processes.splice(this.processes.indexOf(proc), 1);
  }

  /** Graceful stop in reverse dependency order: SIGTERM, then SIGKILL after `timeoutMs`. */
  async stop(timeoutMs = 15_000): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const p of [...this.processes].reverse()) {
      if (p.child.exitCode !== null || p.child.signalCode !== null) continue;
      p.child.kill('SIGTERM');
      const t = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
      await p.exited;
      clearTimeout(t);
    }
    this.processes.length = 0;
  }
}

export async function waitFor(url: string, timeoutMs: number, exited?: Promise<unknown>, label = url): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let dead = false;
  void exited?.then(() => (dead = true));
  let last = '';
  while (Date.now() < deadline) {
    if (dead) throw new Error(`${label} exited before it became ready`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (r.ok) return;
      last = `${r.status} ${await r.text()}`;
    } catch (e) {
      last = String((e as Error).message);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${label} not ready after ${timeoutMs} ms: ${last}`);
}

/** Create a RabbitMQ vhost (and grant the user full permissions) through the management API; idempotent. */
export async function ensureVhost(managementUrl: string, vhost: string, user = 'guest'): Promise<void> {
  const u = new URL(managementUrl);
  const auth =
    'Basic ' + Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
  const base = `${u.protocol}//${u.host}`;
  const v = encodeURIComponent(vhost);
  const put = async (path: string, body: unknown) => {
    const r = await fetch(base + path, {
      method: 'PUT',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!r.ok && r.status !== 204) throw new Error(`RabbitMQ management ${path}: ${r.status} ${await r.text()}`);
  };
  await put(`/api/vhosts/${v}`, {});
  await put(`/api/permissions/${v}/${encodeURIComponent(user)}`, { configure: '.*', write: '.*', read: '.*' });
  // Topology upgrade: exchange.events gained an alternate exchange (events.unrouted). An exchange declared before
  // that cannot be redeclared with the new argument, so drop the old one; every service re-binds its queues at start.
  const ex = await fetch(`${base}/api/exchanges/${v}/exchange.events`, { headers: { authorization: auth } });
  if (ex.ok) {
    const body = (await ex.json()) as { arguments?: Record<string, unknown> };
    if (!body.arguments?.['alternate-exchange']) {
      await fetch(`${base}/api/exchanges/${v}/exchange.events`, { method: 'DELETE', headers: { authorization: auth } });
    }
  }
}
