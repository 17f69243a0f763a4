/**
 * Stop orders at the order service: validation against the stop price, the hold from placement, the engine command,
 * and the trigger reported back (engine.order-updated with stopTriggered). The engine's trigger is tested in the
 * matching engine and the payment-processor; the whole path (another user's trade triggers it) in tools/e2e.
 */
import { OrderUpdatedV1 } from '@exchange/contracts/trading';
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
    payload: { market: 'BTC-USD', quantity: '0.5', ...payload },
  });

async function placeMessage(orderId: string) {
  return (await h.outboxPayloads('engine.place-order', orderId))[0];
}

it('stop-limit and stop-loss: held from placement, sent with the stop price; bad stops are 400', async () => {
  await h.db.pool.query(
    `INSERT INTO orders.market_state (market, last_trade_ticks, last_trade_seq, last_trade_at)
     VALUES ('BTC-USD', 60000, 1, now()) ON CONFLICT (market) DO UPDATE SET last_trade_ticks = 60000`,
  );
  // sell stop-limit: stop 55000, limit 54500 (far from the last trade is fine: judged against the stop price)
  const r = await place({ side: 'sell', type: 'limit', price: '54500', stopPrice: '55000' });
  expect(r.statusCode).toBe(201);
  expect(r.json()).toMatchObject({ status: 'new', stopPrice: '55000', stopTriggered: false, holdAmount: '0.50000000' });
  expect(await placeMessage(r.json().id)).toMatchObject({ stopPriceTicks: '55000', priceTicks: '54500' });

  // buy stop-loss at 65000: protection = stop + 10% band = 71500; holds 0.5 × 71500
  const m = await place({ side: 'buy', type: 'market', stopPrice: '65000' });
  expect(m.statusCode).toBe(201);
  expect(m.json()).toMatchObject({ holdAmount: '35750.00', timeInForce: 'IOC', stopPrice: '65000' });
  expect(await placeMessage(m.json().id)).toMatchObject({ stopPriceTicks: '65000', protectionPriceTicks: '71500' });
  expect(await placeMessage(m.json().id)).not.toHaveProperty('quoteBudgetTickLots');

  const bad: Array<[Record<string, unknown>, string]> = [
    [{ side: 'buy', type: 'limit', price: '61000', stopPrice: '59000' }, 'STOP_WOULD_TRIGGER'],
    [{ side: 'sell', type: 'market', stopPrice: '60000' }, 'STOP_WOULD_TRIGGER'],
    [{ side: 'sell', type: 'limit', price: '40000', stopPrice: '55000' }, 'PRICE_OUT_OF_BAND'],
    [{ side: 'buy', type: 'limit', price: '65000', stopPrice: '65000', timeInForce: 'FOK' }, 'INVALID_TIME_IN_FORCE'],
    [{ side: 'buy', type: 'limit', price: '65000', stopPrice: '65000', postOnly: true }, 'INVALID_POST_ONLY'],
    [{ side: 'buy', type: 'limit', price: '65000', stopPrice: '65000.5' }, 'INVALID_TICK'],
    [{ side: 'buy', type: 'limit', price: '65000', stopPrice: '0' }, 'INVALID_STOP_PRICE'],
    [{ side: 'buy', type: 'limit', price: '65000', stopPrice: 65000 }, 'VALIDATION_ERROR'],
  ];
  for (const [body, code] of bad) {
    const res = await place(body);
    expect([JSON.stringify(body), res.statusCode, res.json().error?.code]).toEqual([JSON.stringify(body), 400, code]);
  }
  // a waiting stop cannot be amended (cancel it instead)
  const amend = await h.app.inject({
    method: 'PATCH',
    url: `/api/v1/orders/${r.json().id}`,
    headers: alice.auth,
    payload: { quantity: '0.4' },
  });
  expect(amend.json().error.code).toBe('ORDER_NOT_AMENDABLE');

  // the engine triggers it: the order says so
  const upd = OrderUpdatedV1.create(
    {
      orderId: r.json().id,
      userId: alice.id,
      market: 'BTC-USD',
      seq: '7',
      status: 'new',
      filledLots: '0',
      remainingLots: '50',
      filledNotional: '0',
      stopTriggered: true,
      at: new Date().toISOString(),
    },
    { producer: 'payment-processor' },
  );
  await h.applyEvent(upd);
  const o = (await h.app.inject({ url: `/api/v1/orders/${r.json().id}`, headers: alice.auth })).json();
  expect(o).toMatchObject({ stopTriggered: true, status: 'new' });
});
