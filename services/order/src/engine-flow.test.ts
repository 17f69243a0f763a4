/**
 * The trading flow with the real matching engine: this service (in process) places orders through its outbox, the
 * payment-processor (`node src/main.ts`, a child process) matches them and publishes engine events, and this service's
 * read models and stream follow. Settlement (wallet) is outside this test: the wallet stub only takes the holds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createTestVhost, type TestVhost } from '@exchange/messaging/testing';
import { createHarness, type Harness } from './testing/harness.ts';
import { eventually, startBroker, type Broker } from './testing/broker.ts';

let h: Harness;
let vhost: TestVhost;
let broker: Broker;
let engine: ChildProcess | undefined;
let engineOutput = '';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

beforeAll(async () => {
  h = await createHarness();
  vhost = await createTestVhost('order-engine');
  broker = await startBroker(h.app, h.db.pool, { vhost, engineStandIn: false });
  const port = await freePort();
  engine = spawn(process.execPath, ['src/main.ts'], {
    cwd: fileURLToPath(new URL('../../payment-processor/', import.meta.url)),
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_URL: h.db.url,
      DATABASE_POOL_MAX: '5',
      AMQP_URL: vhost.url,
      INTERNAL_API_TOKEN: h.issuer.internalToken,
      AUTH_JWKS_URL: h.issuer.jwksUrl,
      MARKETS: 'BTC-USD',
      BOOK_SNAPSHOT_INTERVAL_MS: '50',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  engine.stdout!.on('data', (d) => (engineOutput += String(d)));
  engine.stderr!.on('data', (d) => (engineOutput += String(d)));
  await eventually(
    async () => (await fetch(`http://127.0.0.1:${port}/ready`).catch(() => undefined))?.status === 200,
    40_000,
  ).catch((err: unknown) => {
    throw new Error(`payment-processor not ready: ${String(err)}\n${engineOutput}`);
  });
});
afterAll(async () => {
  if (engine && engine.exitCode === null) {
    engine.kill('SIGTERM');
    await once(engine, 'exit');
  }
  await broker?.close();
  await h?.close();
  await vhost?.drop();
});

test('orders are matched by the engine and the read models follow', async () => {
  const alice = await h.user();
  const bob = await h.user();
  const post = (auth: Record<string, string>, payload: Record<string, unknown>) =>
    h.app.inject({ method: 'POST', url: '/api/v1/orders', headers: auth, payload });
  const get = async (url: string, auth: Record<string, string> = {}) =>
    (await h.app.inject({ method: 'GET', url, headers: auth })).json();

  const sell = await post(alice.auth, {
    market: 'BTC-USD',
    side: 'sell',
    type: 'limit',
    price: '60000',
    quantity: '0.5',
  });
  expect(sell.statusCode).toBe(201);
  const sellId = sell.json().id as string;
  // Resting on the book first.
  await eventually(async () => (await get('/api/v1/markets/BTC-USD/book')).asks.length === 1, 20_000).catch(
    (e: unknown) => {
      throw new Error(`${String(e)}\n${engineOutput}`);
    },
  );
  const buy = await post(bob.auth, { market: 'BTC-USD', side: 'buy', type: 'limit', price: '60100', quantity: '0.2' });
  expect(buy.statusCode).toBe(201);
  const buyId = buy.json().id as string;

  const bobOrder = await eventually(async () => {
    const o = await get(`/api/v1/orders/${buyId}`, bob.auth);
    return o.status === 'filled' ? o : undefined;
  }, 20_000);
  expect(bobOrder).toMatchObject({ filledQuantity: '0.20', averagePrice: '60000', filledNotional: '12000.00' });
  const aliceOrder = await eventually(async () => {
    const o = await get(`/api/v1/orders/${sellId}`, alice.auth);
    return o.status === 'partially_filled' ? o : undefined;
  });
  expect(aliceOrder).toMatchObject({ filledQuantity: '0.20', remainingQuantity: '0.30' });

  const trades = await eventually(async () => {
    const t = await get('/api/v1/markets/BTC-USD/trades');
    return t.trades.length === 1 ? t.trades : undefined;
  });
  expect(trades[0]).toMatchObject({ price: '60000', quantity: '0.20', side: 'buy' });
  const bobFills = await get('/api/v1/fills', bob.auth);
  expect(bobFills.items).toEqual([
    expect.objectContaining({
      orderId: buyId,
      side: 'buy',
      liquidity: 'taker',
      price: '60000',
      feeAsset: 'BTC',
      fee: '0.00040000',
    }),
  ]);
  const aliceFills = await get('/api/v1/fills', alice.auth);
  expect(aliceFills.items).toEqual([
    expect.objectContaining({
      orderId: sellId,
      side: 'sell',
      liquidity: 'maker',
      quoteAmount: '12000.00',
      feeAsset: 'USD',
      fee: '12.00',
    }),
  ]);
  await eventually(async () => {
    const b = await get('/api/v1/markets/BTC-USD/book');
    return b.asks.length === 1 && b.asks[0][1] === '0.30' && b.bids.length === 0;
  });
  expect(await get('/api/v1/markets/BTC-USD/ticker')).toMatchObject({
    lastPrice: '60000',
    volume24h: '0.20',
    trades24h: 1,
  });

  // Cancel the rest of alice's order.
  const cancel = await h.app.inject({ method: 'DELETE', url: `/api/v1/orders/${sellId}`, headers: alice.auth });
  expect(cancel.statusCode).toBe(202);
  const cancelled = await eventually(async () => {
    const o = await get(`/api/v1/orders/${sellId}`, alice.auth);
    return o.status === 'cancelled' ? o : undefined;
  });
  expect(cancelled).toMatchObject({ filledQuantity: '0.20', cancelRequested: false });
  await eventually(async () => (await get('/api/v1/markets/BTC-USD/book')).asks.length === 0);

  // A market buy now has a reference price; with no liquidity the engine finishes it without a fill.
  const mkt = await post(bob.auth, { market: 'BTC-USD', side: 'buy', type: 'market', quantity: '0.1' });
  expect(mkt.statusCode).toBe(201);
  const done = await eventually(async () => {
    const o = await get(`/api/v1/orders/${mkt.json().id}`, bob.auth);
    return ['cancelled', 'rejected'].includes(o.status) ? o : undefined;
  });
  expect(done.filledQuantity).toBe('0.00');
});
