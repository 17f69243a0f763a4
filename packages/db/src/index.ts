import pg from 'pg';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import { PreparingClient } from './prepared.ts';

export type { NodePgDatabase } from 'drizzle-orm/node-postgres';
export { GroupCommit, type GroupCommitOptions, type Outcome } from './group-commit.ts';
export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

// Postgres returns numeric/bigint as strings by default; keep it that way so money never passes through a float.
// int8 (bigint, count(*)) also stays a string. Callers convert with BigInt().

export interface PoolOptions {
  connectionString: string;
  max?: number;
  applicationName?: string;
  /** Statement timeout in ms, so one stuck query cannot hold a connection forever. */
  statementTimeoutMs?: number;
  /**
   * The server ends a session left inside a transaction this long (ms, default 10 s), releasing its row locks: the
   * only way a frozen (SIGSTOP, VM pause) or partitioned client lets go, since the kernel still answers for a frozen
   * process's socket. No code path here waits on anything outside the database inside a transaction.
   */
  idleInTransactionTimeoutMs?: number;
  /** Longest wait for a lock (ms, default 10 s): a lock wait fails and is retried rather than hanging. */
  lockTimeoutMs?: number;
  /**
   * Name repeated parameterised statements so PostgreSQL parses and plans them once per connection (prepared.ts).
   * Default on; `DB_PREPARED_STATEMENTS=off` turns it off for every pool of the process (to compare in a benchmark,
   * or behind a pooler in transaction mode, which cannot keep a prepared statement across transactions).
   */
  preparedStatements?: boolean;
  /**
   * How PostgreSQL plans a prepared statement's executions (`plan_cache_mode`, per session; default
   * `force_generic_plan`, or `DB_PLAN_CACHE_MODE`). PostgreSQL's own default (`auto`) plans each of the first five
   * executions for their values, then keeps planning for each one if its generic plan's estimate is not cheaper, and
   * a batched statement's is not: it reads `unnest` of array parameters, whose length a custom plan knows and a
   * generic one guesses. Those statements were planned on most executions, at up to 1 ms each (docs/benchmarks.md,
   * sixteenth round). The generic plans are the ones the query-plan test checks (tools/e2e: no sequential scan, no
   * whole-index scan of a growing table).
   */
  planCacheMode?: 'force_generic_plan' | 'auto' | 'force_custom_plan';
}

const PLAN_CACHE_MODES = ['force_generic_plan', 'auto', 'force_custom_plan'] as const;

function planCacheMode(opt: PoolOptions['planCacheMode']): (typeof PLAN_CACHE_MODES)[number] {
  if (opt) return opt;
  const env = process.env['DB_PLAN_CACHE_MODE'];
  if (env === undefined || env === '') return 'force_generic_plan';
  if (!(PLAN_CACHE_MODES as readonly string[]).includes(env)) {
    throw new Error(`DB_PLAN_CACHE_MODE must be one of ${PLAN_CACHE_MODES.join(', ')}, not "${env}"`);
  }
  return env as (typeof PLAN_CACHE_MODES)[number];
}

/**
 * TCP keepalive on both ends, so a connection to a host that vanished (partition, power loss) is noticed in about
 * 25 s instead of the Linux default of 2 h 11 min: the client probes after 10 s idle; the server
 * (`tcp_keepalives_*`, settable per session) probes every 5 s after 10 s and gives up after 3 misses, which ends the
 * session and frees its locks, advisory locks included.
 */
const SERVER_KEEPALIVE = '-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3';

export function createPool(opts: PoolOptions): pg.Pool {
  const prepared = opts.preparedStatements ?? process.env['DB_PREPARED_STATEMENTS'] !== 'off';
  const pool = new pg.Pool({
    ...(prepared ? { Client: PreparingClient } : {}),
    connectionString: opts.connectionString,
    max: opts.max ?? 10,
    application_name: opts.applicationName,
    statement_timeout: opts.statementTimeoutMs ?? 30_000,
    idle_in_transaction_session_timeout: opts.idleInTransactionTimeoutMs ?? 10_000,
    lock_timeout: opts.lockTimeoutMs ?? 10_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    options: `${SERVER_KEEPALIVE} -c plan_cache_mode=${planCacheMode(opts.planCacheMode)}`,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client losing its connection (DB restart) must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  // Neither may a checked-out one: pg emits 'error' on the client itself when its connection ends, and the pool
  // listens only while the client is idle. A job holding a client across a restart (a lock holder, the scheduled
  // reconciliation) would otherwise die of an unhandled 'error' event; its queries reject, and `release(err)` drops it.
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

export function drizzleFor(client: pg.Pool | pg.PoolClient): NodePgDatabase {
  return drizzle(client as pg.Pool);
}

export type Isolation = 'read committed' | 'repeatable read' | 'serializable';

export interface TransactionOptions {
  isolation?: Isolation;
  /** How many times to retry on serialization failure (40001) or deadlock (40P01). Default 10. */
  retries?: number;
  /**
   * The transaction's first statement, sent in the same round trip as `BEGIN` (one simple-protocol message, so it
   * takes no parameters: its values must be inlined with `pg.escapeLiteral`). Its result is `fn`'s second argument.
   */
  opening?: string;
}

const RETRYABLE = new Set(['40001', '40P01']);

export function isRetryableTxError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && RETRYABLE.has((err as { code?: string }).code ?? '');
}

/**
 * Run `fn` in a transaction on one pooled client. Serialization failures and deadlocks are retried with jittered
 * exponential backoff (the transaction is replayed from the start, so `fn` must not have effects outside the
 * database). Any other error rolls back and propagates.
 *
 * The checked-out client gets an `error` listener: when the connection dies mid-transaction (failover, network cut
 * between two queries) pg emits `error` on the client, which would otherwise crash the process as an unhandled
 * event. A client that saw an error is destroyed instead of returned to the pool.
 */
export async function withTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient, opening: pg.QueryResult | undefined) => Promise<T>,
  opts: TransactionOptions = {},
): Promise<T> {
  const retries = opts.retries ?? 10;
  for (let attempt = 0; ; attempt++) {
    const client = await pool.connect();
    let broken = false;
    const onError = () => {
      broken = true;
    };
    client.on('error', onError);
    try {
      const begin = opts.isolation ? `BEGIN ISOLATION LEVEL ${opts.isolation.toUpperCase()}` : 'BEGIN';
      let opening: pg.QueryResult | undefined;
      if (opts.opening) {
        // a simple query of two statements answers with one result each
        const results = (await client.query(`${begin}; ${opts.opening}`)) as unknown as pg.QueryResult[];
        opening = results[1];
      } else {
        await client.query(begin);
      }
      const result = await fn(client, opening);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      if (!broken) {
        try {
          await client.query('ROLLBACK');
        } catch {
          broken = true; // connection is gone; do not return it to the pool
        }
      }
      if (!broken && isRetryableTxError(err) && attempt < retries) {
        await retryPause(attempt);
        continue;
      }
      throw err;
    } finally {
      client.removeListener('error', onError);
      client.release(broken);
    }
  }
}

/** Jittered exponential backoff before retry `attempt` + 1 of a transaction that failed with a retryable error. */
function retryPause(attempt: number): Promise<void> {
  const delay = Math.min(200, 2 ** attempt) * (0.5 + Math.random());
  return new Promise((r) => setTimeout(r, delay));
}

/**
 * `withTransaction`'s retries for a transaction that is one statement sent outside a transaction (PostgreSQL's
 * implicit transaction): one round trip instead of `BEGIN`, the statement and `COMMIT`. `run` sends that statement.
 */
export async function withStatementRetries<T>(run: () => Promise<T>, opts: { retries?: number } = {}): Promise<T> {
  const retries = opts.retries ?? 10;
  for (let attempt = 0; ; attempt++) {
    try {
      return await run();
    } catch (err) {
      if (!isRetryableTxError(err) || attempt >= retries) throw err;
      await retryPause(attempt);
    }
  }
}

/**
 * Apply the drizzle-kit generated migrations of one service, tracking them in that service's own schema (the same
 * `__migrations` table and rows drizzle's migrator keeps). Runs as the service's own database role: that role owns
 * its schema but may not create schemas (see roles.ts), so the schema is created only when missing (by a role that
 * may, e.g. the development superuser) and the migrations' own `CREATE SCHEMA IF NOT EXISTS` of it is skipped.
 */
export async function migrate(pool: pg.Pool, opts: { migrationsFolder: string; schema: string }): Promise<void> {
  const migrations = readMigrationFiles({ migrationsFolder: opts.migrationsFolder });
  const table = `"${opts.schema}"."__migrations"`;
  // Two replicas starting together must not both run DDL: serialise on an advisory lock named after the schema.
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [`migrate:${opts.schema}`]);
    try {
      const { rowCount } = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [opts.schema]);
      if (!rowCount) await client.query(`CREATE SCHEMA "${opts.schema}"`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${table} (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint)`,
      );
      const { rows } = await client.query<{ created_at: string }>(
        `SELECT created_at FROM ${table} ORDER BY created_at DESC LIMIT 1`,
      );
      const last = rows[0] ? Number(rows[0].created_at) : undefined;
      const pending = migrations.filter((m) => last === undefined || last < m.folderMillis);
      if (!pending.length) return;
      const ownSchema = new RegExp(`^\\s*CREATE SCHEMA IF NOT EXISTS "${opts.schema}"\\s*;?\\s*$`, 'i');
      await client.query('BEGIN');
      try {
        for (const m of pending) {
          for (const stmt of m.sql) {
            if (!stmt.trim() || ownSchema.test(stmt)) continue;
            await client.query(stmt);
          }
          await client.query(`INSERT INTO ${table} (hash, created_at) VALUES ($1, $2)`, [m.hash, m.folderMillis]);
        }
        await client.query('COMMIT');
      } catch (e) {
        await client.query('ROLLBACK').catch(() => {});
        throw e;
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [`migrate:${opts.schema}`]);
    }
  } finally {
    client.release();
  }
}

/** Round-trip latency of a trivial query, for /ready. */
export async function pingDatabase(pool: pg.Pool): Promise<void> {
  await pool.query('SELECT 1');
}

/** Create the database named in `url` if it does not exist (host mode convenience; needs CREATEDB). */
export async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ''));
  if (!/^[a-zA-Z0-9_]+$/.test(name)) throw new Error(`refusing to create database with unusual name "${name}"`);
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) {
      try {
        await client.query(`CREATE DATABASE "${name}"`);
      } catch (err) {
        if ((err as { code?: string }).code !== '42P04') throw err; // created concurrently
      }
    }
  } finally {
    await client.end();
  }
}

export {
  DB_SERVICES,
  dropRoles,
  provisionServiceRoles,
  SERVICE_SCHEMAS,
  serviceRoleName,
  urlForRole,
  type DbService,
  type ProvisionOptions,
  type RoleCredential,
} from './roles.ts';
export { provisionFromEnv } from './provision-roles.ts';
