/**
 * Host-mode settings in one place: where the stack's data lives, which ports it takes, the development secrets it
 * generates once, and the pid file `stop` reads. Every value can be overridden from the environment.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_PORTS, ROOT, type ServiceName } from './stack.ts';

export interface HostSettings {
  stateDir: string;
  databaseUrl: string;
  amqpUrl: string;
  /** The vhost named in amqpUrl. */
  vhost: string;
  managementUrl: string;
  redisUrl: string;
  ports: Record<ServiceName, number>;
  /** The notification service and MailDev (web UI, SMTP): defaults 3005, 1080, 1025; from a base: base+5..7. */
  mailPorts: { notification: number; maildevWeb: number; maildevSmtp: number };
  /** Smallest free disk space preflight accepts, in MB. */
  minFreeDiskMb: number;
}

export function hostSettings(env: NodeJS.ProcessEnv = process.env): HostSettings {
  const amqpUrl = env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672/exchange';
  const base = env.EXCHANGE_PORT_BASE ? Number(env.EXCHANGE_PORT_BASE) : undefined;
  if (base !== undefined && !(Number.isInteger(base) && base > 0 && base < 65_530)) {
    throw new Error(`EXCHANGE_PORT_BASE must be a port number (got "${env.EXCHANGE_PORT_BASE}")`);
  }
  return {
    stateDir: env.EXCHANGE_STATE_DIR ?? join(ROOT, '.stack'),
    databaseUrl: env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/exchange',
    amqpUrl,
    vhost: decodeURIComponent(new URL(amqpUrl).pathname.slice(1) || '/'),
    managementUrl: env.RABBITMQ_MANAGEMENT_URL ?? 'http://guest:guest@127.0.0.1:15672',
    redisUrl: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    // The gateway takes the base, the services the next four (the defaults: 8000 and 3001-3004).
    ports:
      base === undefined
        ? { ...DEFAULT_PORTS }
        : { gateway: base, auth: base + 1, wallet: base + 2, order: base + 3, 'payment-processor': base + 4 },
    mailPorts:
      base === undefined
        ? { notification: 3005, maildevWeb: 1080, maildevSmtp: 1025 }
        : { notification: base + 5, maildevWeb: base + 6, maildevSmtp: base + 7 },
    minFreeDiskMb: Number(env.EXCHANGE_MIN_FREE_DISK_MB ?? 1024),
  };
}

export interface Secrets {
  INTERNAL_API_TOKEN: string;
  API_KEY_ENCRYPTION_KEY: string;
  SIGNING_KEY_ENCRYPTION_KEY: string;
  ADMIN_EMAIL: string;
  ADMIN_PASSWORD: string;
  DEMO_PASSWORD: string;
}

/** Development secrets, generated on first start and kept (so a second start finds its data readable). */
export function loadSecrets(stateDir: string): Secrets {
  mkdirSync(stateDir, { recursive: true });
  const file = join(stateDir, 'secrets.json');
  const saved = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Partial<Secrets>) : {};
  const secrets: Secrets = {
    INTERNAL_API_TOKEN: randomBytes(24).toString('hex'),
    API_KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    SIGNING_KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    ADMIN_EMAIL: 'admin@exchange.local',
    ADMIN_PASSWORD: `Xch-${randomBytes(12).toString('base64url')}-9`,
    // Files written by older versions lack newer keys; those are added, nothing is replaced.
    DEMO_PASSWORD: `Demo-${randomBytes(12).toString('base64url')}-7`,
    ...saved,
  };
  writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}

/** What a running stack records for `stop`: its own pid and every child's. */
export interface PidFile {
  pid: number;
  startedAt: string;
  children: Array<{ name: string; pid: number }>;
}

const pidPath = (stateDir: string) => join(stateDir, 'stack.pid.json');

export function writePidFile(stateDir: string, data: PidFile): void {
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(pidPath(stateDir), JSON.stringify(data, null, 2));
}

export function readPidFile(stateDir: string): PidFile | undefined {
  try {
    return JSON.parse(readFileSync(pidPath(stateDir), 'utf8')) as PidFile;
  } catch {
    return undefined;
  }
}

export function removePidFile(stateDir: string): void {
  rmSync(pidPath(stateDir), { force: true });
}

/** A URL with its password replaced, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}
