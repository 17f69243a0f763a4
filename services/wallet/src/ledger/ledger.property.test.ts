/**
 * Property: any sequence of deposits, holds, releases, settlements (including redeliveries and settlements after
 * their hold ended), withdrawals (requested, dispatched, completed, failed, cancelled) keeps the ledger invariants
 * 1–5 after every single step — checked with SQL against the real database by assertLedgerInvariants.
 * After every step each user's balances equal a model (deposits in, paid withdrawals out, fills at their amounts and
 * fees). Operations the ledger must refuse (overdraft, …) may fail, but only with a client error and without any
 * effect: every account is compared before and after.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { PayoutCompletedV1, PayoutFailedV1, SettleTradeV1 } from '@exchange/contracts/trading';
import { withTransaction } from '@exchange/db';
import { createTestDatabase, type TestDatabase } from '@exchange/db/testing';
import { AppError } from '@exchange/platform';
import { Assets } from '../assets.ts';
import {
  cancelWithdrawal,
  confirmNextDeposit,
  createDeposit,
  dispatchNextWithdrawal,
  parseWithdrawalLimits,
  requestWithdrawal,
} from '../funding/service.ts';
import { createHold, releaseHold } from './holds.ts';
import { runMigrations } from '../migrate.ts';
import { completePayout, failPayout, settleTrade } from '../settlement/service.ts';
import { assertLedgerInvariants } from '../testing/index.ts';

let db: TestDatabase;
const assets = new Assets();
const policy = () => ({
  limits: parseWithdrawalLimits(JSON.stringify({ '0': { BTC: '1000', USD: '1000000000' } }), assets),
  dispatchDelayMs: 0,
});

beforeAll(async () => {
  db = await createTestDatabase('wallet_prop');
  await runMigrations(db.pool);
});
afterAll(async () => {
  await db.drop();
});

type Op =
  | { op: 'deposit'; user: number; asset: 'USD' | 'BTC'; amount: bigint }
  | { op: 'hold'; user: number; asset: 'USD' | 'BTC'; amount: bigint }
  | { op: 'release'; pick: number }
  | { op: 'settle'; buy: number; sell: number; base: bigint; quote: bigint; feeBps: bigint }
  | { op: 'redeliver'; pick: number }
  | { op: 'withdraw'; user: number; asset: 'USD' | 'BTC'; amount: bigint }
  | { op: 'dispatch' }
  | { op: 'payout'; pick: number; ok: boolean }
  | { op: 'cancel'; pick: number };

const user = fc.nat({ max: 1 });
const asset = fc.constantFrom('USD' as const, 'BTC' as const);
const units = fc.bigInt({ min: 1n, max: 5_000_000n });
const big = fc.bigInt({ min: 1_000_000n, max: 50_000_000n });
const small = fc.bigInt({ min: 1n, max: 2_000_000n });
/** A trade's size as a share (basis points) of what its hold can still pay; above 10 000 over-captures. */
const share = fc.bigInt({ min: 1n, max: 11_000n });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('deposit' as const), user, asset, amount: big }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('hold' as const), user, asset, amount: units }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('release' as const), pick: fc.nat() }) },
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant('settle' as const),
      buy: fc.nat(),
      sell: fc.nat(),
      base: share,
      quote: share,
      feeBps: fc.bigInt({ min: 0n, max: 100n }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('redeliver' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('withdraw' as const), user, asset, amount: small }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('dispatch' as const) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('payout' as const), pick: fc.nat(), ok: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('cancel' as const), pick: fc.nat() }) },
);

/** Refusals the ledger is allowed to answer with; anything else fails the property. */
const EXPECTED = new Set([
  'INSUFFICIENT_FUNDS',
  'AMOUNT_BELOW_MINIMUM',
  'AMOUNT_ABOVE_MAXIMUM',
  'VELOCITY_LIMIT_EXCEEDED',
  'WITHDRAWAL_NOT_CANCELLABLE',
  'HOLD_EXCEEDED',
]);

/** Every account's balance and held amount, system accounts included. */
async function accountsSnapshot(): Promise<string> {
  const { rows } = await db.pool.query(
    `SELECT kind, user_id::text, asset, balance::text, held::text FROM wallet.accounts ORDER BY id`,
  );
  return JSON.stringify(rows);
}

/**
 * Run an operation the ledger may refuse. A refusal must be one of EXPECTED and must have changed nothing: every
 * account is compared before and after. Resolves with whether it was applied.
 */
async function tolerate(op: () => Promise<unknown>): Promise<boolean> {
  const before = await accountsSnapshot();
  try {
    await op();
    return true;
  } catch (e) {
    if (!(e instanceof AppError && EXPECTED.has(e.code))) throw e;
    expect(await accountsSnapshot()).toBe(before);
    return false;
  }
}

/** The balances each user should have: deposits in, withdrawals paid out, and fills at the message's amounts. */
class BalanceModel {
  private readonly totals = new Map<string, bigint>();
  add(user: string, asset: string, amount: bigint): void {
    const k = `${user}/${asset}`;
    this.totals.set(k, (this.totals.get(k) ?? 0n) + amount);
  }
  async check(users: string[]): Promise<void> {
    const { rows } = await db.pool.query<{ user_id: string; asset: string; balance: string }>(
      `SELECT user_id::text, asset, balance::text FROM wallet.accounts WHERE kind = 'user' AND user_id = ANY($1::uuid[])`,
      [users],
    );
    const actual = Object.fromEntries(
      rows.filter((r) => r.balance !== '0').map((r) => [`${r.user_id}/${r.asset}`, r.balance]),
    );
    const expected = Object.fromEntries(
      [...this.totals].filter(([, v]) => v !== 0n).map(([k, v]) => [k, v.toString()]),
    );
    expect(actual).toEqual(expected);
  }
}

/** What a hold can still pay: its remaining amount, or after a release what the release gave back. */
async function capturable(holdId: string): Promise<bigint> {
  const { rows } = await db.pool.query<{ n: string }>(
    `SELECT (CASE WHEN status = 'active' THEN amount - captured - released
                  WHEN status = 'released' THEN released - late_captured ELSE 0 END)::text AS n
       FROM wallet.holds WHERE id = $1`,
    [holdId],
  );
  return BigInt(rows[0]!.n);
}

const pick = <T>(xs: T[], i: number): T | undefined => (xs.length ? xs[i % xs.length] : undefined);

test('every step of any operation sequence keeps ledger invariants 1–5 and every balance at the model', async () => {
  const applied = { settle: 0, lateCapture: 0, payout: 0, withdraw: 0 };
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 5, maxLength: 30 }), async (ops) => {
      const users = [randomUUID(), randomUUID(), randomUUID()];
      const holds: Array<{ id: string; user: string; asset: string }> = [];
      const trades: Array<ReturnType<typeof SettleTradeV1.create>> = [];
      const withdrawals: string[] = [];
      const model = new BalanceModel();
      // Everyone starts with some funds, so holds and trades are mostly possible (overdrafts still happen).
      for (const u of users) {
        for (const a of ['USD', 'BTC']) {
          await createDeposit(db.pool, { userId: u, asset: a, amount: 20_000_000n, confirmationMs: 0 });
          await confirmNextDeposit(db.pool);
          model.add(u, a, 20_000_000n);
        }
      }
      for (const o of ops) {
        switch (o.op) {
          case 'deposit': {
            await createDeposit(db.pool, {
              userId: users[o.user]!,
              asset: o.asset,
              amount: o.amount,
              confirmationMs: 0,
            });
            await confirmNextDeposit(db.pool);
            model.add(users[o.user]!, o.asset, o.amount);
            break;
          }
          case 'hold': {
            const id = randomUUID();
            await tolerate(() =>
              withTransaction(db.pool, (c) =>
                createHold(c, {
                  holdId: id,
                  userId: users[o.user]!,
                  asset: o.asset,
                  amount: o.amount,
                  reason: 'order',
                  refType: 'order',
                  refId: id,
                }),
              ).then(() => holds.push({ id, user: users[o.user]!, asset: o.asset })),
            );
            break;
          }
          case 'release': {
            const h = pick(holds, o.pick);
            if (h) await withTransaction(db.pool, (c) => releaseHold(c, h.id, 'done', 'order'));
            break;
          }
          case 'settle': {
            // Mostly holds that can still pay (ended ones come back through releases and over-captures).
            const open = async (asset: string) => {
              const all = holds.filter((h) => h.asset === asset);
              const payable = [];
              for (const h of all) if ((await capturable(h.id)) > 0n) payable.push(h);
              return payable.length ? payable : all;
            };
            // No order on one side yet: place one (hold its funds) first.
            for (const [asset, i] of [
              ['USD', o.buy],
              ['BTC', o.sell],
            ] as const) {
              if (holds.some((h) => h.asset === asset)) continue;
              const id = randomUUID();
              const u = users[i % users.length]!;
              await tolerate(() =>
                withTransaction(db.pool, (c) =>
                  createHold(c, {
                    holdId: id,
                    userId: u,
                    asset,
                    amount: 1_000_000n,
                    reason: 'order',
                    refType: 'order',
                    refId: id,
                  }),
                ).then(() => holds.push({ id, user: u, asset })),
              );
            }
            const b = pick(await open('USD'), o.buy);
            const s = pick(await open('BTC'), o.sell);
            if (!b || !s) break;
            const base = ((await capturable(s.id)) * o.base) / 10_000n || 1n;
            const quote = ((await capturable(b.id)) * o.quote) / 10_000n || 1n;
            const msg = SettleTradeV1.create(
              {
                tradeId: randomUUID(),
                market: 'BTC-USD',
                baseAsset: 'BTC',
                quoteAsset: 'USD',
                buyer: { userId: b.user, orderId: b.id },
                seller: { userId: s.user, orderId: s.id },
                baseAmount: base.toString(),
                quoteAmount: quote.toString(),
                buyerFee: ((base * o.feeBps) / 10_000n).toString(),
                sellerFee: ((quote * o.feeBps + 9_999n) / 10_000n).toString(),
                executedAt: new Date().toISOString(),
              },
              { producer: 'prop' },
            );
            await tolerate(() =>
              withTransaction(db.pool, (c) => settleTrade(c, msg, assets)).then(() => {
                applied.settle++;
                trades.push(msg);
                model.add(b.user, 'USD', -quote);
                model.add(b.user, 'BTC', base - BigInt(msg.payload.buyerFee));
                model.add(s.user, 'BTC', -base);
                model.add(s.user, 'USD', quote - BigInt(msg.payload.sellerFee));
              }),
            );
            break;
          }
          case 'redeliver': {
            const t = pick(trades, o.pick);
            if (t) expect(await withTransaction(db.pool, (c) => settleTrade(c, t, assets))).toBe('duplicate');
            break;
          }
          case 'withdraw': {
            const amount = assets.format(o.asset, o.amount);
            await tolerate(() =>
              requestWithdrawal(db.pool, assets, policy(), {
                userId: users[o.user]!,
                asset: o.asset,
                amount,
                address: o.asset === 'USD' ? 'DE89370400440532013000' : 'bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq',
              }).then((w) => {
                applied.withdraw++;
                withdrawals.push(w.id);
              }),
            );
            break;
          }
          case 'dispatch':
            while (await dispatchNextWithdrawal(db.pool));
            break;
          case 'payout': {
            const id = pick(withdrawals, o.pick);
            if (!id) break;
            // The payment-processor only answers withdrawals it was asked to pay: dispatch what is due first.
            while (await dispatchNextWithdrawal(db.pool));
            const { rows } = await db.pool.query<{ status: string }>(
              `SELECT status FROM wallet.withdrawals WHERE id = $1`,
              [id],
            );
            if (rows[0]?.status !== 'processing') break;
            const at = new Date().toISOString();
            applied.payout++;
            if (o.ok) {
              const m = PayoutCompletedV1.create(
                { withdrawalId: id, railTxId: `rail-${id}`, completedAt: at },
                { producer: 'prop' },
              );
              await withTransaction(db.pool, (c) => completePayout(c, m));
              expect(await withTransaction(db.pool, (c) => completePayout(c, m))).toBe('duplicate');
              const w = await db.pool.query<{ user_id: string; asset: string; out: string }>(
                `SELECT user_id::text, asset, (amount + fee)::text AS out FROM wallet.withdrawals WHERE id = $1`,
                [id],
              );
              model.add(w.rows[0]!.user_id, w.rows[0]!.asset, -BigInt(w.rows[0]!.out));
            } else {
              const m = PayoutFailedV1.create(
                { withdrawalId: id, reason: 'rail down', failedAt: at },
                { producer: 'prop' },
              );
              await withTransaction(db.pool, (c) => failPayout(c, m));
              expect(await withTransaction(db.pool, (c) => failPayout(c, m))).toBe('duplicate');
            }
            break;
          }
          case 'cancel': {
            const id = pick(withdrawals, o.pick);
            if (!id) break;
            const { rows } = await db.pool.query<{ user_id: string }>(
              `SELECT user_id::text FROM wallet.withdrawals WHERE id = $1`,
              [id],
            );
            await tolerate(() => cancelWithdrawal(db.pool, rows[0]!.user_id, id));
            break;
          }
        }
        await assertLedgerInvariants(db.pool);
        await model.check(users);
      }
    }),
    { numRuns: 40 },
  );
  const late = await db.pool.query<{ n: string }>(
    `SELECT count(*)::text AS n FROM wallet.holds WHERE late_captured > 0`,
  );
  applied.lateCapture = Number(late.rows[0]!.n);
  // The generator really reaches the interesting paths (not just refusals).
  expect(applied.settle).toBeGreaterThan(30);
  expect(applied.withdraw).toBeGreaterThan(10);
  expect(applied.payout).toBeGreaterThan(0);
  expect(applied.lateCapture).toBeGreaterThan(2);
}, 300_000);
