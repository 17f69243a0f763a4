/**
 * Host-mode settings in one place: where the stack's data lives, which ports it takes, the development secrets it
 * generates once, and the pid file `stop` reads. Every value can be overridden from the environment.
 */
import { execFileSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DB_SERVICES,
  dropRoles,
  provisionServiceRoles,
  serviceRoleName,
  urlForRole,
  type DbService,
  type RoleCredential,
} from '@exchange/db';
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
  /** Seed of each service's database role password (see databaseRoles). */
  DATABASE_ROLE_SEED: string;
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
    DATABASE_ROLE_SEED: randomBytes(24).toString('hex'),
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

/** The database roles host mode uses: `<database>_auth`, …, and `<database>_backup` (cluster-wide names). */
function hostRoles(
  databaseUrl: string,
  seed: string,
): { services: Record<DbService, RoleCredential>; backup: RoleCredential } {
  const db = decodeURIComponent(new URL(databaseUrl).pathname.slice(1));
  const cred = (who: DbService | 'backup'): RoleCredential => {
    const role = serviceRoleName(db, who);
    return { role, password: createHmac('sha256', seed).update(`db:${role}`).digest('hex') };
  };
  return {
    services: Object.fromEntries(DB_SERVICES.map((s) => [s, cred(s)])) as Record<DbService, RoleCredential>,
    backup: cred('backup'),
  };
}

/**
 * Per-service least privilege in host mode too: DATABASE_URL (the local superuser by default) creates or updates
 * each service's own role and hands it its schema (an existing database from before is converted in place); each
 * service then connects as its role, and auth's admin backups dump as the read-only backup role.
 */
export async function databaseRoles(
  databaseUrl: string,
  seed: string,
): Promise<{ serviceDatabaseUrls: Record<DbService, string>; backupDatabaseUrl: string }> {
  const roles = hostRoles(databaseUrl, seed);
  await provisionServiceRoles({ adminUrl: databaseUrl, services: roles.services, backup: roles.backup });
  return {
    serviceDatabaseUrls: Object.fromEntries(
      DB_SERVICES.map((s) => [s, urlForRole(databaseUrl, roles.services[s])]),
    ) as Record<DbService, string>,
    backupDatabaseUrl: urlForRole(databaseUrl, roles.backup),
  };
}

/** `reset`: the roles go with the database (dropped after it, when they own nothing any more). */
export async function dropDatabaseRoles(databaseUrl: string): Promise<void> {
  const admin = new URL(databaseUrl);
  admin.pathname = '/postgres';
  const roles = hostRoles(databaseUrl, 'unused');
  await dropRoles(admin.toString(), [...Object.values(roles.services).map((r) => r.role), roles.backup.role]);
}

/**
 * The age key pair admin backups are encrypted to: the private key in `file` (0600, created with age-keygen on first
 * use), the public key returned for BACKUP_AGE_RECIPIENTS. Undefined when age is not installed: the backup route
 * then refuses (503 BACKUP_ENCRYPTION_NOT_CONFIGURED) rather than writing a plaintext dump.
 */
export function backupAgeRecipient(file: string): string | undefined {
  let identity: string;
  if (existsSync(file)) identity = readFileSync(file, 'utf8');
  else {
    try {
      identity = execFileSync('age-keygen', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return undefined;
    }
    writeFileSync(file, identity, { mode: 0o600 });
  }
  return /public key: (age1\S+)/.exec(identity)?.[1];
}
