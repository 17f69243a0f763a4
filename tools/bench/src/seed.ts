/**
 * Seeds a large history straight into the stack's database (`--users`, `--preload-orders`), so the benchmark shows
 * what the order path costs when tables are big: users and their wallet accounts, finished orders with their
 * released holds and engine order ids, inbox rows of the consumers that processed them, and trades. Rows are what
 * the services would have written (statuses, checks and unique keys hold), none of them ever touches the bench's own
 * traders, and every money column stays consistent: seeded accounts hold nothing and seeded holds are fully released,
 * so reconciliation still balances. The ledger's journal history is not seeded (it would need balanced postings per
 * trade); its hot-path statements are covered by the query-plan test instead.
 */
import type pg from 'pg';

const log = (msg: string) => process.stderr.write(`bench seed: ${msg}\n`);

async function timed(pool: pg.Pool, what: string, sql: string, params: unknown[] = []): Promise<void> {
  const t0 = Date.now();
  const r = await pool.query(sql, params);
  log(`${what}: ${r.rowCount ?? 0} rows in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

export async function seedHistory(pool: pg.Pool, opts: { users: number; orders: number; tag: string }): Promise<void> {
  const have = await pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM auth.users WHERE email LIKE $1`, [
    `seed-%@${opts.tag}.bench`,
  ]);
  const existing = Number(have.rows[0]!.n);
  const addUsers = Math.max(0, opts.users - existing);
  if (addUsers > 0) {
    // A password hash no password verifies against: these users never log in.
    await timed(
      pool,
      'auth.users',
      `INSERT INTO auth.users (email, password_hash)
       SELECT 'seed-' || g || '@' || $2 || '.bench', 'seeded:no-login' FROM generate_series($1::int + 1, $1::int + $3::int) g`,
      [existing, opts.tag, addUsers],
    );
    for (const asset of ['USD', 'BTC', 'ETH']) {
      await timed(
        pool,
        `wallet.accounts ${asset}`,
        `INSERT INTO wallet.accounts (kind, user_id, asset)
         SELECT 'user', u.id, $2 FROM auth.users u WHERE u.email LIKE $1
         ON CONFLICT (user_id, asset) WHERE kind = 'user' DO NOTHING`,
        [`seed-%@${opts.tag}.bench`, asset],
      );
    }
  }
  if (opts.orders > 0) {
    const users = await pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM auth.users WHERE email LIKE $1`, [
      `seed-%@${opts.tag}.bench`,
    ]);
    if (Number(users.rows[0]!.n) === 0) throw new Error('--preload-orders needs seeded users (--users > 0)');
    await pool.query(`DROP TABLE IF EXISTS pg_temp.seed_users`);
    await pool.query(
      `CREATE TEMP TABLE seed_users AS
         SELECT row_number() OVER (ORDER BY u.id) - 1 AS n, u.id, a.id AS account_id
           FROM auth.users u JOIN wallet.accounts a ON a.user_id = u.id AND a.kind = 'user' AND a.asset = 'USD'
          WHERE u.email LIKE $1`,
      [`seed-%@${opts.tag}.bench`],
    );
    await pool.query(`CREATE INDEX ON seed_users (n)`);
    const nUsers = Number(users.rows[0]!.n);
    await pool.query(`DROP TABLE IF EXISTS pg_temp.seed_orders`);
    await timed(
      pool,
      'order ids',
      `CREATE TEMP TABLE seed_orders AS
         SELECT g, gen_random_uuid() AS id, s.id AS user_id, s.account_id,
                CASE WHEN g % 10 < 7 THEN 'BTC-USD' ELSE 'ETH-USD' END AS market,
                CASE WHEN g % 2 = 0 THEN 'buy' ELSE 'sell' END AS side,
                now() - make_interval(secs => ($1::int - g) * 0.5) AS at
           FROM generate_series(1, $1::int) g JOIN seed_users s ON s.n = g % $2::int`,
      [opts.orders, nUsers],
    );
    await timed(
      pool,
      'orders.orders',
      `INSERT INTO orders.orders (id, user_id, client_order_id, request_hash, market, side, type, price_ticks,
         quantity_lots, time_in_force, hold_asset, hold_amount, status, filled_lots, filled_notional, last_seq,
         created_at, updated_at)
       SELECT id, user_id, 'seed-' || g, md5(g::text), market, side, 'limit', 60000, 1, 'GTC', 'USD', 600,
              CASE WHEN g % 3 = 0 THEN 'cancelled' ELSE 'filled' END, CASE WHEN g % 3 = 0 THEN 0 ELSE 1 END,
              CASE WHEN g % 3 = 0 THEN 0 ELSE 600 END, 0, at, at
         FROM seed_orders`,
    );
    await timed(
      pool,
      'wallet.holds',
      `INSERT INTO wallet.holds (id, user_id, account_id, asset, amount, released, status, reason, ref_type, ref_id,
         release_reason, created_at, closed_at)
       SELECT id, user_id, account_id, 'USD', 600, 600, 'released', 'order', 'order', id::text, 'seeded', at, at
         FROM seed_orders`,
    );
    await timed(
      pool,
      'payment.engine_orders',
      `INSERT INTO payment.engine_orders (order_id, market, user_id, placed_seq)
       SELECT id::text, market, user_id::text, 0 FROM seed_orders`,
    );
    await timed(
      pool,
      'payment.inbox',
      `INSERT INTO payment.inbox (queue, message_id, type, processed_at)
       SELECT 'orders.' || market, gen_random_uuid()::text, 'engine.place-order', at FROM seed_orders`,
    );
    await timed(
      pool,
      'orders.inbox',
      `INSERT INTO orders.inbox (queue, message_id, type, processed_at)
       SELECT 'order.events', gen_random_uuid()::text, 'engine.order-updated', at FROM seed_orders`,
    );
    await timed(
      pool,
      'wallet.inbox',
      `INSERT INTO wallet.inbox (queue, message_id, type, processed_at)
       SELECT 'wallet.settlement', gen_random_uuid()::text, 'wallet.release-hold', at FROM seed_orders`,
    );
    await timed(
      pool,
      'orders.trades',
      `INSERT INTO orders.trades (trade_id, market, seq, price_ticks, quantity_lots, quote_amount, taker_side,
         executed_at)
       SELECT gen_random_uuid(), market, -g, 60000, 1, 600, side, at FROM seed_orders WHERE g % 3 = 1`,
    );
    // The wallet's record that each seeded trade was settled, as settlement writes it (its journal entry keyed by the
    // trade id, then the settlement row): trades_unsettled and settlements_once check the tape against these. Seeded
    // trades move no money (seeded accounts hold nothing), so their entries have no postings.
    await timed(
      pool,
      'wallet.journal_entries + settlements',
      `WITH t AS (
         SELECT t.trade_id, t.market, t.executed_at FROM orders.trades t
          WHERE t.seq < 0 AND NOT EXISTS (SELECT 1 FROM wallet.settlements s WHERE s.trade_id = t.trade_id)),
       e AS (
         INSERT INTO wallet.journal_entries (idempotency_key, reason, ref_type, ref_id, created_at)
         SELECT 'trade:' || trade_id, 'trade', 'trade', trade_id::text, executed_at FROM t
         RETURNING id, ref_id)
       INSERT INTO wallet.settlements (trade_id, market, entry_id, message_id, settled_at)
       SELECT t.trade_id, t.market, e.id, gen_random_uuid()::text, t.executed_at FROM t JOIN e ON e.ref_id = t.trade_id::text`,
    );
  }
  const t0 = Date.now();
  await pool.query('ANALYZE');
  log(`ANALYZE in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
