/**
 * Host-mode stack: the four services and the local gateway as child processes against the local PostgreSQL and
 * RabbitMQ. Used by `pnpm start` (src/main.ts) and by the cross-service tests, which need real processes they can
 * kill -9 and restart.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export type ServiceName = 'auth' | 'wallet' | 'payment-processor' | 'order' | 'gateway';

export interface StackOptions {
  databaseUrl: string;
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
  /** Where a service's output goes: a line callback (default: prefixed to stdout). */
  onLine?: (service: string, line: string) => void;
  /** Which services to start (default all, in dependency order). */
  services?: ServiceName[];
  /** Extra replicas, e.g. { 'payment-processor': 2 } for takeover tests. */
  replicas?: Partial<Record<ServiceName, number>>;
  stateDir: string;
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
  service: ServiceName;
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
  internalTokenOf(caller: ServiceName | 'kyc'): string {
    return createHmac('sha256', this.opts.internalToken).update(`internal:${caller}`).digest('hex');
  }

  /** Who may call each service's /internal routes (INTERNAL_CALLERS). */
  private internalCallers(service: ServiceName): string | undefined {
    const callers: Partial<Record<ServiceName, Array<ServiceName | 'kyc'>>> = {
      auth: ['wallet', 'order', 'payment-processor'],
      wallet: ['order', 'kyc'],
      order: ['wallet'],
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
      DATABASE_URL: o.databaseUrl,
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
    const args = service === 'gateway' ? ['src/main.ts'] : ['--import', '@exchange/platform/instrument', 'src/main.ts'];
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', ...args], {
      cwd,
      env: this.envFor(service, port),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const label = replica ? `${service}#${replica}` : service;
    const onLine = this.opts.onLine ?? ((s: string, l: string) => process.stdout.write(`[${s}] ${l}\n`));
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => onLine(label, line));
    }
    const exited = once(child, 'exit').then(([code]) => code as number | null);
    const proc: RunningProcess = { service, replica, port, child, exited };
    this.processes.push(proc);
    const path = service === 'gateway' ? '/health' : '/ready';
    await waitFor(`http://127.0.0.1:${port}${path}`, 60_000, exited, label);
    return proc;
  }

  async start(): Promise<void> {
    const wanted = this.opts.services ?? ORDER;
    for (const s of ORDER.filter((x) => wanted.includes(x))) {
      const n = this.opts.replicas?.[s] ?? 1;
      for (let r = 0; r < n; r++) await this.startProcess(s, r);
    }
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
