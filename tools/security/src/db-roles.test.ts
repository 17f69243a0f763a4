/**
 * Least privilege in PostgreSQL (docs/security.md, control 7): each service's own role owns its schema and nothing
 * else. A compromised service (its DATABASE_URL in an attacker's hands) can neither read nor change another
 * service's data, nor create schemas or roles. Real PostgreSQL, the services' real migrations.
 */
import { join } from 'node:path';
import pg from 'pg';
import { createPool, dropRoles, migrate, provisionServiceRoles, SERVICE_SCHEMAS, type DbService } from '@exchange/db';
import { createTestDatabase, type TestDatabase } from '@exchange/db/testing';
import { ROOT } from '@exchange/stack';

const folder = (s: DbService) => join(ROOT, 'services', s, 'drizzle');
const dbs: TestDatabase[] = [];
afterAll(async () => {
  for (const db of dbs) await db.drop();
});

async function as<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}
const denied = async (url: string, sql: string) => {
  const err = await as(url, (c) => c.query(sql)).then(
    () => undefined,
    (e: { code?: string }) => e,
  );
  return err?.code;
};

test('each service migrates as its own role and cannot read or write another service’s schema', async () => {
  const db = await createTestDatabase('sec_roles', { serviceRoles: true });
  dbs.push(db);
  const urls = db.serviceUrls!;
  // migrations run as the service's role (which may not create schemas: they exist, owned by it)
  for (const s of Object.keys(SERVICE_SCHEMAS) as DbService[]) {
    const pool = createPool({ connectionString: urls[s], max: 1 });
    try {
      await migrate(pool, { migrationsFolder: folder(s), schema: SERVICE_SCHEMAS[s] });
      await migrate(pool, { migrationsFolder: folder(s), schema: SERVICE_SCHEMAS[s] }); // again: nothing to do
    } finally {
      await pool.end();
    }
  }
  // its own schema: full use
  expect((await as(urls.auth, (c) => c.query('SELECT count(*)::int AS n FROM auth.users'))).rows[0].n).toBe(0);
  expect(await as(urls.wallet, (c) => c.query('SELECT 1 FROM wallet.accounts LIMIT 1'))).toBeTruthy();
  // anything else: permission denied (42501), for reads and writes alike
  expect(await denied(urls.order, 'SELECT * FROM auth.users')).toBe('42501');
  expect(await denied(urls.order, 'SELECT * FROM wallet.accounts')).toBe('42501');
  expect(await denied(urls.wallet, 'SELECT * FROM auth.signing_keys')).toBe('42501');
  expect(await denied(urls['payment-processor'], 'SELECT * FROM orders.orders')).toBe('42501');
  expect(await denied(urls.auth, 'SELECT * FROM payment.payouts')).toBe('42501');
  expect(await denied(urls.order, `UPDATE wallet.accounts SET balance = balance + 1`)).toBe('42501');
  expect(await denied(urls.order, 'DROP TABLE auth.users')).toBe('42501');
  // no way around it: no new schemas, no roles, no granting itself more
  expect(await denied(urls.order, 'CREATE SCHEMA sneaky')).toBe('42501');
  expect(await denied(urls.order, 'CREATE ROLE sneaky')).toBe('42501');
  expect(await denied(urls.order, `GRANT ${db.name}_auth TO ${db.name}_order`)).toBe('42501');
  expect(await denied(urls.order, 'CREATE TABLE public.stash (x int)')).toBe('42501');
  // the backup role reads everything (pg_dump) and changes nothing
  expect(await as(db.backupUrl!, (c) => c.query('SELECT count(*) FROM auth.users'))).toBeTruthy();
  expect(await denied(db.backupUrl!, 'DELETE FROM auth.users')).toBe('42501');
}, 60_000);

test('a database migrated by one shared role is handed over to the service roles in place', async () => {
  const db = await createTestDatabase('sec_roles_upgrade');
  // before: everything owned by the superuser, as every install so far
  for (const s of Object.keys(SERVICE_SCHEMAS) as DbService[])
    await migrate(db.pool, { migrationsFolder: folder(s), schema: SERVICE_SCHEMAS[s] });
  await db.pool.query(
    `INSERT INTO auth.backup_runs (started_at, status, file, location) VALUES (now(), 'succeeded', 'f', 'l')`,
  );
  const role = `${db.name}_auth`;
  const other = `${db.name}_wallet`;
  try {
    await provisionServiceRoles({
      adminUrl: db.url,
      services: { auth: { role, password: 'pw-a' }, wallet: { role: other, password: 'pw-w' } },
    });
    const url = new URL(db.url);
    url.username = role;
    url.password = 'pw-a';
    // the service's role now owns its tables, sequences and functions, migrates and writes as before
    const pool = createPool({ connectionString: url.toString(), max: 1 });
    try {
      await migrate(pool, { migrationsFolder: folder('auth'), schema: 'auth' });
      await pool.query(
        `INSERT INTO auth.backup_runs (started_at, status, file, location) VALUES (now(), 'failed', 'g', 'l')`,
      );
    } finally {
      await pool.end();
    }
    const { rows } = await db.pool.query(
      `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'auth' AND pg_get_userbyid(c.relowner) <> $1`,
      [role],
    );
    expect(rows[0].n).toBe(0);
    url.username = other;
    url.password = 'pw-w';
    expect(await denied(url.toString(), 'SELECT * FROM auth.backup_runs')).toBe('42501');
  } finally {
    await db.drop();
    await dropRoles('postgres://postgres@127.0.0.1:5432/postgres', [role, other]);
  }
}, 60_000);

test('a CREATEROLE admin (no superuser, as on a managed PostgreSQL) provisions the roles too', async () => {
  const db = await createTestDatabase('sec_roles_createrole');
  const admin = `${db.name}_admin`;
  const roles = [`${db.name}_auth`, `${db.name}_wallet`];
  try {
    await db.pool.query(`CREATE ROLE "${admin}" LOGIN CREATEROLE PASSWORD 'pw-admin'`);
    await db.pool.query(`ALTER DATABASE "${db.name}" OWNER TO "${admin}"`);
    const url = new URL(db.url);
    url.username = admin;
    url.password = 'pw-admin';
    // the database as the old shared role left it: everything owned by that (non-superuser) admin
    const adminPool = createPool({ connectionString: url.toString(), max: 1 });
    try {
      await migrate(adminPool, { migrationsFolder: folder('auth'), schema: 'auth' });
      await migrate(adminPool, { migrationsFolder: folder('wallet'), schema: 'wallet' });
    } finally {
      await adminPool.end();
    }
    await provisionServiceRoles({
      adminUrl: url.toString(),
      services: { auth: { role: roles[0]!, password: 'pw-a' }, wallet: { role: roles[1]!, password: 'pw-w' } },
    });
    const owners = await db.pool.query(
      `SELECT DISTINCT n.nspname, pg_get_userbyid(c.relowner) AS owner FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('auth', 'wallet') ORDER BY 1`,
    );
    expect(owners.rows).toEqual([
      { nspname: 'auth', owner: roles[0] },
      { nspname: 'wallet', owner: roles[1] },
    ]);
    url.username = roles[1]!;
    url.password = 'pw-w';
    expect(await denied(url.toString(), 'SELECT * FROM auth.users')).toBe('42501');
  } finally {
    await db.drop();
    await dropRoles('postgres://postgres@127.0.0.1:5432/postgres', [...roles, admin]);
  }
}, 60_000);
