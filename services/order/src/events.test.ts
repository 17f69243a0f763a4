import { randomUUID } from 'node:crypto';
import {
  BookSnapshotV1,
  OrderUpdatedV1,
  TradeExecutedV1,
  PlaceOrderV1,
  CancelOrderV1,
} from '@exchange/contracts/trading';
import { createHarness, type Harness } from './testing/harness.ts';
import { eventually, startBroker, type Broker } from './testing/broker.ts';

let h: Harness;
let broker: Broker;
let alice: Awaited<ReturnType<Harness['user']>>;
let bob: Awaited<ReturnType<Harness['user']>>;

beforeAll(async () => {
  h = await createHarness();
  broker = await startBroker(h.app, h.db.pool);
  alice = await h.user();
  bob = await h.user();
});
afterAll(async () => {
  await broker?.close();
  await h?.close();
});

const meta = { producer: 'payment-processor' };
const get = async (url: string, headers: Record<string, string> = {}) => {
  const res = await h.app.inject({ method: 'GET', url, headers });
  expect(res.statusCode).toBe(200);
  return res.json();
};

describe('commands reach the engine queue through the outbox relay', () => {
  it('PlaceOrderV1 and CancelOrderV1 arrive on orders.BTC-USD, in order', async () => {
    const placed = await h.app.inject({
      method: 'POST',
      url: '/api/v1/orders',
      headers: alice.auth,
      payload: { market: 'BTC-USD', side: 'buy', type: 'limit', price: '60000', quantity: '0.5' },
    });
    expect(placed.statusCode).toBe(201);
    const id = placed.json().id as string;
    const cancel = await h.app.inject({ method: 'DELETE', url: `/api/v1/orders/${id}`, headers: alice.auth });
    expect(cancel.statusCode).toBe(202);
    const seen: Array<{ type: string; payload: { orderId: string } }> = [];
    await eventually(async () => {
      seen.push(...((await broker.commands('BTC-USD')) as typeof seen));
      return seen.length >= 2;
    });
    expect(seen.map((m) => [m.type, m.payload.orderId])).toEqual([
      [PlaceOrderV1.type, id],
      [CancelOrderV1.type, id],
    ]);
    expect(PlaceOrderV1.is(seen[0])).toBe(true);
    expect(CancelOrderV1.is(seen[1])).toBe(true);
  });
});

describe('engine events build the read models', () => {
  it('order state, fills, trades, book, ticker and candles; duplicates and older seqs are ignored', async () => {
    const placed = await h.app.inject({
      method: 'POST',
      url: '/api/v1/orders',
      headers: alice.auth,
      payload: { market: 'BTC-USD', side: 'buy', type: 'limit', price: '60100', quantity: '0.5' },
    });
    const orderA = placed.json().id as string;
    const orderB = randomUUID(); // bob's taker order (not placed here; the read models do not need it)
    const base = Math.floor(Date.now() / 300_000) * 300_000 - 300_000; // start of the previous 5-minute bucket
    const iso = (ms: number) => new Date(base + ms).toISOString();
    const trade = (seq: number, priceTicks: number, lots: number, at: string, tradeId = randomUUID()) =>
      TradeExecutedV1.create(
        {
          tradeId,
          market: 'BTC-USD',
          seq: String(seq),
          priceTicks: String(priceTicks),
          quantityLots: String(lots),
          price: String(priceTicks),
          quantity: (lots / 100).toFixed(2),
          takerSide: 'sell',
          makerOrderId: orderA,
          takerOrderId: orderB,
          makerUserId: alice.id,
          takerUserId: bob.id,
          baseAmount: String(lots * 1_000_000), // 0.01 BTC = 1e6 sat
          quoteAmount: String(priceTicks * lots),
          buyerFee: String(lots * 1000),
          sellerFee: String(priceTicks * lots * 0.002),
          at,
        },
        meta,
      );
    const update = (seq: number, status: 'partially_filled' | 'filled', filled: number, notional: number) =>
      OrderUpdatedV1.create(
        {
          orderId: orderA,
          userId: alice.id,
          market: 'BTC-USD',
          seq: String(seq),
          status,
          filledLots: String(filled),
          remainingLots: String(50 - filled),
          filledNotional: String(notional),
          at: iso(30_000),
        },
        meta,
      );
    const book = (seq: number, bid: string) =>
      BookSnapshotV1.create(
        {
          market: 'BTC-USD',
          seq: String(seq),
          bids: [
            [bid, '1.00'],
            ['59000', '2.00'],
          ],
          asks: [['61000', '0.50']],
          at: iso(70_000),
        },
        meta,
      );

    const t1 = trade(10, 60000, 20, iso(10_000));
    const t2 = trade(11, 60100, 30, iso(20_000));
    const t3 = trade(12, 59900, 5, iso(65_000));
    t3.payload.makerUserId = randomUUID(); // someone else's order on the other side
    t3.payload.makerOrderId = randomUUID();
    const u1 = update(10, 'partially_filled', 20, 1_200_000);
    const u2 = update(11, 'filled', 50, 1_200_000 + 1_803_000);
    // Out of order, with duplicates: the same message twice, and the same trade under another message id.
    for (const m of [t1, t3, t1, u2, u1, u1, t2, book(12, '59900'), book(11, '50000')]) await broker.publish(m);
    await broker.publish(TradeExecutedV1.create({ ...t1.payload }, meta));

    const order = await eventually(async () => {
      const o = await get(`/api/v1/orders/${orderA}`, alice.auth);
      const trades = await get('/api/v1/markets/BTC-USD/trades');
      const b = await get('/api/v1/markets/BTC-USD/book');
      return o.status === 'filled' && trades.trades.length === 3 && b.seq === '12' ? o : undefined;
    });
    // Let the stale messages (published before the newest, but possibly processed later) drain.
    await eventually(async () => {
      const { rows } = await h.db.pool.query(`SELECT count(*)::int AS n FROM orders.inbox`);
      return rows[0].n === 8; // distinct message ids
    });
    expect(order).toMatchObject({
      status: 'filled',
      filledQuantity: '0.50',
      remainingQuantity: '0.00',
      averagePrice: '60060', // (60000 × 0.2 + 60100 × 0.3) / 0.5
      filledNotional: '30030.00',
    });

    const trades = await get('/api/v1/markets/BTC-USD/trades?limit=10');
    expect(
      trades.trades.map((t: { seq: string; price: string; quantity: string }) => [t.seq, t.price, t.quantity]),
    ).toEqual([
      ['12', '59900', '0.05'],
      ['11', '60100', '0.30'],
      ['10', '60000', '0.20'],
    ]);

    const fills = await get('/api/v1/fills', alice.auth);
    expect(fills.items).toHaveLength(2);
    expect(fills.items.map((f: { tradeId: string }) => f.tradeId).sort()).toEqual(
      [t1.payload.tradeId, t2.payload.tradeId].sort(),
    );
    expect(fills.items.find((f: { tradeId: string }) => f.tradeId === t1.payload.tradeId)).toMatchObject({
      orderId: orderA,
      side: 'buy',
      liquidity: 'maker',
      price: '60000',
      quantity: '0.20',
      quoteAmount: '12000.00',
      fee: '0.00020000',
      feeAsset: 'BTC',
    });
    const bobFills = await get(`/api/v1/fills?orderId=${orderB}`, bob.auth);
    expect(bobFills.items).toHaveLength(3);
    expect(bobFills.items[0]).toMatchObject({ side: 'sell', liquidity: 'taker', feeAsset: 'USD' });
    expect((await get(`/api/v1/fills?orderId=${orderB}`, alice.auth)).items).toEqual([]);

    // the fee-tier roll-up counts each fill once (the duplicate trade above added nothing), per user and market
    const volumes = await h.db.pool.query<{ user_id: string; v: string }>(
      `SELECT user_id::text, sum(quote_volume)::text AS v FROM orders.volume_daily WHERE market = 'BTC-USD'
        GROUP BY user_id`,
    );
    expect(Object.fromEntries(volumes.rows.map((r) => [r.user_id, r.v]))).toMatchObject({
      [alice.id]: '3003000',
      [bob.id]: '3302500',
    });
    expect(volumes.rows).toHaveLength(3); // and the third trade's maker

    const b = await get('/api/v1/markets/BTC-USD/book?depth=1');
    expect(b).toMatchObject({ seq: '12', bids: [['59900', '1.00']], asks: [['61000', '0.50']] });

    const ticker = await get('/api/v1/markets/BTC-USD/ticker');
    expect(ticker).toMatchObject({
      lastPrice: '59900',
      open24h: '60000',
      high24h: '60100',
      low24h: '59900',
      change24h: '-100',
      volume24h: '0.55',
      quoteVolume24h: '33025.00',
      trades24h: 3,
      bestBid: '59900',
      bestAsk: '61000',
    });

    const from = new Date(base).toISOString();
    const c1 = await get(`/api/v1/markets/BTC-USD/candles?interval=1m&from=${from}`);
    expect(c1.candles).toEqual([
      {
        openTime: new Date(base).toISOString(),
        open: '60000',
        high: '60100',
        low: '60000',
        close: '60100',
        volume: '0.50',
        quoteVolume: '30030.00',
        trades: 2,
      },
      {
        openTime: new Date(base + 60_000).toISOString(),
        open: '59900',
        high: '59900',
        low: '59900',
        close: '59900',
        volume: '0.05',
        quoteVolume: '2995.00',
        trades: 1,
      },
    ]);
    const c5 = await get(`/api/v1/markets/BTC-USD/candles?interval=5m&from=${from}`);
    expect(c5.candles).toEqual([
      expect.objectContaining({
        open: '60000',
        high: '60100',
        low: '59900',
        close: '59900',
        volume: '0.55',
        trades: 3,
      }),
    ]);
    for (const interval of ['1h', '1d']) {
      const c = await get(
        `/api/v1/markets/BTC-USD/candles?interval=${interval}&from=${new Date(base - 86_400_000).toISOString()}`,
      );
      expect(c.candles.at(-1)).toMatchObject({ close: '59900', trades: 3 });
    }

    // The last trade is now the price-band reference for new orders.
    const markets = await get('/api/v1/markets');
    expect(markets.markets[0]).toMatchObject({
      symbol: 'BTC-USD',
      lastPrice: '59900',
      priceBand: { low: '53910', high: '65890' },
    });
    const outOfBand = await h.app.inject({
      method: 'POST',
      url: '/api/v1/orders',
      headers: alice.auth,
      payload: { market: 'BTC-USD', side: 'buy', type: 'limit', price: '66000', quantity: '0.1' },
    });
    expect(outOfBand.json().error.code).toBe('PRICE_OUT_OF_BAND');
  });

  it('an update for an unknown order is acknowledged and ignored (not dead-lettered)', async () => {
    const stray = OrderUpdatedV1.create(
      {
        orderId: randomUUID(),
        userId: randomUUID(),
        market: 'BTC-USD',
        seq: '99',
        status: 'new',
        filledLots: '0',
        remainingLots: '1',
        filledNotional: '0',
        at: new Date().toISOString(),
      },
      meta,
    );
    await broker.publish(stray);
    await eventually(async () => {
      const { rowCount } = await h.db.pool.query('SELECT 1 FROM orders.inbox WHERE message_id = $1', [stray.id]);
      return rowCount === 1;
    });
    const { rows } = await h.db.pool.query('SELECT count(*)::int AS n FROM orders.dead_letters');
    expect(rows[0].n).toBe(0);
  });

  it('a message that breaks its contract is dead-lettered at once and listed for admins', async () => {
    const bad = {
      id: randomUUID(),
      type: 'engine.order-updated',
      version: 1,
      occurredAt: new Date().toISOString(),
      producer: 'payment-processor',
      payload: { orderId: randomUUID(), market: 'BTC-USD', seq: 7, status: 'new' }, // seq as a number, fields missing
    };
    await broker.publish(bad as never);
    const admin = await h.user({ fund: false, roles: ['admin'] });
    const dl = await eventually(async () => {
      const res = await h.app.inject({ method: 'GET', url: '/api/v1/admin/dead-letters/order', headers: admin.auth });
      const items = (res.json() as { items: Array<{ messageId: string; queue: string; reason: string }> }).items;
      return items.find((i) => i.messageId === bad.id);
    });
    expect(dl.queue).toBe('order.events');
    expect(dl.reason).toMatch(/invalid message/);
  });
});
