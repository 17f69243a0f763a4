/**
 * The `order.events` consumer's group commit applies a batch's order updates in one statement
 * (`applyEngineUpdates`) after the batch's other events. It must leave exactly what handling the same events one
 * after the other leaves: checked as a property on two databases with the same orders, with updates repeated, out of
 * order, for unknown orders, for the wrong user, with and without a fired stop, between trades and book snapshots.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import type { Envelope } from '@exchange/contracts';
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
    kind: fc.constantFrom('update', 'update', 'update', 'trade', 'book'),
    order: fc.nat(),
    other: fc.nat(),
    seq: fc.integer({ min: 1, max: 12 }),
    status: fc.constantFrom(...STATUSES),
    lots: fc.integer({ min: 0, max: 10 }),
    odd: fc.constantFrom('no', 'no', 'no', 'no', 'unknown', 'wrong-user'),
    stop: fc.boolean(),
    reason: fc.option(fc.constantFrom('user_cancel', 'ioc_unfilled')),
  }),
  { minLength: 1, maxLength: 14 },
);

type EventSpec = typeof eventSpecs extends fc.Arbitrary<Array<infer T>> ? T : never;

const events = (w: World, specs: EventSpec[]) =>
  specs.map((s): Envelope => {
    const o = w.orders[s.order % w.orders.length]!;
    const at = new Date().toISOString();
    const meta = { producer: 'payment-processor' };
    if (s.kind === 'trade') {
      const maker = w.orders[s.other % w.orders.length]!;
      return TradeExecutedV1.create(
        {
          tradeId: randomUUID(),
          market: 'BTC-USD',
          seq: String(s.seq),
          priceTicks: '100',
          quantityLots: '1',
          price: '1',
          quantity: '0.0001',
          baseAmount: '1000',
          quoteAmount: '100',
          buyerFee: '0',
          sellerFee: '0',
          takerSide: 'buy',
          takerOrderId: o.id,
          takerUserId: o.user,
          makerOrderId: maker.id,
          makerUserId: maker.user,
          at,
        },
        meta,
      );
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

test('a batch of engine events leaves exactly what handling them one by one leaves', async () => {
  const handle = orderEventsHandler({ catalog: loadCatalog(undefined), log: silentLogger });
  let applied = 0;
  let ignored = 0;
  await fc.assert(
    fc.asyncProperty(worldArb, eventSpecs, async (os, specs) => {
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
      await withTransaction(many.pool, (c) => handle.batch(list, c));
      expect(await state(many.pool, w)).toEqual(await state(one.pool, w));
    }),
    { numRuns: 60 },
  );
  // the property saw updates that apply and updates that do not (older, repeated, unknown, another user's)
  expect(applied).toBeGreaterThan(0);
  expect(ignored).toBeGreaterThan(0);
}, 300_000);
