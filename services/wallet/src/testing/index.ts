/**
 * Test helpers for the wallet and for other services' trading-flow tests (`@exchange/wallet/testing`).
 * `assertLedgerInvariants(pool)` checks the design's ledger invariants 1–5 with SQL against the wallet schema of the
 * database behind `pool` (the same checks reconciliation runs), and throws with every violation listed.
 */
import { randomUUID } from 'node:crypto';
import type { AuthOptions } from '@exchange/auth-client';
import { SettleTradeV1 } from '@exchange/contracts/trading';
import { withTransaction, type Pool, type PoolClient } from '@exchange/db';
import type { Messaging } from '@exchange/messaging';
import type { App } from '@exchange/platform';
import type { WalletSettings } from '../context.ts';
import { createHold } from '../ledger/holds.ts';
import type { Scheduler } from '../jobs/scheduler.ts';
import { runChecks, type CheckResult } from '../reconciliation/service.ts';

export class LedgerInvariantError extends Error {
  readonly violations: CheckResult[];
  constructor(violations: CheckResult[]) {
    super(
      `ledger invariants violated:\n` +
        violations.map((v) => `  - ${v.name} (${v.mismatches}): ${JSON.stringify(v.items.slice(0, 5))}`).join('\n'),
    );
    this.name = 'LedgerInvariantError';
    this.violations = violations;
  }
}

const APPEND_ONLY = ['journal_entries', 'postings'];

export async function assertLedgerInvariants(pool: Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const result = await runChecks(client);
    // Invariant 3 (append-only): the triggers rejecting UPDATE/DELETE on the journal must be in place.
    const { rows } = await client.query<{ table: string }>(
      `SELECT c.relname AS table FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'wallet' AND t.tgname LIKE '%append_only' AND NOT t.tgisinternal`,
    );
    await client.query('COMMIT');
    const violations = result.checks.filter((c) => c.mismatches > 0);
    const missing = APPEND_ONLY.filter((t) => !rows.some((r) => r.table === t));
    if (missing.length) {
      violations.push({
        name: 'journal_append_only',
        description: 'append-only triggers on the journal',
        mismatches: missing.length,
        items: missing.map((table) => ({ table })),
      });
    }
    if (violations.length) throw new LedgerInvariantError(violations);
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {});
    throw e;
  } finally {
    client.release();
  }
}

export { runChecks };

/**
 * Credit a user through the sandbox deposit rail at once (a deposit created already due and confirmed here), the
 * way other services' tests fund accounts before trading. Needs the wallet schema migrated in that database.
 */
export async function fundUser(pool: Pool, userId: string, asset: string, units: bigint): Promise<string> {
  const { createDeposit, confirmDeposit } = await import('../funding/service.ts');
  const d = await createDeposit(pool, { userId, asset, amount: units, confirmationMs: 0 });
  await confirmDeposit(pool, d.id);
  return d.id;
}

/** An order's hold on `amount` of `asset`, the way order entry places it: the hold id is the order id. */
export async function placeOrderHold(
  c: PoolClient,
  h: { holdId: string; userId: string; asset: string; amount: bigint },
): Promise<void> {
  await createHold(c, { ...h, reason: 'order', refType: 'order', refId: h.holdId });
}

/** The two sides of a BTC-USD trade: users and their orders (an order's id is its hold's id). */
export interface TradeParties {
  buyer: string;
  seller: string;
  buyOrder: string;
  sellOrder: string;
}

/**
 * A buyer and a seller for a settlement test, with new ids: the buyer funded with `buyerUsd` USD cents and the seller
 * with `sellerBtc` satoshis (fundUser), then an order hold of each (`buyHold` USD, `sellHold` BTC) in one transaction.
 */
export async function tradeParties(
  pool: Pool,
  o: { buyerUsd: bigint; sellerBtc: bigint; buyHold: bigint; sellHold: bigint },
): Promise<TradeParties> {
  const p = { buyer: randomUUID(), seller: randomUUID(), buyOrder: randomUUID(), sellOrder: randomUUID() };
  await fundUser(pool, p.buyer, 'USD', o.buyerUsd);
  await fundUser(pool, p.seller, 'BTC', o.sellerBtc);
  await withTransaction(pool, async (c) => {
    await placeOrderHold(c, { holdId: p.buyOrder, userId: p.buyer, asset: 'USD', amount: o.buyHold });
    await placeOrderHold(c, { holdId: p.sellOrder, userId: p.seller, asset: 'BTC', amount: o.sellHold });
  });
  return p;
}

/**
 * The settle-trade message of one BTC-USD trade between `p` (base in satoshis, quote and fees in minor units; fees 0,
 * a new trade id and now unless given).
 */
export function settleTradeMessage(
  p: TradeParties,
  t: { base: bigint; quote: bigint; buyerFee?: bigint; sellerFee?: bigint; tradeId?: string; executedAt?: string },
) {
  return SettleTradeV1.create(
    {
      tradeId: t.tradeId ?? randomUUID(),
      market: 'BTC-USD',
      baseAsset: 'BTC',
      quoteAsset: 'USD',
      buyer: { userId: p.buyer, orderId: p.buyOrder },
      seller: { userId: p.seller, orderId: p.sellOrder },
      baseAmount: t.base.toString(),
      quoteAmount: t.quote.toString(),
      buyerFee: (t.buyerFee ?? 0n).toString(),
      sellerFee: (t.sellerFee ?? 0n).toString(),
      executedAt: t.executedAt ?? new Date().toISOString(),
    },
    { producer: 'payment-processor' },
  );
}

export { runMigrations } from '../migrate.ts';

export interface TestWallet {
  app: App;
  /** http://127.0.0.1:<port> of the listening wallet (internal hold API, public API). */
  baseUrl: string;
  messaging: Messaging;
  scheduler: Scheduler;
  close(): Promise<void>;
}

/**
 * A complete wallet for other services' trading-flow tests: migrates the wallet schema into `pool`'s database,
 * listens on a free port, consumes wallet.settlement / wallet.payouts on `amqpUrl`, relays its outbox and runs the
 * scheduler (deposits confirm at once unless `settings` says otherwise).
 */
export async function startTestWallet(opts: {
  pool: Pool;
  amqpUrl: string;
  auth: AuthOptions;
  settings?: Partial<WalletSettings>;
  retry?: { attempts: number; backoffMs: number[] };
}): Promise<TestWallet> {
  // One after another: concurrent dynamic imports of overlapping module graphs race in Jest's ESM linker
  // ("… can not be resolved on module … that is not linked").
  const { buildApp } = await import('../app.ts');
  const { runMigrations } = await import('../migrate.ts');
  const { createMessaging, silentLogger } = await import('@exchange/messaging');
  const { startConsumers } = await import('../messaging/queues.ts');
  const { Scheduler: SchedulerClass } = await import('../jobs/scheduler.ts');
  await runMigrations(opts.pool);
  const app = await buildApp({
    pool: opts.pool,
    auth: opts.auth,
    settings: { sandboxDeposits: true, depositConfirmationMs: 0, withdrawalDispatchDelayMs: 0, ...opts.settings },
    fastify: { logger: false },
  });
  const messaging = createMessaging({
    url: opts.amqpUrl,
    service: 'wallet',
    pool: opts.pool,
    schema: 'wallet',
    logger: silentLogger,
    registry: app.metrics.registry,
    relay: { pollIntervalMs: 100 },
  });
  await messaging.start();
  await startConsumers(messaging, app.wallet.assets, { info() {}, warn() {} }, opts.retry ? { retry: opts.retry } : {});
  const scheduler = new SchedulerClass({
    pool: opts.pool,
    pollMs: 100,
    reconciliationIntervalMs: 0,
    log: { info() {}, error() {} },
  });
  scheduler.start();
  const baseUrl = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    app,
    baseUrl,
    messaging,
    scheduler,
    async close() {
      await scheduler.stop();
      await app.close();
      await messaging.close();
    },
  };
}
