/**
 * No hot-path statement plans a sequential scan of a growing table. The real services run a trading flow with every
 * SQL text they send captured (capture-queries.ts); the database is then seeded with enough history that PostgreSQL
 * picks an index whenever one fits, and each captured statement is EXPLAINed under a generic plan — what a prepared
 * statement gets after five executions, where a parameter can no longer prove a partial index's predicate (the
 * `kind = $1` system-account lookup scanned every account this way).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
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
  Plans?: PlanNode[];
}

function seqScans(node: PlanNode, out: string[] = []): string[] {
  if (node['Node Type'] === 'Seq Scan' && node['Relation Name']) out.push(`${node.Schema}.${node['Relation Name']}`);
  for (const p of node.Plans ?? []) seqScans(p, out);
  return out;
}

it('plans no Seq Scan of a growing table for any statement the order path runs', async () => {
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
  ]) {
    expect(statements.map((c) => c.text).filter((t) => background.test(t)).length).toBeGreaterThan(0);
  }

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
  for (const t of ['auth.users', 'wallet.accounts', 'wallet.holds', 'orders.orders', 'payment.engine_orders']) {
    expect(growing).toContain(t);
  }

  const client = await pool.connect();
  const violations: string[] = [];
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
    }
  } finally {
    client.release();
  }
  expect(explained).toBeGreaterThan(40);
  // statements PostgreSQL cannot prepare without their values' types are listed, never silently passed
  expect(unplannable).toEqual([]);
  expect(violations).toEqual([]);
}, 600_000);
