import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createPool } from './index.ts';
import {
  DB_SERVICES,
  dropRoles,
  provisionServiceRoles,
  serviceRoleName,
  urlForRole,
  type DbService,
  type RoleCredential,
} from './roles.ts';

const ADMIN_URL = process.env.TEST_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  /** The database as the superuser (test set-up, assertions, host-mode stacks without roles). */
  url: string;
  name: string;
  pool: pg.Pool;
  /** With `serviceRoles`: each service's own role's URL (`<name>_auth`, …), and the read-only backup role's. */
  serviceUrls?: Record<DbService, string>;
  backupUrl?: string;
  drop(): Promise<void>;
}

/**
 * A fresh, empty database for one test file, so files run in parallel and re-run cleanly.
 * `drop()` closes the pool and removes the database (terminating stray connections, e.g. of killed children).
 */
export async function createTestDatabase(
  prefix = 'test',
  opts: { serviceRoles?: boolean } = {},
): Promise<TestDatabase> {
  const name = `${prefix.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  // Roles are cluster-wide: named after the database, so parallel test files never share one; dropped with it.
  const cred = (who: DbService | 'backup'): RoleCredential => ({
    role: serviceRoleName(name, who),
    password: randomBytes(18).toString('base64url'),
  });
  const roles = opts.serviceRoles ? Object.fromEntries(DB_SERVICES.map((s) => [s, cred(s)])) : undefined;
  const backup = opts.serviceRoles ? cred('backup') : undefined;
  const roleNames = roles ? [...Object.values(roles).map((r) => r.role), backup!.role] : [];
  const dropAll = async () => {
    const c = new pg.Client({ connectionString: ADMIN_URL });
    await c.connect();
    try {
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    } finally {
      await c.end();
    }
    if (roleNames.length) await dropRoles(ADMIN_URL, roleNames);
  };
  if (roles) {
    await provisionServiceRoles({ adminUrl: url.toString(), services: roles, backup: backup! }).catch(async (e) => {
      await dropAll();
      throw e;
    });
  }
  const pool = createPool({ connectionString: url.toString(), max: 20, applicationName: `test:${name}` });
  return {
    url: url.toString(),
    name,
    pool,
    ...(roles
      ? {
          serviceUrls: Object.fromEntries(DB_SERVICES.map((s) => [s, urlForRole(url.toString(), roles[s]!)])) as Record<
            DbService,
            string
          >,
          backupUrl: urlForRole(url.toString(), backup!),
        }
      : {}),
    async drop() {
      await pool.end().catch(() => {});
      await dropAll();
    },
  };
}

/**
 * The text of every statement `fn` sends through `client.query`, in order (to check, say, that a batched statement
 * has one text whatever its batch). The client is itself again afterwards.
 */
export async function recordStatements(client: pg.ClientBase, fn: () => Promise<void>): Promise<string[]> {
  const texts: string[] = [];
  const query = client.query.bind(client) as (...a: unknown[]) => unknown;
  (client as { query: unknown }).query = (...a: unknown[]) => {
    texts.push(typeof a[0] === 'string' ? a[0] : (a[0] as { text: string }).text);
    return query(...a);
  };
  try {
    await fn();
  } finally {
    delete (client as { query?: unknown }).query;
  }
  return texts;
}

export { freePortBlock } from './test-ports.ts';
