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

export interface LockWaiter {
  pid: number;
  query: string;
}

/** Which lock waiters `waitForLockWait` waits for: by default any, else those with `pid` or a query `LIKE` `query`. */
export interface LockWaitFilter {
  pid?: number;
  /** A `LIKE` pattern on the statement's text, e.g. `'%cancel_requested_at%'`. */
  query?: string;
  /** How many such waiters at once (default 1). */
  atLeast?: number;
}

/**
 * Waits until backends of the pool's database wait for a lock (`wait_event_type = 'Lock'` in `pg_stat_activity`):
 * the one with pid `match`, or those matching a filter. A test blocks a statement behind a lock it holds and must
 * know the statement got there before it lets go, or before it checks what the statement holds meanwhile; sleeping
 * instead would be flaky or slow. Only this database's backends count, so the waiters of test files running in
 * parallel (each with its own database) never do. Resolves with the matching waiters; rejects after `timeoutMs`.
 */
export async function waitForLockWait(
  pool: pg.Pool,
  match: number | LockWaitFilter,
  { timeoutMs = 10_000, intervalMs = 10, what }: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<LockWaiter[]> {
  const filter: LockWaitFilter = typeof match === 'number' ? { pid: match } : match;
  const { pid, query, atLeast = 1 } = filter;
  const until = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await pool.query<LockWaiter>(
      `SELECT pid, query FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock'
          AND ($1::int IS NULL OR pid = $1) AND ($2::text IS NULL OR query LIKE $2)
        ORDER BY pid`,
      [pid ?? null, query ?? null],
    );
    if (rows.length >= atLeast) return rows;
    if (Date.now() > until) {
      const wanted =
        [
          pid !== undefined && `pid ${pid}`,
          query !== undefined && `query LIKE '${query}'`,
          atLeast !== 1 && `at least ${atLeast} at once`,
        ]
          .filter(Boolean)
          .join(', ') || 'any';
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what ?? 'a backend to wait for a lock'} (${wanted}): ` +
          `${rows.length} such lock waiter(s) in this database`,
      );
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export { freePortBlock } from './test-ports.ts';
