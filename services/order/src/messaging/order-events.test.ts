/**
 * The `order.events` consumer's group commit applies a batch's order updates in one statement
 * (`applyEngineUpdates`) after the batch's other events. It must leave exactly what handling the same events one
 * after the other leaves: checked as a property on two databases with the same orders, with updates repeated, out of
 * order, for unknown orders, for the wrong user, with and without a fired stop, between trades and book snapshots.
 * Its trades are written in one statement too (`applyTrades`): the tape, fills (and their order), candles, daily
 * volumes and the last trade must match as well, with trades sent twice, ties in seq, several markets and candle
 * buckets.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import type { Envelope, PayloadOf } from '@exchange/contracts';
import { loadCatalog } from '@exchange/contracts/markets';
import { BookSnapshotV1, OrderUpdatedV1, TradeExecutedV1 } from '@exchange/contracts/trading';
import { withTransaction, type Pool } from '@exchange/db';
import { createTestDatabase, type TestDatabase } from '@exchange/db/testing';
import { silentLogger } from '@exchange/messaging';
import { runMigrations } from '../migrate.ts';
import { orderEventsHandler } from './order-events.ts';

let one: TestDatabase;
let many: TestDatabase;

beforeAll(async () => {
  [one, many] = await Promise.all([createTestDatabase('order_ev_one'), createTestDatabase('order_ev_many')]);
  await Promise.all([runMigrations(one.pool), runMigrations(many.pool)]);
});
afterAll(async () => {
  await one?.drop();
  await many?.drop();
});

interface World {
  orders: Array<{ id: string; user: string; lastSeq: number | null; stopFired: boolean }>;
}

async function build(pool: Pool, w: World) {
  for (const o of w.orders) {
    await pool.query(
      `INSERT INTO orders.orders (id, user_id, request_hash, market, side, type, price_ticks, quantity_lots,
                                  time_in_force, hold_asset, hold_amount, status, last_seq, stop_triggered_at)
       VALUES ($1, $2, 'h', 'BTC-USD', 'buy', 'limit', 100, 10, 'gtc', 'USD', 1000, 'new', $3,
               CASE WHEN $4 THEN now() - interval '1 hour' END)`,
      [o.id, o.user, o.lastSeq, o.stopFired],
    );
  }
}

/** What the trades write: whole tables, as both databases see the same runs in the same order. */
const projections = async (pool: Pool) => ({
  trades: (
    await pool.query(
      `SELECT trade_id::text, market, seq::text, price_ticks::text, quantity_lots::text, quote_amount::text, taker_side,
              executed_at FROM orders.trades ORDER BY trade_id`,
    )
  ).rows,
  fills: (
    await pool.query(
      `SELECT trade_id::text, order_id::text, user_id::text, market, side, liquidity, price_ticks::text,
              quantity_lots::text, base_amount::text, quote_amount::text, fee::text, fee_asset, executed_at
         FROM orders.fills ORDER BY id`,
    )
  ).rows,
  candles: (
    await pool.query(
      `SELECT market, interval, open_time, open_ticks::text, open_seq::text, high_ticks::text, low_ticks::text,
              close_ticks::text, close_seq::text, volume_lots::text, quote_volume::text, trades
         FROM orders.candles ORDER BY market, interval, open_time`,
    )
  ).rows,
  volumes: (
    await pool.query(
      'SELECT user_id::text, market, day::text, quote_volume::text FROM orders.volume_daily ORDER BY 1, 2, 3',
    )
  ).rows,
  lastTrades: (
    await pool.query(
      'SELECT market, last_trade_ticks::text, last_trade_seq::text, last_trade_at FROM orders.market_state ORDER BY 1',
    )
  ).rows,
});

/** What the updates write, for the run's orders. */
const state = async (pool: Pool, w: World) =>
  (
    await pool.query(
      `SELECT id::text, status, filled_lots::text, filled_notional::text, reason, last_seq::text,
              stop_triggered_at IS NOT NULL AS stopped, stop_triggered_at < now() - interval '1 minute' AS old_stop,
              (SELECT count(*) FROM orders.fills f WHERE f.order_id = o.id)::int AS fills
         FROM orders.orders o WHERE id = ANY($1::uuid[]) ORDER BY id`,
      [w.orders.map((o) => o.id)],
    )
  ).rows;

const worldArb = fc.array(fc.record({ lastSeq: fc.option(fc.integer({ min: 1, max: 6 })), stopFired: fc.boolean() }), {
  minLength: 1,
  maxLength: 5,
});

/** Fresh ids on every run (a shrunk counterexample runs again against the same databases). */
const materialise = (os: Array<{ lastSeq: number | null; stopFired: boolean }>): World => ({
  orders: os.map((o) => ({ id: randomUUID(), user: randomUUID(), ...o })),
});

const STATUSES = ['new', 'partially_filled', 'filled', 'cancelled'] as const;

const eventSpecs = fc.array(
  fc.record({
    kind: fc.constantFrom('update', 'update', 'update', 'trade', 'trade', 'trade-again', 'book'),
    order: fc.nat(),
    other: fc.nat(),
    seq: fc.integer({ min: 1, max: 12 }),
    status: fc.constantFrom(...STATUSES),
    lots: fc.integer({ min: 0, max: 10 }),
    odd: fc.constantFrom('no', 'no', 'no', 'no', 'unknown', 'wrong-user'),
    stop: fc.boolean(),
    reason: fc.option(fc.constantFrom('user_cancel', 'ioc_unfilled')),
    price: fc.integer({ min: 1, max: 300 }),
    minutes: fc.constantFrom(0, 0, 1, 7, 61, 1500),
    market: fc.constantFrom('BTC-USD', 'BTC-USD', 'ETH-USD'),
  }),
  { minLength: 1, maxLength: 14 },
);

type EventSpec = typeof eventSpecs extends fc.Arbitrary<Array<infer T>> ? T : never;

let run = 0;

/**
 * Each run trades in its own days and above the seqs of the runs before, so its candles are new and its last trade
 * is the market's: ties and order within the batch decide them, not what earlier runs left.
 */
const events = (w: World, specs: EventSpec[]) => {
  run++;
  const start = Date.UTC(2030, 0, 1) + run * 4 * 86_400_000;
  const trades: Envelope[] = [];
  return specs.map((s): Envelope => {
    const o = w.orders[s.order % w.orders.length]!;
    const at = new Date(start + s.minutes * 60_000).toISOString();
    const meta = { producer: 'payment-processor' };
    if (s.kind === 'trade-again' && trades.length > 0) {
      // the same trade again under a new message id (a replay): its projections must not count twice
      const again = trades[s.other % trades.length]!.payload as PayloadOf<typeof TradeExecutedV1>;
      // sometimes with its id in capitals: still the same uuid
      return TradeExecutedV1.create(s.stop ? { ...again, tradeId: again.tradeId.toUpperCase() } : again, meta);
    }
    if (s.kind === 'trade' || s.kind === 'trade-again') {
      const maker = w.orders[s.other % w.orders.length]!;
      const trade = TradeExecutedV1.create(
        {
          tradeId: randomUUID(),
          market: s.market,
          seq: String(run * 100 + s.seq),
          priceTicks: String(s.price),
          quantityLots: String(s.lots + 1),
          price: '1',
          quantity: '0.0001',
          baseAmount: String(1000 * (s.lots + 1)),
          quoteAmount: String(s.price * (s.lots + 1)),
          buyerFee: String(s.lots),
          sellerFee: String(s.price % 7),
          takerSide: s.stop ? 'sell' : 'buy',
          takerOrderId: o.id,
          takerUserId: o.user,
          makerOrderId: maker.id,
          makerUserId: maker.user,
          at,
        },
        meta,
      );
      trades.push(trade);
      return trade;
    }
    if (s.kind === 'book') {
      return BookSnapshotV1.create({ market: 'BTC-USD', seq: String(s.seq), bids: [], asks: [], at }, meta) as Envelope;
    }
    return OrderUpdatedV1.create(
      {
        orderId: s.odd === 'unknown' ? randomUUID() : o.id,
        userId: s.odd === 'wrong-user' ? randomUUID() : o.user,
        market: 'BTC-USD',
        seq: String(s.seq),
        status: s.status,
        filledLots: String(s.lots),
        remainingLots: String(10 - s.lots),
        filledNotional: String(s.lots * 100),
        ...(s.reason ? { reason: s.reason } : {}),
        ...(s.stop ? { stopTriggered: true } : {}),
        at,
      },
      meta,
    );
  });
};

test('a batch of engine events leaves exactly what handling them one by one leaves', async () => {
  const handle = orderEventsHandler({ catalog: loadCatalog(undefined), log: silentLogger });
  let applied = 0;
  let ignored = 0;
  await fc.assert(
    fc.asyncProperty(worldArb, eventSpecs, fc.nat(), async (os, specs, cutAt) => {
      const w = materialise(os);
      const list = events(w, specs);
      await Promise.all([build(one.pool, w), build(many.pool, w)]);
      await withTransaction(one.pool, async (c) => {
        for (const e of list) {
          const r = await handle(e, c);
          if (r.kind === 'order' && r.applied) applied++;
          else if (r.kind === 'order') ignored++;
        }
      });
      // two consecutive batches: the second meets the candles, volumes and last trade the first wrote
      const cut = cutAt % (list.length + 1);
      await withTransaction(many.pool, (c) => handle.batch(list.slice(0, cut), c));
      await withTransaction(many.pool, (c) => handle.batch(list.slice(cut), c));
      expect(await state(many.pool, w)).toEqual(await state(one.pool, w));
      expect(await projections(many.pool)).toEqual(await projections(one.pool));
    }),
    { numRuns: 60 },
  );
  // the property saw updates that apply and updates that do not (older, repeated, unknown, another user's)
  expect(applied).toBeGreaterThan(0);
  expect(ignored).toBeGreaterThan(0);
}, 300_000);
