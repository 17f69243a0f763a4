/**
 * Icebergs and the volatility auction at the order service: displayQuantity is validated (stable 400 codes), stored,
 * shown to its owner and sent to the engine; the public book shows the auction state from the engine's book snapshot.
 * The engine's behaviour is tested in the matching engine and the payment-processor; the whole path in tools/e2e.
 */
import { BookSnapshotV1 } from '@exchange/contracts/trading';
import { createHarness, type Harness } from './testing/harness.ts';

let h: Harness;
let alice: Awaited<ReturnType<Harness['user']>>;

beforeAll(async () => {
  h = await createHarness();
  alice = await h.user();
});
afterAll(async () => {
  await h?.close();
});

const place = (payload: Record<string, unknown>) =>
  h.app.inject({
    method: 'POST',
    url: '/api/v1/orders',
    headers: alice.auth,
    payload: { market: 'BTC-USD', side: 'sell', type: 'limit', price: '60000', quantity: '0.5', ...payload },
  });

it('an iceberg is stored, shown to its owner and sent with its display quantity; bad ones are 400', async () => {
  const r = await place({ displayQuantity: '0.1' });
  expect(r.statusCode).toBe(201);
  expect(r.json()).toMatchObject({ status: 'new', displayQuantity: '0.10', quantity: '0.50' });
  const { rows } = await h.db.pool.query<{ message: { payload: Record<string, unknown> } }>(
    `SELECT message FROM orders.outbox WHERE type = 'engine.place-order' AND message->'payload'->>'orderId' = $1`,
    [r.json().id],
  );
  expect(rows[0]?.message.payload).toMatchObject({ displayQuantityLots: '10', quantityLots: '50' });
  const plain = await place({});
  expect(plain.json()).toMatchObject({ displayQuantity: null });

  const bad: Array<[Record<string, unknown>, string]> = [
    [{ displayQuantity: '0.6' }, 'INVALID_DISPLAY_QUANTITY'], // more than quantity
    [{ displayQuantity: '0.015' }, 'INVALID_LOT'], // not a multiple of the lot size (0.01)
    [{ displayQuantity: '0' }, 'INVALID_DISPLAY_QUANTITY'],
    [{ displayQuantity: '1e-2' }, 'INVALID_DISPLAY_QUANTITY'],
    [{ displayQuantity: '0.1', timeInForce: 'IOC' }, 'INVALID_DISPLAY_QUANTITY'],
    [{ displayQuantity: '0.1', timeInForce: 'FOK' }, 'INVALID_DISPLAY_QUANTITY'],
    [{ displayQuantity: '0.1', type: 'market', price: undefined }, 'INVALID_DISPLAY_QUANTITY'],
    [{ displayQuantity: '0.1', stopPrice: '59000' }, 'INVALID_DISPLAY_QUANTITY'],
  ];
  for (const [body, code] of bad) {
    const res = await place(body);
    expect([JSON.stringify(body), res.statusCode, res.json().error?.code]).toEqual([JSON.stringify(body), 400, code]);
  }
});

it('the public book shows the auction phase and indicative uncross from the engine snapshot', async () => {
  const snapshot = (seq: string, auction?: Record<string, unknown>) =>
    BookSnapshotV1.create(
      {
        market: 'ETH-USD',
        seq,
        bids: [['2100', '1.0']],
        asks: [['2000', '0.5']],
        ...(auction ? { auction } : {}),
        at: new Date().toISOString(),
      } as never,
      { producer: 'test' },
    );
  const apply = (m: ReturnType<typeof snapshot>) => h.applyEvent(m);
  await apply(snapshot('10', { referencePrice: '1900', indicativePrice: '2000', indicativeQuantity: '0.5' }));
  const book = await h.app.inject({ method: 'GET', url: '/api/v1/markets/ETH-USD/book' });
  expect(book.json()).toMatchObject({
    phase: 'auction',
    auction: { referencePrice: '1900', indicativePrice: '2000', indicativeQuantity: '0.5' },
    bids: [['2100', '1.0']],
  });
  await apply(snapshot('11'));
  const after = await h.app.inject({ method: 'GET', url: '/api/v1/markets/ETH-USD/book' });
  expect(after.json()).toMatchObject({ phase: 'continuous', auction: null });
});
