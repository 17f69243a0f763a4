/**
 * No hot-path statement plans a sequential scan of a growing table, nor a scan of a whole index of one (a partial
 * index's whole subset) outside the work queues listed below. The real services run a trading flow with every
 * SQL text they send captured (capture-queries.ts); the database is then seeded with enough history that PostgreSQL
 * picks an index whenever one fits, and each captured statement is EXPLAINed under a generic plan — what a prepared
 * statement gets after five executions, where a parameter can no longer prove a partial index's predicate (the
 * `kind = $1` system-account lookup scanned every account this way). Every parameterised text must also be the only
 * one of its shape, so that a batched statement is prepared and planned once per connection, not once per batch size.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { seedHistory } from '@exchange/bench/seed';
import { eventually, orderReaches, trader, useTestStack } from './index.ts';

const captureFile = join(mkdtempSync(join(tmpdir(), 'plans-')), 'queries.jsonl');
const captureModule = fileURLToPath(new URL('./capture-queries.ts', import.meta.url));

/**
 * Statements that read a whole table on purpose, off the order path: each names why. Anything else that scans a
 * growing table fails the test.
 */
const BY_DESIGN: Array<{ match: RegExp; why: string }> = [
  { match: /reconciliation|FROM wallet\.accounts GROUP BY asset/i, why: 'reconciliation reads everything by design' },
  { match: /__drizzle_migrations/, why: 'migrations at start' },
  {
    match: /INSERT INTO "orders"\."volume_daily" .* FROM "orders"\."fills"/s,
    why: "order migration 0008's one-off backfill of the fee-tier roll-up, run once when the table is created",
  },
];

/** Statements that read a partial index's subset from its start on purpose: a queue of work, taken in order. */
const SUBSET_BY_DESIGN: Array<{ match: RegExp; why: string }> = [
  {
    match: /FROM "(orders|wallet|payment|auth)"\."outbox" o\s+WHERE o\.sent_at IS NULL/,
    why: "the outbox relay's poll: the unsent rows in sequence order, a batch at a time (pending-index.test.ts)",
  },
  {
    match: /FROM "orders"\.orders WHERE hold_release_pending ORDER BY created_at LIMIT/,
    why: "the sweeper's hold releases to retry, oldest first, 100 at a time",
  },
  {
    // Known, and bounded: with the open orders' partial index stale at size 0, the planner may read it whole (the
    // open orders, pending among them) instead of the pending orders' index, every SWEEP_INTERVAL_MS, off the order
    // path, until the next analyze of the table (docs/benchmarks.md, fifteenth round).
    match: /FROM "orders"\.orders WHERE status = 'pending'\s+AND created_at </,
    why: "the sweeper's stale pending orders: a subset of the open orders, oldest first, 100 at a time",
  },
];

const t = useTestStack({
  env: {
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${captureModule}`.trim(),
    QUERY_CAPTURE_FILE: captureFile,
  },
});

interface Captured {
  text: string;
  values: unknown[];
}

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  Schema?: string;
  'Index Name'?: string;
  'Index Cond'?: string;
  Plans?: PlanNode[];
}

function seqScans(node: PlanNode, out: string[] = []): string[] {
  if (node['Node Type'] === 'Seq Scan' && node['Relation Name']) out.push(`${node.Schema}.${node['Relation Name']}`);
  for (const p of node.Plans ?? []) seqScans(p, out);
  return out;
}

/**
 * Index scans of a growing table with no index condition: they read the whole index, or the whole subset a partial
 * index holds. A bitmap index scan names no table, so it is reported with the table of the heap scan above it.
 */
function wholeIndexScans(
  node: PlanNode,
  out: Array<{ table: string; index: string }> = [],
  table?: string,
): Array<{ table: string; index: string }> {
  const here = node['Relation Name'] ? `${node.Schema}.${node['Relation Name']}` : table;
  const indexScan = /^(Index Scan|Index Only Scan|Bitmap Index Scan)$/.test(node['Node Type']);
  if (indexScan && !node['Index Cond'] && here) out.push({ table: here, index: node['Index Name']! });
  for (const p of node.Plans ?? []) wholeIndexScans(p, out, here);
  return out;
}

it('plans no Seq Scan and no whole index scan of a growing table for any statement the order path runs, each batched statement one text', async () => {
  // The order path end to end: deposits, crossing orders (trades, settlements, releases), a cancel, the reads.
  const alice = await trader(t, { USD: '100000.00' });
  const bob = await trader(t, { BTC: '2.00000000' });
  await bob.placeOrder({ market: 'BTC-USD', side: 'sell', type: 'limit', price: '60000', quantity: '0.5' });
  const buy = await alice.placeOrder({
    market: 'BTC-USD',
    side: 'buy',
    type: 'limit',
    price: '60000',
    quantity: '0.3',
    clientOrderId: 'plans-1',
  });
  // within 10 % of the 60,000 trade above, which may already be the market's last trade (the price band)
  const rest = await alice.placeOrder({
    market: 'BTC-USD',
    side: 'buy',
    type: 'limit',
    price: '57000',
    quantity: '0.1',
  });
  await orderReaches(alice, buy.id, 'filled', 'buy filled');
  await orderReaches(alice, rest.id, 'new', 'resting order acknowledged');
  await alice.cancelOrder(rest.id);
  await orderReaches(alice, rest.id, 'cancelled', 'cancelled');
  // the same clientOrderId again: the idempotent replay path
  await alice.placeOrder({
    market: 'BTC-USD',
    side: 'buy',
    type: 'limit',
    price: '60000',
    quantity: '0.3',
    clientOrderId: 'plans-1',
  });
  // more than alice holds: the hold is refused and the pending order deleted
  await expect(
    alice.placeOrder({ market: 'BTC-USD', side: 'buy', type: 'limit', price: '60000', quantity: '100' }),
  ).rejects.toMatchObject({ code: 'INSUFFICIENT_FUNDS' });
  await alice.orders({ market: 'BTC-USD' });
  await alice.fills({});
  await alice.balances();
  await bob.book('BTC-USD');
  await bob.trades('BTC-USD');
  await eventually(
    async () =>
      (await t.db.pool.query('SELECT 1 FROM wallet.holds WHERE id = $1 AND status = $2', [rest.id, 'released'])).rows
        .length > 0,
    30_000,
    'hold released',
  );
  // let the background loops (relays, sweeper, scheduler) run a few rounds
  await new Promise((r) => setTimeout(r, 3_000));
  await t.stack.stop();

  const captured = readFileSync(captureFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Captured);
  const statements = [...new Map(captured.map((c) => [c.text, c])).values()].filter((c) =>
    /^\s*(WITH|SELECT|INSERT|UPDATE|DELETE)\b/i.test(c.text),
  );
  expect(statements.length).toBeGreaterThan(40);
  // The background statements that read growing tables are among those checked (each ran at least once).
  for (const background of [
    /DELETE FROM "(orders|wallet|payment)"\."outbox"/, // the relays' cleanup of sent rows
    /DELETE FROM "(orders|wallet|payment)"\."inbox"/, // and of old inbox rows
    /FROM "orders"\.orders WHERE hold_release_pending/, // the sweeper's retry of hold releases
    /FROM "orders"\.orders WHERE status = 'pending'/, // the sweeper's pending orders
    /\), ins AS \(\s+INSERT INTO "orders"\.orders/, // order entry's reads and insert of a plain limit order
    /UPDATE "orders"\.orders SET status = 'new'/, // order entry's finalize (found by key, pending only)
    /DELETE FROM "orders"\.orders WHERE id = \$1/, // a refused hold's pending order
  ]) {
    expect(statements.map((c) => c.text).filter((t) => background.test(t)).length).toBeGreaterThan(0);
  }

  // A batched statement has one text whatever its batch (arrays as parameters, not a VALUES list sized by it): a text
  // that varies is parsed and planned on almost every call, and fills the per-process cap of prepared statements
  // (`@exchange/db`'s prepared.ts). Texts that differ only in how many parameter tuples they list are one shape.
  const shapes = new Map<string, Set<string>>();
  for (const { text } of statements.filter((c) => /\$\d/.test(c.text))) {
    const shape = text.replace(/\$\d+/g, '$').replace(/\(\s*\$[^()]*\)(\s*,\s*\(\s*\$[^()]*\))*/g, '(…)');
    shapes.set(shape, (shapes.get(shape) ?? new Set()).add(text));
  }
  const varying = [...shapes.values()].filter((texts) => texts.size > 1).map((texts) => [...texts][0]!.slice(0, 160));
  expect(varying).toEqual([]);

  // History: big enough that an index is cheaper than a scan wherever one fits.
  const pool = t.db.pool;
  await seedHistory(pool, { users: 20_000, orders: 40_000, tag: 'plans' });
  await pool.query(`
    INSERT INTO payment.outbox (message_id, type, exchange, routing_key, message, sent_at)
      SELECT gen_random_uuid()::text, 'seed', 'x', 'y', '{}'::jsonb, now() - interval '1 hour' FROM generate_series(1, 20000);
    INSERT INTO orders.outbox (message_id, type, exchange, routing_key, message, sent_at)
      SELECT gen_random_uuid()::text, 'seed', 'x', 'y', '{}'::jsonb, now() - interval '1 hour' FROM generate_series(1, 20000);
    INSERT INTO wallet.outbox (message_id, type, exchange, routing_key, message, sent_at)
      SELECT gen_random_uuid()::text, 'seed', 'x', 'y', '{}'::jsonb, now() - interval '1 hour' FROM generate_series(1, 20000);
    INSERT INTO orders.fills (trade_id, order_id, user_id, market, side, liquidity, price_ticks, quantity_lots,
                              base_amount, quote_amount, fee, fee_asset, executed_at)
      SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'BTC-USD', 'buy', 'maker', 1, 1, 1, 1, 0, 'BTC',
             now() - interval '1 hour' FROM generate_series(1, 20000);
    -- the fee tiers' 30-day roll-up, read by every order entry: one row per user, market and day traded
    INSERT INTO orders.volume_daily (user_id, market, day, quote_volume)
      SELECT gen_random_uuid(), 'BTC-USD', current_date - (g % 30), 1 FROM generate_series(1, 20000) g;
    INSERT INTO auth.sessions (user_id, expires_at)
      SELECT id, now() + interval '1 day' FROM auth.users WHERE email LIKE 'seed-%';
    INSERT INTO payment.engine_journal (market, seq, message_id, command, events, book_seq, applied_by, applied_at)
      SELECT 'SEED-X', g, gen_random_uuid()::text, '{}'::jsonb, '[]'::jsonb, g, 'seed', now()
        FROM generate_series(1, 20000) g;
    WITH a AS (SELECT id, asset FROM wallet.accounts WHERE kind = 'user' LIMIT 10000),
         e AS (INSERT INTO wallet.journal_entries (idempotency_key, reason, ref_type, ref_id)
                 SELECT 'seed:' || a.id, 'seed', 'seed', a.id::text FROM a RETURNING id, ref_id)
    INSERT INTO wallet.postings (entry_id, account_id, asset, amount, balance_after, memo)
      SELECT e.id, a.id, a.asset, s.amount, 0, 'seed' FROM e JOIN a ON a.id::text = e.ref_id
        CROSS JOIN (VALUES (1), (-1)) s(amount);
    INSERT INTO wallet.settlements (trade_id, market, entry_id, message_id)
      SELECT gen_random_uuid(), 'BTC-USD', id, 'seed' FROM wallet.journal_entries WHERE reason = 'seed';
    ANALYZE;
  `);
  const { rows: big } = await pool.query<{ name: string }>(
    `SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND n.nspname IN ('auth', 'wallet', 'orders', 'payment') AND c.reltuples >= 5000`,
  );
  const growing = new Set(big.map((r) => r.name));
  for (const t of [
    'auth.users',
    'wallet.accounts',
    'wallet.holds',
    'orders.orders',
    'orders.volume_daily',
    'payment.engine_orders',
  ]) {
    expect(growing).toContain(t);
  }

  // A partial index over a hot subset of a large table (pending orders, open orders, active holds, unsent outbox rows)
  // keeps the size it had when the table was last vacuumed, and autovacuum comes later the larger the table: on a big
  // table it was typically last vacuumed when the subset was near empty. The planner then takes the index for empty
  // and prefers scanning it whole to looking rows up by key (`id = ANY($1) AND status = 'pending'` scanned every open
  // order this way with a million orders in the table). Every partial index of a growing table gets those statistics.
  await pool.query(
    `UPDATE pg_class SET reltuples = 0
      WHERE oid IN (SELECT i.indexrelid FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
                     JOIN pg_namespace n ON n.oid = t.relnamespace
                    WHERE i.indpred IS NOT NULL AND n.nspname || '.' || t.relname = ANY($1::text[]))`,
    [[...growing]],
  );
  // a new session, so that no cached relation entry keeps the statistics from before
  const client = new pg.Client({ connectionString: t.db.url });
  await client.connect();
  const violations: string[] = [];
  const wholeScans: string[] = [];
  const unplannable: string[] = [];
  let explained = 0;
  try {
    await client.query('SET plan_cache_mode = force_generic_plan');
    for (const [i, s] of statements.entries()) {
      if (BY_DESIGN.some((b) => b.match.test(s.text))) continue;
      const params = Math.max(0, ...[...s.text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])));
      try {
        await client.query(`PREPARE plan_${i} AS ${s.text}`);
      } catch (err) {
        unplannable.push(`${(err as Error).message}: ${s.text.slice(0, 120)}`);
        continue;
      }
      const args = params ? `(${Array.from({ length: params }, () => 'NULL').join(', ')})` : '';
      const { rows } = await client.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(
        // VERBOSE: without it the plan names no schema, and no scan could ever match a `schema.table` name
        `EXPLAIN (FORMAT JSON, VERBOSE) EXECUTE plan_${i}${args}`,
      );
      await client.query(`DEALLOCATE plan_${i}`);
      explained++;
      const scans = seqScans(rows[0]!['QUERY PLAN'][0]!.Plan).filter((r) => growing.has(r));
      if (scans.length) violations.push(`Seq Scan on ${scans.join(', ')}:\n    ${s.text.replace(/\s+/g, ' ').trim()}`);
      const whole = wholeIndexScans(rows[0]!['QUERY PLAN'][0]!.Plan).filter((w) => growing.has(w.table));
      if (whole.length && !SUBSET_BY_DESIGN.some((b) => b.match.test(s.text))) {
        const named = whole.map((w) => `${w.table} (${w.index})`).join(', ');
        wholeScans.push(`whole index scan of ${named}:\n    ${s.text.replace(/\s+/g, ' ').trim()}`);
      }
    }
  } finally {
    await client.end();
  }
  expect(explained).toBeGreaterThan(40);
  // statements PostgreSQL cannot prepare without their values' types are listed, never silently passed
  expect(unplannable).toEqual([]);
  expect(violations).toEqual([]);
  expect(wholeScans).toEqual([]);
}, 600_000);
