/**
 * Per-service database roles (least privilege): each service logs in as its own role, which owns its one schema and
 * nothing else. It has no USAGE on the other services' schemas, so it can neither read nor write them, and it
 * cannot create schemas, roles or databases. Migrations run as that role too (see migrate()).
 *
 * `provisionServiceRoles` is run by someone who may create roles (host mode with the local superuser, compose's
 * one-shot `db-roles` service, or an operator / DBA for Kubernetes: docs/deployment.md). It is idempotent: it
 * creates or updates each role and its password, hands the schema and everything in it to the role (an existing
 * database, migrated by a shared role before, is converted in place), and grants the optional backup role read
 * access to all of it (pg_read_all_data: pg_dump of the whole database, nothing else).
 */
import pg from 'pg';

/** The schema each service owns. */
export const SERVICE_SCHEMAS = {
  auth: 'auth',
  wallet: 'wallet',
  order: 'orders',
  'payment-processor': 'payment',
  notification: 'notification',
} as const;
export type DbService = keyof typeof SERVICE_SCHEMAS;
export const DB_SERVICES = Object.keys(SERVICE_SCHEMAS) as DbService[];

export interface RoleCredential {
  role: string;
  password: string;
}

/** The conventional role name of a service: `<prefix>_auth`, …, `<prefix>_payment_processor`. */
export function serviceRoleName(prefix: string, service: DbService | 'backup'): string {
  const name = `${prefix}_${service.replace(/-/g, '_')}`.toLowerCase();
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`unusable role name "${name}"`);
  return name;
}

/** `baseUrl` (any role) with the user and password replaced: the URL a service connects with. */
export function urlForRole(baseUrl: string, cred: RoleCredential): string {
  const u = new URL(baseUrl);
  u.username = encodeURIComponent(cred.role);
  u.password = encodeURIComponent(cred.password);
  return u.toString();
}

async function exec(c: pg.ClientBase, template: string, ...args: string[]): Promise<void> {
  // format() quotes identifiers (%I) and literals (%L) server-side: DDL takes no bind parameters.
  const params = args.map((_, i) => `$${i + 1}::text`).join(', ');
  const { rows } = await c.query<{ sql: string }>(`SELECT format($${args.length + 1}, ${params}) AS sql`, [
    ...args,
    template,
  ]);
  await c.query(rows[0]!.sql);
}

/** A login role with no powers; `inherit` for the backup role, which reads through pg_read_all_data. */
async function upsertRole(c: pg.ClientBase, cred: RoleCredential, inherit = false): Promise<void> {
  const flags = `LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS ${inherit ? 'INHERIT' : 'NOINHERIT'}`;
  const { rowCount } = await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [cred.role]);
  if (!rowCount) {
    try {
      await exec(c, `CREATE ROLE %I ${flags} PASSWORD %L`, cred.role, cred.password);
      return;
    } catch (e) {
      if ((e as { code?: string }).code !== '42710') throw e; // created concurrently: update it below
    }
  }
  await exec(c, `ALTER ROLE %I ${flags} PASSWORD %L`, cred.role, cred.password);
}

/** Give `schema` and every object in it to `role` (tables first: their owned sequences follow them). */
async function handOver(c: pg.ClientBase, schema: string, role: string): Promise<void> {
  const { rowCount } = await c.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
  if (rowCount) await exec(c, 'ALTER SCHEMA %I OWNER TO %I', schema, role);
  else await exec(c, 'CREATE SCHEMA %I AUTHORIZATION %I', schema, role);
  const statements = async (sql: string) => (await c.query<{ sql: string }>(sql, [schema, role])).rows;
  for (const { sql } of await statements(
    `SELECT format('ALTER %s %I.%I OWNER TO %I',
                   CASE cl.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
                   n.nspname, cl.relname, $2::text) AS sql
       FROM pg_class cl JOIN pg_namespace n ON n.oid = cl.relnamespace
      WHERE n.nspname = $1 AND cl.relkind IN ('r', 'p', 'v', 'm', 'f')
        AND cl.relowner <> (SELECT oid FROM pg_roles WHERE rolname = $2)`,
  ))
    await c.query(sql);
  for (const { sql } of await statements(
    `SELECT format('ALTER SEQUENCE %I.%I OWNER TO %I', n.nspname, cl.relname, $2::text) AS sql
       FROM pg_class cl JOIN pg_namespace n ON n.oid = cl.relnamespace
      WHERE n.nspname = $1 AND cl.relkind = 'S' AND cl.relowner <> (SELECT oid FROM pg_roles WHERE rolname = $2)`,
  ))
    await c.query(sql);
  for (const { sql } of await statements(
    `SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, $2::text) AS sql
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = $1 AND p.proowner <> (SELECT oid FROM pg_roles WHERE rolname = $2)`,
  ))
    await c.query(sql);
  for (const { sql } of await statements(
    `SELECT format('ALTER TYPE %I.%I OWNER TO %I', n.nspname, t.typname, $2::text) AS sql
       FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
      WHERE n.nspname = $1 AND t.typtype IN ('e', 'd', 'r') AND t.typowner <> (SELECT oid FROM pg_roles WHERE rolname = $2)`,
  ))
    await c.query(sql);
  // Nobody else gets in: no grants to PUBLIC on the schema (there are none by default; an old one is removed).
  await exec(c, 'REVOKE ALL ON SCHEMA %I FROM PUBLIC', schema);
}

export interface ProvisionOptions {
  /** A URL of the target database as a role that may create roles and own objects (superuser or CREATEROLE). */
  adminUrl: string;
  services: Partial<Record<DbService, RoleCredential>>;
  /** Read-only role for pg_dump of the whole database (auth's admin backups, the backup CronJob). */
  backup?: RoleCredential;
}

export async function provisionServiceRoles(opts: ProvisionOptions): Promise<void> {
  const c = new pg.Client({ connectionString: opts.adminUrl });
  await c.connect();
  try {
    // Roles are cluster-wide: one provisioning at a time (two stacks starting together).
    await c.query('SELECT pg_advisory_lock(hashtext($1))', ['exchange:provision-roles']);
    const { rows } = await c.query<{ db: string; me: string; su: boolean }>(
      `SELECT current_database() AS db, current_user AS me, rolsuper AS su FROM pg_roles WHERE rolname = current_user`,
    );
    const { db, me, su } = rows[0]!;
    // Nothing lives in public; no one may create objects there (the PostgreSQL 15 default, made explicit).
    await c.query('REVOKE CREATE ON SCHEMA public FROM PUBLIC');
    for (const service of DB_SERVICES) {
      const cred = opts.services[service];
      if (!cred) continue;
      await upsertRole(c, cred);
      // A CREATEROLE admin (a managed PostgreSQL's) may give objects to a role, and later drop them in a restore,
      // only as a member of it; a superuser needs nothing.
      if (!su) await exec(c, 'GRANT %I TO %I', cred.role, me);
      await exec(c, 'GRANT CONNECT ON DATABASE %I TO %I', db, cred.role);
      await handOver(c, SERVICE_SCHEMAS[service], cred.role);
    }
    if (opts.backup) {
      await upsertRole(c, opts.backup, true);
      await exec(c, 'GRANT CONNECT ON DATABASE %I TO %I', db, opts.backup.role);
      await exec(c, 'GRANT pg_read_all_data TO %I', opts.backup.role);
    }
  } finally {
    await c.end();
  }
}

/**
 * Drop roles (tests): each must own nothing any more, i.e. its database was dropped first. A role still owning
 * objects elsewhere is left alone (and reported) rather than taking them with it.
 */
export async function dropRoles(adminUrl: string, roles: string[]): Promise<void> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    for (const role of roles) await exec(c, 'DROP ROLE IF EXISTS %I', role);
  } finally {
    await c.end();
  }
}
