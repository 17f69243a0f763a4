/**
 * The settlement consumer's group commit writes a batch of trades with set-based statements (`settleTrades` →
 * `postEntries`). It must leave exactly what settling the same trades one after the other leaves — balances, holds,
 * postings with their running balances, settlement rows, outbox messages — or, when one trade cannot be settled, fail
 * whole with that trade's error. Checked as a property against the one-by-one path on two databases given the same
 * history, then end to end through the real broker with a poison trade inside a batch.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { ReleaseHoldV1, SettleTradeV1 } from '@exchange/contracts/trading';
import type { Envelope } from '@exchange/contracts';
import { withTransaction, type Pool } from '@exchange/db';
import { createTestDatabase, recordStatements, type TestDatabase } from '@exchange/db/testing';
import { COMMANDS_EXCHANGE, createMessaging, silentLogger, type Messaging } from '@exchange/messaging';
import { createTestVhost, type TestVhost } from '@exchange/messaging/testing';
import { AppError, promClient } from '@exchange/platform';
import { Assets } from '../assets.ts';
import { releaseHold } from '../ledger/holds.ts';
import { userBalances } from '../ledger/service.ts';
import { runMigrations } from '../migrate.ts';
import { SETTLEMENT_QUEUE, startConsumers } from '../messaging/queues.ts';
import { settleTrade, settleTrades } from './service.ts';
import { settlementHandler } from '../messaging/settlement.ts';
import {
  assertLedgerInvariants,
  fundUser,
  placeOrderHold,
  settleTradeMessage,
  tradeParties,
} from '../testing/index.ts';

const assets = new Assets();
let one: TestDatabase;
let many: TestDatabase;

beforeAll(async () => {
  [one, many] = await Promise.all([createTestDatabase('wallet_sbatch_one'), createTestDatabase('wallet_sbatch_many')]);
  await Promise.all([runMigrations(one.pool), runMigrations(many.pool)]);
});
afterAll(async () => {
  await one?.drop();
  await many?.drop();
});

type Trade = Envelope<ReturnType<typeof SettleTradeV1.validate>['payload']>;

interface World {
  users: string[];
  /** Order holds: id, owner, asset. */
  holds: Array<{ id: string; user: string; asset: 'USD' | 'BTC' }>;
  /** Holds released before the trades arrive (a settlement overtaken by its order's release). */
  released: Set<string>;
}

/** The same history in a database: users funded, order holds placed, some released. */
async function build(pool: Pool, w: World) {
  for (const u of w.users) {
    await fundUser(pool, u, 'USD', 2_000_000n);
    await fundUser(pool, u, 'BTC', 300_000_000n);
  }
  await withTransaction(pool, async (c) => {
    for (const h of w.holds) {
      const amount = h.asset === 'USD' ? 400_000n : 60_000_000n;
      await placeOrderHold(c, { holdId: h.id, userId: h.user, asset: h.asset, amount });
    }
  });
  for (const id of w.released) await withTransaction(pool, (c) => releaseHold(c, id, 'filled', 'order'));
}

/** Where a database's ledger and outbox stood before a run: the run's rows come after it. */
async function mark(pool: Pool) {
  const { rows } = await pool.query<{ entry: string; outbox: string }>(
    `SELECT (SELECT coalesce(max(id), 0) FROM wallet.journal_entries)::text AS entry,
            (SELECT coalesce(max(sequence), 0) FROM wallet.outbox)::text AS outbox`,
  );
  return rows[0]!;
}

/**
 * Everything a settlement writes in one run, without ids and clocks. Each run has users and holds of its own (random
 * ids), so runs share only the fee accounts, which both databases have posted the same amounts to so far.
 */
async function state(pool: Pool, w: World, since: { entry: string; outbox: string }) {
  // deposits are made with random ids in each database
  const key = `CASE WHEN e.reason = 'deposit' THEN 'deposit' ELSE e.idempotency_key END`;
  const q = async (sql: string, params: unknown[]) => (await pool.query(sql, params)).rows;
  return {
    accounts: await q(
      `SELECT kind, user_id::text, asset, balance::text, held::text FROM wallet.accounts
        WHERE user_id = ANY($1::uuid[]) OR kind <> 'user' ORDER BY kind, user_id, asset`,
      [w.users],
    ),
    holds: await q(
      `SELECT id::text, amount::text, captured::text, released::text, late_captured::text, status,
              release_reason, closed_at IS NULL AS open FROM wallet.holds WHERE id = ANY($1::uuid[]) ORDER BY id`,
      [w.holds.map((h) => h.id)],
    ),
    postings: await q(
      `SELECT ${key} AS idempotency_key, a.kind, a.user_id::text, p.asset, p.amount::text,
              p.balance_after::text, p.memo
         FROM wallet.postings p JOIN wallet.journal_entries e ON e.id = p.entry_id
         JOIN wallet.accounts a ON a.id = p.account_id WHERE p.entry_id > $1 ORDER BY p.id`,
      [since.entry],
    ),
    entries: await q(
      `SELECT ${key} AS idempotency_key, reason, ref_type, ${key} AS ref FROM wallet.journal_entries e
        WHERE id > $1 ORDER BY id`,
      [since.entry],
    ),
    settlements: await q(
      `SELECT s.trade_id::text, s.market, s.message_id, e.idempotency_key
         FROM wallet.settlements s JOIN wallet.journal_entries e ON e.id = s.entry_id
        WHERE s.entry_id > $1 ORDER BY s.trade_id`,
      [since.entry],
    ),
    outbox: (
      await q(`SELECT type, routing_key, message FROM wallet.outbox WHERE sequence > $1 ORDER BY sequence`, [
        since.outbox,
      ])
    ).map((r) => ({
      type: r.type as string,
      routingKey: r.routing_key as string,
      tradeId: (r.message as Envelope<{ tradeId?: string }>).payload.tradeId,
      causationId: (r.message as Envelope).causationId,
    })),
  };
}

/**
 * The same world and messages under fresh ids (one new id per old one, so repeats stay repeats): the databases keep
 * every run's rows, and fast-check runs a shrunk counterexample again with the ids it generated before.
 */
function renew<T>([w, rest]: [World, T]): [World, T] {
  const ids = new Map<string, string>();
  const swap = (text: string) =>
    text.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, (id) => {
      if (!ids.has(id)) ids.set(id, randomUUID());
      return ids.get(id)!;
    });
  const world = JSON.parse(swap(JSON.stringify({ ...w, released: [...w.released] }))) as World & {
    released: string[];
  };
  return [{ ...world, released: new Set(world.released) }, JSON.parse(swap(JSON.stringify(rest))) as T];
}

const errorOf = (e: unknown) => (e instanceof AppError ? e.code : e instanceof Error ? e.name : String(e));

const worldArb = fc
  .record({
    users: fc.integer({ min: 2, max: 4 }),
    holdsPerUser: fc.integer({ min: 1, max: 3 }),
    releasedPicks: fc.array(fc.nat(), { maxLength: 2 }),
  })
  .map(({ users, holdsPerUser, releasedPicks }) => {
    const us = Array.from({ length: users }, () => randomUUID());
    const holds = us.flatMap((user) =>
      Array.from({ length: 2 * holdsPerUser }, (_, i) => ({
        id: randomUUID(),
        user,
        asset: (i % 2 === 0 ? 'USD' : 'BTC') as 'USD' | 'BTC',
      })),
    );
    return { users: us, holds, released: new Set(releasedPicks.map((p) => holds[p % holds.length]!.id)) };
  });

/**
 * Trades between the world's holds: shared holds (a taker against several makers), repeats, some too large. `small`
 * trades rarely exhaust a hold, so that batches with releases in them mostly settle.
 */
const tradesArb = (w: World, small = false) =>
  fc
    .array(
      fc.record({
        buy: fc.nat(),
        sell: fc.nat(),
        base: fc.bigInt({ min: 1n, max: small ? 8_000_000n : 40_000_000n }),
        quote: fc.bigInt({ min: 1n, max: small ? 50_000n : 250_000n }),
        sellerFeeBps: fc.bigInt({ min: -2n, max: 20n }),
        buyerFeeBps: fc.bigInt({ min: 0n, max: 20n }),
        repeat: fc.nat({ max: 5 }),
      }),
      { minLength: 1, maxLength: 12 },
    )
    .map((specs) => {
      const usd = w.holds.filter((h) => h.asset === 'USD');
      const btc = w.holds.filter((h) => h.asset === 'BTC');
      const out: Trade[] = [];
      for (const s of specs) {
        if (s.repeat === 0 && out.length) {
          out.push(out[s.buy % out.length]!); // the same trade again (a redelivery under its id)
          continue;
        }
        const b = usd[s.buy % usd.length]!;
        const a = btc[s.sell % btc.length]!;
        // a rebate for the maker, never larger than the taker's fee (both sides negative is refused by design)
        const sellerFee = (s.quote * s.sellerFeeBps) / 10_000n;
        const buyerFee = sellerFee < 0n ? (s.base * 20n) / 10_000n : (s.base * s.buyerFeeBps) / 10_000n;
        const sides = { buyer: b.user, buyOrder: b.id, seller: a.user, sellOrder: a.id };
        out.push(settleTradeMessage(sides, { base: s.base, quote: s.quote, buyerFee, sellerFee }) as Trade);
      }
      return out;
    });

test('a batch of trades leaves exactly what settling them one by one leaves (or fails whole with the same error)', async () => {
  let batches = 0;
  let failed = 0;
  await fc.assert(
    fc.asyncProperty(
      worldArb.chain((w) => fc.tuple(fc.constant(w), tradesArb(w))),
      async (generated) => {
        const [w, trades] = renew(generated);
        const [sinceOne, sinceMany] = await Promise.all([mark(one.pool), mark(many.pool)]);
        await Promise.all([build(one.pool, w), build(many.pool, w)]);
        // one by one, in one transaction (what the consumer's batch did before set-based settlement)
        let oneErr: string | undefined;
        let oneResults: string[] = [];
        try {
          oneResults = await withTransaction(one.pool, async (c) => {
            const r: string[] = [];
            for (const t of trades) r.push(await settleTrade(c, t, assets));
            return r;
          });
        } catch (e) {
          oneErr = errorOf(e);
        }
        let manyErr: string | undefined;
        let manyResults: string[] = [];
        try {
          manyResults = await withTransaction(many.pool, (c) => settleTrades(c, trades, assets));
        } catch (e) {
          manyErr = errorOf(e);
        }
        batches++;
        if (oneErr) failed++;
        expect(manyErr).toBe(oneErr);
        expect(manyResults).toEqual(oneResults);
        expect(await state(many.pool, w, sinceMany)).toEqual(await state(one.pool, w, sinceOne));
        await assertLedgerInvariants(many.pool);
      },
    ),
    { numRuns: 30 },
  );
  // the property saw both kinds of batch: some settle, some are refused (over-capture, a spent hold)
  expect(failed).toBeGreaterThan(0);
  expect(failed).toBeLessThan(batches);
}, 300_000);

/**
 * Trades with their orders' releases among them: a release right after an order's last trade (what the engine
 * sends), sometimes early (a settlement overtaken), with or without what the order's trades filled (sometimes
 * wrong), releases of holds that ended already, of another user's hold, of an unknown hold, twice.
 */
const mixedArb = (w: World) =>
  fc
    .tuple(
      tradesArb(w, true),
      fc.array(
        fc.record({
          // mostly where the engine puts it (after the order's last trade), sometimes anywhere (overtaken)
          early: fc.constantFrom(false, false, false, true),
          at: fc.nat(),
          hold: fc.nat(),
          // wrong fills and odd releases stay rare: a batch holds several releases, and one bad one fails it all
          filled: fc
            .integer({ min: 0, max: 9 })
            .map((n) => (n === 0 ? 'less' : n === 1 ? 'more' : n < 6 ? 'none' : 'exact')),
          odd: fc.integer({ min: 0, max: 19 }).map((n) => (n === 0 ? 'other-user' : n === 1 ? 'unknown' : 'no')),
        }),
        { maxLength: 8 },
      ),
    )
    .map(([trades, specs]) => {
      const out: Envelope[] = [...trades];
      for (const s of specs) {
        const h = w.holds[s.hold % w.holds.length]!;
        const names = (m: Envelope) =>
          m.type === SettleTradeV1.type &&
          ((m as Trade).payload.buyer.orderId === h.id || (m as Trade).payload.seller.orderId === h.id);
        const last = out.findLastIndex(names);
        const at = s.early || last < 0 ? s.at % (out.length + 1) : last + 1;
        // what the trades before it name of this hold (the engine's filledBase/filledQuote)
        let base = 0n;
        let quote = 0n;
        for (const m of out.slice(0, at)) {
          if (m.type !== SettleTradeV1.type) continue;
          const p = (m as Trade).payload;
          if (p.buyer.orderId === h.id || p.seller.orderId === h.id) {
            base += BigInt(p.baseAmount);
            quote += BigInt(p.quoteAmount);
          }
        }
        const off = (v: bigint) => (s.filled === 'less' && v > 0n ? v - 1n : s.filled === 'more' ? v + 1n : v);
        const filled =
          s.filled === 'none'
            ? {}
            : {
                market: 'BTC-USD',
                baseAsset: 'BTC',
                quoteAsset: 'USD',
                filledBase: (h.asset === 'BTC' ? off(base) : base).toString(),
                filledQuote: (h.asset === 'USD' ? off(quote) : quote).toString(),
              };
        const release = ReleaseHoldV1.create(
          {
            holdId: s.odd === 'unknown' ? randomUUID() : h.id,
            userId: s.odd === 'other-user' ? w.users.find((u) => u !== h.user)! : h.user,
            reason: 'cancelled',
            ...filled,
          },
          { producer: 'payment-processor' },
        );
        out.splice(at, 0, release);
      }
      return out;
    });

test('a batch of trades and releases leaves exactly what applying them one by one leaves (or the same error)', async () => {
  const handler = settlementHandler(assets);
  let batches = 0;
  let failed = 0;
  let releases = 0;
  await fc.assert(
    fc.asyncProperty(
      worldArb.chain((w) => fc.tuple(fc.constant(w), mixedArb(w))),
      async (generated) => {
        const [w, messages] = renew(generated);
        const [sinceOne, sinceMany] = await Promise.all([mark(one.pool), mark(many.pool)]);
        await Promise.all([build(one.pool, w), build(many.pool, w)]);
        let oneErr: string | undefined;
        try {
          await withTransaction(one.pool, async (c) => {
            for (const m of messages) await handler(m, c);
          });
        } catch (e) {
          oneErr = errorOf(e);
        }
        let manyErr: string | undefined;
        try {
          await withTransaction(many.pool, (c) => handler.batch(messages, c));
        } catch (e) {
          manyErr = errorOf(e);
        }
        batches++;
        if (oneErr) failed++;
        else releases += messages.filter((m) => m.type === ReleaseHoldV1.type).length;
        expect(manyErr).toBe(oneErr);
        expect(await state(many.pool, w, sinceMany)).toEqual(await state(one.pool, w, sinceOne));
        await assertLedgerInvariants(many.pool);
      },
    ),
    { numRuns: 40 },
  );
  expect(failed).toBeGreaterThan(0);
  expect(failed).toBeLessThan(batches);
  expect(releases).toBeGreaterThan(0);
}, 300_000);

test('a batch of trades locks its accounts and holds in one statement, then is written by one, the same for any batch', async () => {
  // The settlement holds its accounts' locks until it commits; a hold of the same user waits for them meanwhile, so
  // the statements from the first lock to the commit are two: the locks, and the writes.
  const parties = () =>
    tradeParties(many.pool, {
      buyerUsd: 10_000_000n,
      sellerBtc: 1_000_000_000n,
      buyHold: 1_000_000n,
      sellHold: 300_000_000n,
    });
  const settle = async (n: number) => {
    const p = await parties();
    const trades = Array.from({ length: n }, () =>
      settleTradeMessage(p, { base: 1_000_000n, quote: 60_000n, buyerFee: 100n, sellerFee: 6n }),
    );
    const client = await many.pool.connect();
    try {
      await client.query('BEGIN');
      const texts = await recordStatements(client, async () => {
        expect(await settleTrades(client, trades, assets)).toEqual(trades.map(() => 'settled'));
      });
      await client.query('COMMIT');
      return texts;
    } finally {
      client.release();
    }
  };
  // the fee accounts exist and are cached from here on (the call that creates them cannot cache them: its
  // transaction might roll back; the next one finds them committed)
  await settle(1);
  await settle(1);
  const [single, three] = [await settle(1), await settle(3)];
  for (const texts of [single, three]) {
    const fromLock = texts.slice(texts.findIndex((t) => /\bFOR UPDATE\b/.test(t)));
    expect(fromLock).toHaveLength(2);
    expect(fromLock[0]).toMatch(/wallet\.accounts[\s\S]*FOR UPDATE[\s\S]*wallet\.holds[\s\S]*FOR UPDATE/);
    expect(fromLock[1]).toMatch(/ledger_postings[\s\S]*wallet\.settlements[\s\S]*outbox/);
  }
  expect(three).toEqual(single);
});

describe('through the broker: the consumer batches settlements', () => {
  let db: TestDatabase;
  let vhost: TestVhost;
  let messaging: Messaging;
  const registry = new promClient.Registry();

  beforeAll(async () => {
    db = await createTestDatabase('wallet_sbatch_broker');
    vhost = await createTestVhost('wallet_sbatch');
    await runMigrations(db.pool);
    messaging = createMessaging({
      url: vhost.url,
      service: 'wallet',
      pool: db.pool,
      schema: 'wallet',
      logger: silentLogger,
      registry,
      relay: false,
    });
    await messaging.start();
  });
  afterAll(async () => {
    await messaging?.close();
    await vhost?.drop();
    await db?.drop();
  });

  const consumedBy = async (outcome: string) =>
    ((await registry.getSingleMetric('messages_consumed_total')?.get())?.values ?? [])
      .filter((v) => v.labels.queue === 'wallet.settlement' && v.labels.outcome === outcome)
      .reduce((n, v) => n + v.value, 0);

  test('a poison trade inside a batch: the batch splits, every good trade is settled once, the poison dead-lettered', async () => {
    const p = await tradeParties(db.pool, {
      buyerUsd: 10_000_000n,
      sellerBtc: 1_000_000_000n,
      buyHold: 3_000_000n,
      sellHold: 600_000_000n,
    });
    const { buyer, seller, sellOrder } = p;
    const trade = (base: bigint, quote: bigint) => settleTradeMessage(p, { base, quote, sellerFee: quote / 1_000n });
    // 40 trades of 0.1 BTC for $500 (the holds cover 30 of the USD side exactly: 30 × 100,000 = 3,000,000 cents)
    const good = Array.from({ length: 30 }, () => trade(10_000_000n, 100_000n));
    // the poison: it captures more than the buyer's hold reserves (and the release below gave nothing back yet)
    const poison = trade(10_000_000n, 5_000_000n);
    const messages: Envelope[] = [...good.slice(0, 15), poison, good[3]!, ...good.slice(15)];
    // the release after all of its order's trades: the hold ends with nothing left
    const release = ReleaseHoldV1.create(
      {
        holdId: sellOrder,
        userId: seller,
        reason: 'cancelled',
        market: 'BTC-USD',
        baseAsset: 'BTC',
        quoteAsset: 'USD',
        filledBase: (30n * 10_000_000n).toString(),
        filledQuote: (30n * 100_000n).toString(),
      },
      { producer: 'payment-processor' },
    );
    messages.push(release);
    // everything is in the queue before the consumer starts, so it really takes them in batches
    const fast = { retry: { attempts: 1, backoffMs: [100] } };
    await messaging.declareQueue({ ...SETTLEMENT_QUEUE, ...fast });
    for (const m of messages) {
      await messaging.publisher.publish(COMMANDS_EXCHANGE, 'wallet.settlement', Buffer.from(JSON.stringify(m)), {
        messageId: m.id,
        persistent: true,
        contentType: 'application/json',
      });
    }
    const consumers = await startConsumers(messaging, assets, silentLogger, fast, undefined, 16);
    try {
      const until = Date.now() + 30_000;
      for (;;) {
        const dead = (await db.pool.query(`SELECT count(*)::int AS n FROM wallet.dead_letters`)).rows[0].n as number;
        const inbox = (await db.pool.query(`SELECT count(*)::int AS n FROM wallet.inbox`)).rows[0].n as number;
        if (dead >= 1 && inbox >= good.length + 1) break; // the 30 trades (the copy is a duplicate) + the release
        if (Date.now() > until) throw new Error(`not settled in time: ${inbox} applied, ${dead} dead`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      for (const c of consumers) await c.stop();
    }
    expect(await consumedBy('batch_split')).toBeGreaterThan(0); // the poison's batch really was split
    const settled = (await db.pool.query(`SELECT trade_id::text FROM wallet.settlements ORDER BY trade_id`)).rows.map(
      (r) => r.trade_id as string,
    );
    expect(settled).toEqual(good.map((t) => t.payload.tradeId).sort());
    const dead = (await db.pool.query(`SELECT message_id FROM wallet.dead_letters`)).rows.map((r) => r.message_id);
    expect(dead).toEqual([poison.id]);
    expect((await userBalances(db.pool, buyer)).get('BTC')?.total).toBe(30n * 10_000_000n);
    expect((await userBalances(db.pool, buyer)).get('USD')).toMatchObject({ total: 7_000_000n, held: 0n });
    expect((await userBalances(db.pool, seller)).get('USD')?.total).toBe(30n * (100_000n - 100n));
    expect((await userBalances(db.pool, seller)).get('BTC')).toMatchObject({ total: 700_000_000n, held: 0n });
    const outbox = (
      await db.pool.query(
        `SELECT message->'payload'->>'tradeId' AS t FROM wallet.outbox WHERE type = 'wallet.trade-settled'`,
      )
    ).rows;
    expect(outbox.map((r) => r.t as string).sort()).toEqual(good.map((t) => t.payload.tradeId).sort());
    await assertLedgerInvariants(db.pool);
  }, 60_000);
});
