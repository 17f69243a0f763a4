/**
 * Loaded into a service with `NODE_OPTIONS=--import <this file>` by the query-plan test: appends every distinct SQL
 * text the process sends (with the values of its first execution) to QUERY_CAPTURE_FILE as JSON lines, so the test
 * can EXPLAIN exactly the statements the services run, not copies of them that could drift.
 */
import { appendFileSync } from 'node:fs';
import pg from 'pg';

const file = process.env.QUERY_CAPTURE_FILE;
if (file) {
  const seen = new Set<string>();
  const query = pg.Client.prototype.query;
  const json = (v: unknown) =>
    typeof v === 'bigint' ? v.toString() : v instanceof Date ? v.toISOString() : Buffer.isBuffer(v) ? null : v;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const [q, v] = args as [string | { text?: string; values?: unknown[] }, unknown];
    const text = typeof q === 'string' ? q : q?.text;
    if (text && !seen.has(text)) {
      seen.add(text);
      const values = Array.isArray(v) ? v : typeof q === 'object' ? (q.values ?? []) : [];
      appendFileSync(file, JSON.stringify({ text, values: values.map(json) }) + '\n');
    }
    return (query as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof query;
}
