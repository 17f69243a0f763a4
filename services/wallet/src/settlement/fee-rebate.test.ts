/**
 * Fee tiers (issue 17): a maker's rebate is a negative fee in the settle-trade message. The wallet pays it from the
 * fee account of the asset the maker receives, keeps every entry balanced, and refuses a rebate worth more than the
 * taker's fee on the same trade (the engine clamps it; this is the ledger's own guard).
 */
import { buildCatalog, DEFAULT_ASSETS, DEFAULT_MARKETS } from '@exchange/contracts/markets';
import { withTransaction } from '@exchange/db';
import { createTestDatabase, type TestDatabase } from '@exchange/db/testing';
import { Assets } from '../assets.ts';
import { userBalances } from '../ledger/service.ts';
import { runMigrations } from '../migrate.ts';
import { SettlementError, settleTrade } from './service.ts';
import {
  assertLedgerInvariants,
  runChecks,
  settleTradeMessage,
  tradeParties,
  type TradeParties,
} from '../testing/index.ts';

let db: TestDatabase;
const assets = new Assets();

beforeAll(async () => {
  db = await createTestDatabase('wallet_rebate');
  await runMigrations(db.pool);
});
afterAll(async () => db?.drop());

const parties = () =>
  tradeParties(db.pool, {
    buyerUsd: 10_000_000n,
    sellerBtc: 100_000_000n,
    buyHold: 10_000_000n,
    sellHold: 100_000_000n,
  });

const feeBalance = async (asset: string) =>
  BigInt(
    (
      await db.pool.query<{ b: string }>(
        `SELECT COALESCE(SUM(balance), 0)::text AS b FROM wallet.accounts WHERE kind = 'fees' AND asset = $1`,
        [asset],
      )
    ).rows[0]!.b,
  );

function message(p: TradeParties, f: ReturnType<ReturnType<typeof market>['fillAmounts']>) {
  return settleTradeMessage(p, {
    base: f.baseAmount,
    quote: f.quoteAmount,
    buyerFee: f.buyerFee,
    sellerFee: f.sellerFee,
  });
}

const market = () =>
  buildCatalog(DEFAULT_ASSETS, [
    { ...DEFAULT_MARKETS[0]!, feeTiers: [{ minVolume: '1000', makerFeeBps: -5, takerFeeBps: 10 }] },
  ]).market('BTC-USD')!;

test('a maker rebate is settled exactly: the maker receives more, the fee account pays it, the ledger balances', async () => {
  const m = market();
  const rebateTier = m.feeTierFor(10n ** 9n);
  const p = await parties();
  const feesBefore = { USD: await feeBalance('USD'), BTC: await feeBalance('BTC') };
  // the buyer takes at the base tier (20 bps), the resting seller is in the rebate tier: 0.25 BTC at 65000
  const f = m.fillAmounts(65000n, 25n, 'buy', rebateTier, m.baseRates);
  expect(f).toMatchObject({ baseAmount: 25_000_000n, quoteAmount: 1_625_000n, buyerFee: 50_000n, sellerFee: -812n });
  await withTransaction(db.pool, (c) => settleTrade(c, message(p, f), assets));

  const buyer = await userBalances(db.pool, p.buyer);
  const seller = await userBalances(db.pool, p.seller);
  expect(buyer.get('BTC')?.total).toBe(25_000_000n - 50_000n);
  expect(buyer.get('USD')).toMatchObject({ total: 10_000_000n - 1_625_000n, held: 10_000_000n - 1_625_000n });
  // 16250.00 USD + the 8.12 USD rebate (5 bps of 16250 = 8.125, rounded down)
  expect(seller.get('USD')?.total).toBe(1_625_000n + 812n);
  expect(seller.get('BTC')).toMatchObject({ total: 75_000_000n, held: 75_000_000n });
  expect((await feeBalance('USD')) - feesBefore.USD).toBe(-812n);
  expect((await feeBalance('BTC')) - feesBefore.BTC).toBe(50_000n);
  await assertLedgerInvariants(db.pool);
  const report = await runChecks(db.pool);
  expect(report.mismatchCount).toBe(0);
});

test('a rebate worth more than the taker fee is refused, with nothing written', async () => {
  const p = await parties();
  const m = market();
  const honest = m.fillAmounts(65000n, 25n, 'sell', m.feeTierFor(10n ** 9n), m.feeTierFor(10n ** 9n));
  // taker (seller) pays 10 bps of 1_625_000 = 1625 cents = 25_000 sats at 65000; the buyer's rebate may not exceed it
  expect(honest).toMatchObject({ sellerFee: 1_625n, buyerFee: -12_500n });
  const greedy = { ...honest, buyerFee: -25_001n };
  const entriesBefore = (await db.pool.query(`SELECT 1 FROM wallet.journal_entries`)).rowCount;
  await expect(withTransaction(db.pool, (c) => settleTrade(c, message(p, greedy), assets))).rejects.toThrow(
    SettlementError,
  );
  // both sides rebated at once: refused too
  await expect(
    withTransaction(db.pool, (c) => settleTrade(c, message(p, { ...honest, sellerFee: -1n }), assets)),
  ).rejects.toThrow(/rebate/);
  expect((await db.pool.query(`SELECT 1 FROM wallet.journal_entries`)).rowCount).toBe(entriesBefore);
  // exactly the taker fee's worth is accepted
  await withTransaction(db.pool, (c) => settleTrade(c, message(p, { ...honest, buyerFee: -25_000n }), assets));
  expect((await userBalances(db.pool, p.buyer)).get('BTC')?.total).toBe(25_000_000n + 25_000n);
  await assertLedgerInvariants(db.pool);
});
