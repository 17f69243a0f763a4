/**
 * The relay's poll must not get slower with every row it has sent. Marking a row sent takes it out of the partial
 * index of pending rows only when vacuum runs, and sent rows are kept for a week, so autovacuum comes later the
 * larger the table: until then a poll that reaches the index through a bitmap scan visits all those rows in the heap
 * again, because only a plain index scan marks an entry dead when it finds its row gone (`prepareRelaySession`).
 */
import { withTransaction } from '@exchange/db';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { EVENTS_EXCHANGE, createMessaging, silentLogger, type Messaging } from './index.ts';
import { enqueueMany, pendingBatchSql, prepareRelaySession } from './outbox.ts';
import { SCHEMA, TestItem, count, setupEnv, waitFor, type TestEnv } from '../test/helpers.ts';

let env: TestEnv;
let pool: pg.Pool | undefined;
let messaging: Messaging | undefined;
const SENT = 400;

beforeAll(async () => {
  env = await setupEnv('msg_pending_idx');
});
afterAll(async () => {
  await messaging?.close();
  await pool?.end();
  await env?.drop();
});

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Operation?: string;
  'Actual Rows': number;
  'Shared Hit Blocks': number;
  'Shared Read Blocks': number;
  Plans?: PlanNode[];
}
const nodes = (n: PlanNode): PlanNode[] => [n, ...(n.Plans ?? []).flatMap(nodes)];

it(`after sending ${SENT} rows one at a time, a poll reads none of them again`, async () => {
  // What the planner picks depends on statistics: a database whose defaults rule out plain index scans stands for
  // statistics under which it chooses bitmap scans (as it did in the benchmark, after an analyze during a burst).
  const db = (await env.pool.query<{ d: string }>('SELECT current_database() AS d')).rows[0]!.d;
  await env.pool.query(`ALTER DATABASE "${db}" SET enable_indexscan = off`);
  // no vacuum: the state between two vacuums of a large outbox
  await env.pool.query(`ALTER TABLE ${SCHEMA}.outbox SET (autovacuum_enabled = false)`);
  pool = new pg.Pool({ connectionString: env.db.url, max: 4 });
  messaging = createMessaging({
    url: env.vhost.url,
    service: 'svc',
    pool,
    schema: SCHEMA,
    logger: silentLogger,
    // each row is marked sent as soon as it is confirmed: the test sends one at a time and waits for the mark
    relay: { pollIntervalMs: 100, markDelayMs: 0 },
  });
  await messaging.declareQueue({ name: 'svc.items', bindings: [{ exchange: EVENTS_EXCHANGE, routingKey: 'test.#' }] });
  await messaging.start();
  const send = async (seq: number) => {
    const message = TestItem.create({ seq, key: randomBytes(900).toString('base64') }, { producer: 'svc' }); // ~1.5 kB rows
    const { sequence } = await withTransaction(env.pool, (c) =>
      messaging!.enqueue(c, { exchange: EVENTS_EXCHANGE, routingKey: 'test.item', message }),
    );
    // through the primary key, so that only the relay scans the pending rows
    await waitFor(
      async () =>
        (await count(env.pool, `SELECT count(*) FROM ${SCHEMA}.outbox WHERE sequence = $1 AND sent_at IS NOT NULL`, [
          sequence,
        ])) === 1,
      { what: `row ${seq} to be sent` },
    );
  };
  for (let i = 0; i < SENT; i++) await send(i);
  // An entry is marked dead only once its row is dead to every transaction, and that horizon is the cluster's while
  // any database is being created (CREATE DATABASE, as other test files do in parallel, counts in all of them). So
  // wait until no session anywhere holds a snapshot from before the marks above; the relay's poll for the next row
  // then passes over, and marks, every one of their entries. A poll through a bitmap scan would mark none.
  const { rows: marker } = await env.pool.query<{ x: string }>('SELECT txid_current()::text AS x');
  const older = `SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_xmin IS NOT NULL
                   AND age(backend_xmin) >= age(($1::bigint % 4294967296)::text::xid)`;
  await waitFor(async () => (await count(env.pool, older, [marker[0]!.x])) === 0, {
    timeoutMs: 60_000,
    what: 'no snapshot older than the marks',
  });
  await send(SENT);

  // The poll again, in a session of the database's defaults set up as the relay's is.
  const c = await pool.connect();
  try {
    await prepareRelaySession(c);
    const { rows } = await c.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(
      `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${pendingBatchSql(SCHEMA, 200)}`,
    );
    const plan = rows[0]!['QUERY PLAN'][0]!.Plan;
    expect(nodes(plan).filter((n) => n['Node Type'].startsWith('Bitmap'))).toEqual([]);
    // A bitmap scan checks every entry of the rows sent above (320 of the 400 here, 9 pages with their heap pages);
    // an index scan reads the index's root and leaf and the heap page of its last row at most. Each scan of the
    // pending index is held to that, not the plan's total: the plan around them flips between a nested loop and a
    // hash join with the planner's estimate of the index's end (which counts rows not yet removable while another
    // database is being created), and the hash join's plan touched 2-3 blocks more outside the scans.
    const scans = nodes(plan).filter((n) => n['Index Name'] === 'outbox_pending_idx');
    expect(scans.length).toBeGreaterThan(0);
    for (const n of scans) expect(n['Shared Hit Blocks'] + n['Shared Read Blocks']).toBeLessThanOrEqual(4);
  } finally {
    c.release(true);
  }
}, 120_000);

it('the poll that also marks confirmed rows sent finds them through an index, and leaves them out', async () => {
  // the relay of the test above would publish the rows below
  await messaging?.close();
  messaging = undefined;
  const PENDING = 2_000;
  const key = randomBytes(300).toString('base64'); // ~0.5 kB rows: the table spans pages enough to make a scan cost
  const items = Array.from({ length: PENDING }, (_, seq) => ({
    schema: SCHEMA,
    exchange: EVENTS_EXCHANGE,
    routingKey: 'test.item',
    message: TestItem.create({ seq, key }, { producer: 'svc' }),
  }));
  const sequences = (await enqueueMany(env.pool, items)).map((r) => r.sequence);
  await env.pool.query(`ANALYZE ${SCHEMA}.outbox`);
  // what the broker confirmed since the last poll: a stretch from the middle of the pending rows
  const marks = sequences.slice(1_000, 1_020);
  const BATCH = 200;

  for (const planCache of ['auto', 'force_generic_plan']) {
    const c = await env.pool.connect();
    try {
      await prepareRelaySession(c);
      await c.query('BEGIN'); // EXPLAIN ANALYZE runs the mark: rolled back below
      await c.query(`SET LOCAL plan_cache_mode = ${planCache}`);
      const { rows } = await c.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(
        `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${pendingBatchSql(SCHEMA, BATCH, true)}`,
        [marks],
      );
      const all = nodes(rows[0]!['QUERY PLAN'][0]!.Plan);
      const update = all.find((n) => n['Node Type'] === 'ModifyTable' && n.Operation === 'Update');
      expect(update).toBeDefined();
      // the mark reaches the rows it names by index, not by a scan of the outbox
      const markScans = update!.Plans!;
      expect({ planCache, scan: markScans.map((p) => p['Node Type']) }).toEqual({ planCache, scan: ['Index Scan'] });
      expect(['outbox_pkey', 'outbox_pending_idx']).toContain(markScans[0]!['Index Name']);
      expect(markScans[0]!['Actual Rows']).toBe(marks.length);
      const wideScans = all
        .filter((n) => n['Relation Name'] === 'outbox')
        .map((n) => n['Node Type'])
        .filter((t) => t === 'Seq Scan' || t.startsWith('Bitmap'));
      expect({ planCache, wideScans }).toEqual({ planCache, wideScans: [] });
      await c.query('ROLLBACK');
      // the poll reads the snapshot from before its own mark, so its filter must leave the marked rows out
      await c.query('BEGIN');
      const polled = await c.query<{ sequence: string }>(pendingBatchSql(SCHEMA, PENDING, true), [marks]);
      expect(polled.rows).toHaveLength(PENDING - marks.length);
      expect(polled.rows.filter((r) => marks.includes(r.sequence))).toEqual([]);
      const marked = await c.query(
        `SELECT 1 FROM ${SCHEMA}.outbox WHERE sequence = ANY($1::bigint[]) AND sent_at IS NOT NULL`,
        [marks],
      );
      expect(marked.rowCount).toBe(marks.length);
      await c.query('ROLLBACK');
    } finally {
      c.release(true);
    }
  }
}, 120_000);
