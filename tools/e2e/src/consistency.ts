/**
 * After a trading run settles down: is every accepted order in a state consistent with the book and the ledger?
 * Reads each service's schema directly (a test may; the services never do).
 */
import type { Pool } from '@exchange/db';
import { loadCatalog } from '@exchange/contracts/markets';
import { assertLedgerInvariants } from '@exchange/wallet/testing';
import { staffAccessToken } from './admin-session.ts';
import { ADMIN, eventually } from './harness.ts';

const OPEN = ['new', 'partially_filled'];

/** Wait until every outbox is drained, no order is pending and every accepted order has reached the engine. */
export async function waitForQuiescence(pool: Pool, timeoutMs = 180_000): Promise<void> {
  await eventually(
    async () => {
      const { rows } = await pool.query<{ what: string; n: string }>(`
        SELECT 'outbox:' || s AS what, n FROM (
          SELECT 'orders' AS s, count(*) AS n FROM orders.outbox WHERE sent_at IS NULL
          UNION ALL SELECT 'payment', count(*) FROM payment.outbox WHERE sent_at IS NULL
          UNION ALL SELECT 'wallet', count(*) FROM wallet.outbox WHERE sent_at IS NULL) o
        UNION ALL SELECT 'pending orders', count(*) FROM orders.orders WHERE status = 'pending'
        UNION ALL SELECT 'orders the engine has not answered', count(*) FROM orders.orders o
          WHERE o.status IN ('new') AND o.last_seq IS NULL
        UNION ALL SELECT 'trades not settled', count(*) FROM orders.trades t
          WHERE NOT EXISTS (SELECT 1 FROM wallet.settlements s WHERE s.trade_id = t.trade_id)
        UNION ALL SELECT 'finished orders with an active hold', count(*) FROM orders.orders o
          JOIN wallet.holds h ON h.id = o.id WHERE o.status NOT IN ('new','partially_filled','pending') AND h.status = 'active'`);
      const busy = rows.filter((r) => r.n !== '0');
      lastBusy = busy.map((r) => `${r.what}=${r.n}`).join(', ');
      return busy.length === 0;
    },
    timeoutMs,
    'the trading flow to settle down',
  ).catch((e) => {
    throw new Error(`${(e as Error).message} (still busy: ${lastBusy})`);
  });
}
let lastBusy = '';

const adminToken = staffAccessToken;

/**
 * The wallet's own reconciliation, run through its admin API after the flow settled: every check, including
 * order_holds against the order service, must pass (the e2e stack runs with RECONCILIATION_GRACE_S=0).
 */
export async function assertWalletReconciliation(authUrl: string, walletUrl: string): Promise<void> {
  const r = await fetch(`${walletUrl}/api/v1/admin/reconciliation/run`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await adminToken(authUrl, ADMIN)}` },
  });
  if (r.status !== 201) throw new Error(`reconciliation: ${r.status} ${await r.text()}`);
  const recon = (await r.json()) as {
    status: string;
    report: { checks: Array<{ name: string; mismatches: number; error?: string }> };
  };
  expectSet(
    'reconciliation checks with mismatches or errors',
    recon.report.checks.filter((c) => c.mismatches > 0 || c.error).map((c) => `${c.name}: ${c.error ?? c.mismatches}`),
    [],
  );
  if (!recon.report.checks.some((c) => c.name === 'order_holds')) throw new Error('reconciliation ran no order_holds');
  if (recon.status !== 'ok') throw new Error(`reconciliation status ${recon.status}`);
}

/** Resting orders per market in the active payment-processor's engine, from its admin API. */
export async function engineRestingOrders(authUrl: string, ppUrl: string, admin: { email: string; password: string }) {
  const accessToken = await adminToken(authUrl, admin);
  const r = await fetch(`${ppUrl}/api/v1/admin/engine/markets`, {
    headers: { authorization: `Bearer ${accessToken}` },
  });
  if (!r.ok) throw new Error(`engine admin: ${r.status} ${await r.text()}`);
  return (await r.json()) as unknown;
}

export interface ConsistencyReport {
  orders: number;
  open: number;
  trades: number;
}

export async function assertTradingConsistency(pool: Pool): Promise<ConsistencyReport> {
  const catalog = loadCatalog(undefined);
  const q = async <R extends Record<string, unknown>>(sql: string) => (await pool.query<R>(sql)).rows;

  // 1. No fill lost or doubled: the engine's trades (its outbox), the order service's tape and the wallet's
  //    settlements are the same set, each trade exactly once.
  const engineTrades = await q<{ id: string; n: string }>(
    `SELECT message->'payload'->>'tradeId' AS id, count(*) AS n FROM payment.outbox WHERE type = 'engine.trade-executed' GROUP BY 1`,
  );
  const tape = await q<{ id: string }>(`SELECT trade_id::text AS id FROM orders.trades`);
  const settled = await q<{ id: string }>(`SELECT trade_id::text AS id FROM wallet.settlements`);
  expectSet(
    'engine trades emitted once',
    engineTrades.filter((r) => r.n !== '1').map((r) => r.id),
    [],
  );
  const engineIds = engineTrades.map((r) => r.id).sort();
  expectSet('order-service trade tape', tape.map((r) => r.id).sort(), engineIds);
  expectSet('wallet settlements', settled.map((r) => r.id).sort(), engineIds);

  // 2. Each order's filled quantity equals the sum of its fills, and both sides of every trade are recorded.
  const badFills = await q<{ id: string }>(`
    SELECT o.id FROM orders.orders o
      LEFT JOIN (SELECT order_id, sum(quantity_lots) AS lots, count(*) AS n FROM orders.fills GROUP BY 1) f ON f.order_id = o.id
     WHERE o.filled_lots <> coalesce(f.lots, 0)`);
  expectSet(
    'orders whose filled quantity differs from their fills',
    badFills.map((r) => r.id),
    [],
  );
  const oneSided = await q<{ id: string }>(
    `SELECT trade_id::text AS id FROM orders.fills GROUP BY 1 HAVING count(*) <> 2`,
  );
  expectSet(
    'trades without exactly two fills',
    oneSided.map((r) => r.id),
    [],
  );

  // 3. The order service's open orders are exactly the orders resting in the engine's book (latest engine state).
  const open = await q<{
    id: string;
    market: string;
    side: string;
    price_ticks: string;
    quantity_lots: string;
    filled_lots: string;
    hold_amount: string;
  }>(
    `SELECT id::text, market, side, price_ticks::text, quantity_lots::text, filled_lots::text, hold_amount::text
       FROM orders.orders WHERE status IN (${OPEN.map((s) => `'${s}'`).join(',')})`,
  );
  const finished = await q<{ id: string }>(
    `SELECT id::text FROM orders.orders WHERE status IN ('filled','cancelled','rejected')`,
  );

  // 4. Every hold matches an open order: active holds are exactly the open orders, and each still covers what the
  //    order can still take (a sell: its remaining base; a buy: its remaining quantity at its limit price).
  const holds = await q<{ id: string; remaining: string }>(
    `SELECT id::text, (amount - captured - released)::text AS remaining FROM wallet.holds WHERE status = 'active' AND ref_type = 'order'`,
  );
  expectSet('active order holds vs open orders', holds.map((h) => h.id).sort(), open.map((o) => o.id).sort());
  const byId = new Map(holds.map((h) => [h.id, BigInt(h.remaining)]));
  const uncovered: string[] = [];
  for (const o of open) {
    const m = catalog.market(o.market)!;
    const remainingLots = BigInt(o.quantity_lots) - BigInt(o.filled_lots);
    const need = o.side === 'sell' ? m.baseUnits(remainingLots) : m.notional(BigInt(o.price_ticks), remainingLots);
    const have = byId.get(o.id) ?? -1n;
    if (o.side === 'sell' ? have !== need : have < need) uncovered.push(`${o.id}: hold ${have} for ${need}`);
  }
  expectSet('open orders whose hold does not cover them', uncovered, []);
  const finishedHolds = await q<{ id: string }>(
    `SELECT h.id::text FROM wallet.holds h JOIN orders.orders o ON o.id = h.id WHERE h.status = 'active' AND o.status IN ('filled','cancelled','rejected')`,
  );
  expectSet(
    'finished orders still holding funds',
    finishedHolds.map((r) => r.id),
    [],
  );

  // 5. Ledger invariants 1-5.
  await assertLedgerInvariants(pool);

  // 6. Nothing was set aside: no message of the flow ended in a dead-letter table, and no settlement had to be
  //    taken from available funds because its order's release overtook it.
  const dead = await q<{ what: string }>(
    `SELECT 'wallet ' || coalesce(type, '?') || ': ' || reason AS what FROM wallet.dead_letters
     UNION ALL SELECT 'orders ' || coalesce(type, '?') || ': ' || reason FROM orders.dead_letters
     UNION ALL SELECT 'payment ' || coalesce(type, '?') || ': ' || reason FROM payment.dead_letters`,
  );
  expectSet(
    'dead letters',
    dead.map((d) => d.what),
    [],
  );
  const late = await q<{ id: string }>(`SELECT id::text FROM wallet.holds WHERE late_captured <> 0`);
  expectSet(
    'holds captured after their release',
    late.map((h) => h.id),
    [],
  );
  return { orders: open.length + finished.length, open: open.length, trades: engineIds.length };
}

function expectSet(what: string, actual: string[], expected: string[]) {
  if (actual.length !== expected.length || actual.some((v, i) => v !== expected[i])) {
    const extra = actual.filter((a) => !expected.includes(a)).slice(0, 5);
    const missing = expected.filter((e) => !actual.includes(e)).slice(0, 5);
    throw new Error(
      `${what}: expected ${expected.length}, got ${actual.length}; extra ${JSON.stringify(extra)} missing ${JSON.stringify(missing)}`,
    );
  }
}
