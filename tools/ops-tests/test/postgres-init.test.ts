// config/postgres/initdb/10-exchange.sql run for real with psql against the test PostgreSQL (the one the rest of
// the repository's tests use: TEST_DATABASE_ADMIN_URL, default postgres://postgres@127.0.0.1:5432/postgres), with the
// database name replaced by a throw-away one so the shared `exchange` database is never touched.
import { randomBytes } from 'node:crypto';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readText, runTool, SERVICES } from '../src/helpers.ts';

const ADMIN_URL = process.env.TEST_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const db = `ops_init_${randomBytes(4).toString('hex')}`;
const dir = mkdtempSync(join(tmpdir(), 'ops-initdb-'));

function psql(url: string, args: string[]) {
  const r = runTool('psql', [url, '-v', 'ON_ERROR_STOP=1', '-X', '-q', ...args]);
  if (r.status !== 0) throw new Error(`psql failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

function dbUrl(name: string): string {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

afterAll(() => {
  try {
    psql(ADMIN_URL, ['-c', `DROP DATABASE IF EXISTS ${db}`]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('creates the database and the four service schemas, idempotently, with nothing creatable in public', () => {
  const sql = readText('config', 'postgres', 'initdb', '10-exchange.sql');
  expect(sql.match(/\bexchange\b/g)!.length).toBeGreaterThanOrEqual(3);
  const file = join(dir, 'init.sql');
  writeFileSync(file, sql.replace(/\bexchange\b/g, db));
  // twice: a re-run (e.g. a volume restored from elsewhere) must not fail
  psql(ADMIN_URL, ['-f', file]);
  psql(ADMIN_URL, ['-f', file]);
  const schemas = psql(dbUrl(db), [
    '-At',
    '-c',
    "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg_%' AND nspname <> 'information_schema' ORDER BY 1",
  ]);
  expect(schemas.trim().split('\n')).toEqual([...SERVICES.map((s) => s.schema), 'public'].sort());
  const publicCreate = psql(dbUrl(db), ['-At', '-c', "SELECT has_schema_privilege('public', 'public', 'CREATE')"]);
  expect(publicCreate.trim()).toBe('f');
});
