/**
 * Preflight: before host mode touches anything, check what it needs and answer each failure with one sentence that
 * says what is wrong and how to fix it (no stack traces). Checks run in parallel and each gives up after a few
 * seconds, so a machine with nothing running answers quickly.
 */
import { createServer, Socket } from 'node:net';
import { statfs } from 'node:fs/promises';
import pg from 'pg';
import { Redis } from 'ioredis';
import { redactUrl, type HostSettings } from './host.ts';
import { ROOT } from './stack.ts';

export const REQUIRED_NODE_MAJOR = 24;
const TIMEOUT_MS = 3_000;

export interface CheckResult {
  name: string;
  ok: boolean;
  /** What was found (ok) or the one-sentence problem and its fix (failed). */
  message: string;
}

export interface PreflightInput {
  settings: HostSettings;
  /** Every port the stack will listen on, with what takes it. */
  ports: Array<{ name: string; port: number }>;
  nodeVersion?: string;
}

export async function preflight(input: PreflightInput): Promise<CheckResult[]> {
  const { settings } = input;
  const [node, postgres, rabbit, redis, disk, ...ports] = await Promise.all([
    checkNode(input.nodeVersion ?? process.versions.node),
    checkPostgres(settings.databaseUrl),
    checkRabbit(settings.amqpUrl, settings.managementUrl),
    checkRedis(settings.redisUrl),
    checkDisk(settings.minFreeDiskMb),
    ...input.ports.map((p) => checkPort(p.name, p.port)),
  ]);
  return [node!, postgres!, ...rabbit!, redis!, ...ports, disk!] as CheckResult[];
}

export function checkNode(version: string): CheckResult {
  const major = Number(version.split('.')[0]);
  return major >= REQUIRED_NODE_MAJOR
    ? { name: 'node', ok: true, message: `Node ${version}` }
    : {
        name: 'node',
        ok: false,
        message: `Node ${REQUIRED_NODE_MAJOR} or newer is needed and this is Node ${version}: start with ./exchange start, which fetches Node ${REQUIRED_NODE_MAJOR} into .tools/, or install Node ${REQUIRED_NODE_MAJOR}.`,
      };
}

export async function checkPostgres(databaseUrl: string): Promise<CheckResult> {
  const admin = new URL(databaseUrl);
  admin.pathname = '/postgres';
  const where = `${admin.hostname}:${admin.port || 5432}`;
  const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: TIMEOUT_MS });
  client.on('error', () => {}); // a connection dropped after the check must not crash the runner
  try {
    await client.connect();
    const { rows } = await client.query<{ server_version: string }>('SHOW server_version');
    return {
      name: 'postgres',
      ok: true,
      message: `PostgreSQL ${rows[0]?.server_version ?? ''} at ${redactUrl(databaseUrl)}`,
    };
  } catch (err) {
    const e = err as { code?: string; message: string };
    const fix = 'or set DATABASE_URL to a PostgreSQL that user may create databases on.';
    let message: string;
    if (e.code === 'ECONNREFUSED' || e.code === 'EHOSTUNREACH' || e.code === 'ENOTFOUND') {
      message = `PostgreSQL is not running at ${where} (${e.code}): start it (\`sudo systemctl start postgresql\`, or \`pg_ctlcluster <version> main start\`), ${fix}`;
    } else if (e.code === '28P01' || e.code === '28000') {
      message = `PostgreSQL at ${where} refused user "${decodeURIComponent(admin.username) || 'postgres'}" (${e.message}): allow it in pg_hba.conf (trust or a password in DATABASE_URL), ${fix}`;
    } else if (/timeout/i.test(e.message)) {
      message = `PostgreSQL at ${where} did not answer within ${TIMEOUT_MS / 1000} s: check that it is up and reachable, ${fix}`;
    } else {
      message = `PostgreSQL at ${where} failed: ${e.message} — check the server and DATABASE_URL (${redactUrl(databaseUrl)}).`;
    }
    return { name: 'postgres', ok: false, message };
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function checkRabbit(amqpUrl: string, managementUrl: string): Promise<CheckResult[]> {
  const amqp = new URL(amqpUrl);
  const host = amqp.hostname;
  const port = Number(amqp.port || 5672);
  const reachable = await tcpProbe(host, port);
  const broker: CheckResult = reachable.ok
    ? { name: 'rabbitmq', ok: true, message: `RabbitMQ at ${host}:${port}` }
    : {
        name: 'rabbitmq',
        ok: false,
        message: `RabbitMQ is not running at ${host}:${port} (${reachable.reason}): start it (\`sudo systemctl start rabbitmq-server\`, or \`rabbitmq-server -detached\`) with its management plugin (\`sudo rabbitmq-plugins enable rabbitmq_management\`), or set AMQP_URL.`,
      };
  if (!reachable.ok) return [broker]; // one answer for one problem: the management check would only repeat it
  const m = new URL(managementUrl);
  const base = `${m.protocol}//${m.host}`;
  const auth =
    'Basic ' + Buffer.from(`${decodeURIComponent(m.username)}:${decodeURIComponent(m.password)}`).toString('base64');
  let management: CheckResult;
  try {
    const r = await fetch(`${base}/api/overview`, {
      headers: { authorization: auth },
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    if (r.ok) {
      const body = (await r.json()) as { rabbitmq_version?: string };
      management = {
        name: 'rabbitmq-management',
        ok: true,
        message: `RabbitMQ ${body.rabbitmq_version ?? ''} management API at ${base}`,
      };
    } else if (r.status === 401 || r.status === 403) {
      management = {
        name: 'rabbitmq-management',
        ok: false,
        message: `RabbitMQ's management API at ${base} refused user "${decodeURIComponent(m.username)}" (HTTP ${r.status}): put a user with the administrator tag in RABBITMQ_MANAGEMENT_URL (\`rabbitmqctl set_user_tags <user> administrator\`).`,
      };
    } else {
      management = {
        name: 'rabbitmq-management',
        ok: false,
        message: `RabbitMQ's management API at ${base} answered HTTP ${r.status}: check RABBITMQ_MANAGEMENT_URL points at the management plugin (port 15672 by default).`,
      };
    }
  } catch (err) {
    const cause = ((err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name) || 'no answer';
    management = {
      name: 'rabbitmq-management',
      ok: false,
      message: `RabbitMQ is running but its management plugin does not answer at ${base} (${cause}): enable it with \`sudo rabbitmq-plugins enable rabbitmq_management\`, or set RABBITMQ_MANAGEMENT_URL.`,
    };
  }
  return [broker, management];
}

export async function checkRedis(redisUrl: string): Promise<CheckResult> {
  const u = new URL(redisUrl);
  const where = `${u.hostname}:${u.port || 6379}`;
  const redis = new Redis(redisUrl, {
    lazyConnect: true,
    connectTimeout: TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // ioredis rejects connect() with "Connection is closed."; the 'error' event has the cause (ECONNREFUSED, …).
  let cause: { code?: string; message: string } | undefined;
  redis.on('error', (err: NodeJS.ErrnoException) => (cause ??= err));
  try {
    await redis.connect();
    await redis.ping();
    return { name: 'redis', ok: true, message: `Redis at ${where}` };
  } catch (err) {
    const e = cause ?? (err as { code?: string; message: string });
    const message = /NOAUTH|WRONGPASS/.test(e.message)
      ? `Redis at ${where} needs a password (${e.message}): put it in REDIS_URL (redis://:password@host:port).`
      : `Redis is not running at ${where} (${e.code ?? e.message}): start it (\`sudo systemctl start redis-server\`, or \`redis-server --daemonize yes\`), or set REDIS_URL.`;
    return { name: 'redis', ok: false, message };
  } finally {
    redis.disconnect();
  }
}

export function checkPort(name: string, port: number): Promise<CheckResult> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      resolve({
        name: `port ${port}`,
        ok: false,
        message:
          err.code === 'EADDRINUSE'
            ? `Port ${port} (${name}) is already in use: stop what holds it (\`./exchange stop\` if it is an earlier stack; \`ss -ltnp 'sport = :${port}'\` shows the process), or move the stack with EXCHANGE_PORT_BASE.`
            : `Port ${port} (${name}) cannot be opened (${err.code}): pick other ports with EXCHANGE_PORT_BASE.`,
      });
    });
    server.listen(port, '127.0.0.1', () =>
      server.close(() => resolve({ name: `port ${port}`, ok: true, message: `port ${port} free (${name})` })),
    );
  });
}

export async function checkDisk(minFreeMb: number, path = ROOT): Promise<CheckResult> {
  const s = await statfs(path);
  const freeMb = Math.floor((s.bavail * s.bsize) / 2 ** 20);
  return freeMb >= minFreeMb
    ? { name: 'disk', ok: true, message: `${formatMb(freeMb)} free on the disk of ${path}` }
    : {
        name: 'disk',
        ok: false,
        message: `Only ${formatMb(freeMb)} free on the disk of ${path} and the stack needs ${formatMb(minFreeMb)} (database, engine journals, backups): free some space.`,
      };
}

function formatMb(mb: number): string {
  return mb >= 1024 ? `${(mb / 1024).toFixed(1)} GB` : `${mb} MB`;
}

function tcpProbe(host: string, port: number): Promise<{ ok: true } | { ok: false; reason: string }> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (r: { ok: true } | { ok: false; reason: string }) => {
      socket.destroy();
      resolve(r);
    };
    socket.setTimeout(TIMEOUT_MS, () => done({ ok: false, reason: `no answer within ${TIMEOUT_MS / 1000} s` }));
    socket.once('error', (err: NodeJS.ErrnoException) => done({ ok: false, reason: err.code ?? err.message }));
    socket.connect(port, host, () => done({ ok: true }));
  });
}
