/**
 * Integration-test plumbing: a fresh database + vhost, the service in-process or as child processes (`node
 * src/main.ts`, killable with SIGKILL), a publisher for commands, and capture queues for what the service emits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import amqp, { type Channel, type ChannelModel, type ConfirmChannel } from 'amqplib';
import type { Envelope } from '@exchange/contracts';
import { ROUTES } from '@exchange/contracts/trading';
import { createTestDatabase, type TestDatabase } from '@exchange/db/testing';
import { createTestVhost, type TestVhost } from '@exchange/messaging/testing';
import { PACK_CONTENT_TYPE, declareExchanges, encodePack, envelopesOf, silentLogger } from '@exchange/messaging';
import { createTestIssuer, type TestIssuer } from '@exchange/auth-client/testing';
import { loadConfig } from '@exchange/config';
import { ConfigSchema, type Config } from '../config.ts';
import { runMigrations } from '../migrate.ts';
import { createRuntime, type Runtime } from '../runtime.ts';

export const SERVICE_DIR = fileURLToPath(new URL('../..', import.meta.url));
export const MGMT_URL = process.env.TEST_RABBITMQ_MANAGEMENT_URL ?? 'http://guest:guest@127.0.0.1:15672';

export interface Env {
  db: TestDatabase;
  vhost: TestVhost;
  drop(): Promise<void>;
}

export async function createEnv(prefix: string): Promise<Env> {
  const db = await createTestDatabase(prefix);
  const vhost = await createTestVhost(prefix);
  await runMigrations(db.pool);
  return {
    db,
    vhost,
    async drop() {
      await db.drop().catch(() => {});
      await vhost.drop().catch(() => {});
    },
  };
}

export function serviceEnv(env: Env, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: env.db.url,
    DATABASE_POOL_MAX: '5',
    AMQP_URL: env.vhost.url,
    INTERNAL_API_TOKEN: 'test-internal-token-0123456789',
    MARKETS: 'BTC-USD',
    LOG_LEVEL: 'warn',
    NODE_ENV: 'test',
    PAYOUT_DELAY_MS: '0',
    BOOK_SNAPSHOT_INTERVAL_MS: '100',
    ...extra,
  };
}

export function testConfig(env: Env, extra: Record<string, string> = {}): Config {
  return loadConfig('payment-processor', ConfigSchema, serviceEnv(env, extra));
}

/** The service's components in this process (no HTTP listener). */
export async function startInProcess(env: Env, extra: Record<string, string> = {}): Promise<Runtime> {
  const rt = createRuntime(testConfig(env, extra));
  rt.setLogger(silentLogger);
  await rt.messaging.start();
  await rt.engines.start();
  await rt.payouts.start();
  return rt;
}

export async function stopInProcess(rt: Runtime): Promise<void> {
  await rt.payouts.stop();
  await rt.engines.stop();
  await rt.messaging.close();
  await rt.pool.end();
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface ServiceProcess {
  child: ChildProcess;
  port: number;
  replicaId: string;
  output(): string;
  /** Resolves with the exit code/signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** `node src/main.ts` as a child process; resolves once /ready answers 200. */
export async function startProcess(
  env: Env,
  replicaId: string,
  extra: Record<string, string> = {},
): Promise<ServiceProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ['src/main.ts'], {
    cwd: SERVICE_DIR,
    env: {
      PATH: process.env.PATH ?? '',
      ...serviceEnv(env, { PORT: String(port), HOST: '127.0.0.1', REPLICA_ID: replicaId, ...extra }),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const proc: ServiceProcess = {
    child,
    port,
    replicaId,
    output: () => out,
    exited,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
  const until = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`service ${replicaId} exited early:\n${out}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/ready`);
      if (res.status === 200) return proc;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) {
      await proc.kill();
      throw new Error(`service ${replicaId} not ready after 30 s:\n${out}`);
    }
    await sleep(100);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
  everyMs = 100,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

export interface Captured {
  routingKey: string;
  message: Envelope;
}

/**
 * The broker side of a test: publishes commands (confirmed) and captures what the service emits — the wallet's
 * queues (`wallet.settlement`, `wallet.payouts`) and every event — in delivery order.
 */
export class Bus {
  private conn!: ChannelModel;
  private pub!: ConfirmChannel;
  private sub!: Channel;
  readonly wallet: Captured[] = [];
  readonly payouts: Captured[] = [];
  readonly events: Captured[] = [];

  static async open(url: string): Promise<Bus> {
    const bus = new Bus();
    bus.conn = await amqp.connect(url);
    bus.pub = await bus.conn.createConfirmChannel();
    bus.sub = await bus.conn.createChannel();
    const ch = bus.sub;
    await declareExchanges(ch);
    const capture = async (queue: string, exchange: string, key: string, into: Captured[]) => {
      await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
      await ch.bindQueue(queue, exchange, key);
      await ch.consume(queue, (msg) => {
        if (!msg) return;
        for (const message of envelopesOf(msg)) into.push({ routingKey: msg.fields.routingKey, message });
        ch.ack(msg);
      });
    };
    await capture(ROUTES.walletSettlementQueue, ROUTES.commandsExchange, ROUTES.walletSettlementQueue, bus.wallet);
    await capture(ROUTES.walletPayoutsQueue, ROUTES.commandsExchange, ROUTES.walletPayoutsQueue, bus.payouts);
    await capture('test.events', ROUTES.eventsExchange, '#', bus.events);
    return bus;
  }

  async publish(routingKey: string, messages: Envelope[]): Promise<void> {
    for (const m of messages) {
      this.pub.publish(ROUTES.commandsExchange, routingKey, Buffer.from(JSON.stringify(m)), {
        messageId: m.id,
        type: m.type,
        persistent: true,
        contentType: 'application/json',
        mandatory: true,
      });
    }
    await this.pub.waitForConfirms();
  }

  /** The messages as one pack (as the order service's outbox relay sends a batch): the consumer gets them at once. */
  async publishPack(routingKey: string, messages: Envelope[]): Promise<void> {
    this.pub.publish(
      ROUTES.commandsExchange,
      routingKey,
      encodePack(messages.map((message) => ({ headers: {}, message }))),
      { messageId: `pack:${messages[0]!.id}`, persistent: true, contentType: PACK_CONTENT_TYPE, mandatory: true },
    );
    await this.pub.waitForConfirms();
  }

  async close(): Promise<void> {
    await this.conn.close().catch(() => {});
  }
}

export interface JournalRow {
  seq: number;
  message_id: string;
  command: unknown;
  events: unknown;
  applied_by: string;
}

export async function journal(db: TestDatabase, market = 'BTC-USD'): Promise<JournalRow[]> {
  const { rows } = await db.pool.query<JournalRow & { seq: string }>(
    `SELECT seq, message_id, command, events, applied_by FROM payment.engine_journal WHERE market = $1 ORDER BY seq`,
    [market],
  );
  return rows.map((r) => ({ ...r, seq: Number(r.seq) }));
}

export async function lastSeq(db: TestDatabase, market = 'BTC-USD'): Promise<number> {
  const { rows } = await db.pool.query<{ last_seq: string }>(
    'SELECT last_seq FROM payment.engine_state WHERE market = $1',
    [market],
  );
  return Number(rows[0]?.last_seq ?? 0);
}

/**
 * What a stalled outbox looks like, for a failure message: its unsent rows (how many, their attempts, errors and
 * backoff), the relay's state (lock held, what its loop waits on and for how long, failures in a row), the sessions
 * of the database that hold an advisory lock (the relay's among them) and each broker connection's health. So a rare
 * stall can be told apart from a row waiting out its backoff, a lock held by a session that lingers, a publish whose
 * confirm never came, or a connection that did not come back.
 */
export async function outboxStall(db: TestDatabase, rt: Runtime | undefined): Promise<string> {
  const { rows } = await db.pool.query(
    `SELECT count(*)::int AS unsent, max(publish_attempts) AS max_attempts,
            round(extract(epoch FROM max(next_attempt_at) - now())::numeric, 1) AS next_attempt_in_s,
            array_agg(DISTINCT left(last_error, 160)) FILTER (WHERE last_error IS NOT NULL) AS errors
       FROM payment.outbox WHERE sent_at IS NULL`,
  );
  const { rows: lockHolders } = await db.pool.query(
    `SELECT a.pid, a.application_name AS app, a.state, left(a.query, 80) AS query,
            round(extract(epoch FROM now() - a.state_change)::numeric, 1) AS state_for_s
       FROM pg_locks l JOIN pg_stat_activity a USING (pid)
      WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database
                                                                    WHERE datname = current_database())`,
  );
  const m = rt?.messaging;
  return JSON.stringify({
    ...rows[0],
    lockHolders,
    relayIsLeader: m?.relay?.isLeader,
    relay: m?.relay?.activity,
    consume: m ? await m.connection.health() : undefined,
    publish: m ? await m.publishConnection.health() : undefined,
  });
}

export async function outboxMessages(
  db: TestDatabase,
): Promise<Array<{ routingKey: string; message: Envelope; sent: boolean }>> {
  const { rows } = await db.pool.query<{ routing_key: string; message: Envelope; sent_at: Date | null }>(
    'SELECT routing_key, message, sent_at FROM payment.outbox ORDER BY sequence',
  );
  return rows.map((r) => ({ routingKey: r.routing_key, message: r.message, sent: r.sent_at !== null }));
}

/**
 * The set-up every engine test file repeated: before the file, its own database and vhost (`createEnv(prefix)`) and a
 * Bus on the vhost, handed to `ready`; after it, `beforeTeardown`, the in-process service `runtime()` returns (when
 * one is still running) stopped, the bus closed, the database and vhost dropped.
 */
export function useEngineEnv(
  prefix: string,
  o: {
    ready: (env: Env, bus: Bus) => void;
    runtime?: () => Runtime | undefined;
    beforeTeardown?: () => void | Promise<void>;
  },
): void {
  let env: Env | undefined;
  let bus: Bus | undefined;
  beforeAll(async () => {
    env = await createEnv(prefix);
    bus = await Bus.open(env.vhost.url);
    o.ready(env, bus);
  });
  afterAll(async () => {
    await o.beforeTeardown?.();
    const rt = o.runtime?.();
    if (rt) await stopInProcess(rt);
    await bus?.close();
    await env?.drop();
  });
}

/**
 * useEngineEnv for the tests that run replicas as child processes with their admin API: a token issuer too (its
 * `jwksUrl` and `internalToken` for the replicas' AUTH_JWKS_URL and INTERNAL_API_TOKEN), handed to `ready` with the
 * rest. Returns the list the test adds its processes to; after the file each is killed (`beforeKill` first, e.g.
 * SIGCONT for a stopped one), then the issuer closed, then what useEngineEnv tears down.
 */
export function useReplicaEnv(
  prefix: string,
  o: { ready: (env: Env, bus: Bus, issuer: TestIssuer) => void; beforeKill?: (p: ServiceProcess) => void },
): ServiceProcess[] {
  const procs: ServiceProcess[] = [];
  let env: Env | undefined;
  let bus: Bus | undefined;
  let issuer: TestIssuer | undefined;
  useEngineEnv(prefix, {
    ready: (e, b) => {
      env = e;
      bus = b;
    },
    beforeTeardown: async () => {
      for (const p of procs) {
        o.beforeKill?.(p);
        await p.kill();
      }
      await issuer?.close();
    },
  });
  beforeAll(async () => {
    issuer = await createTestIssuer();
    o.ready(env!, bus!, issuer);
  });
  return procs;
}
