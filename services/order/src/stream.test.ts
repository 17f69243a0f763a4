import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { OrderAmendedV1, OrderUpdatedV1, TradeExecutedV1 } from '@exchange/contracts/trading';
import { createHarness, type Harness } from './testing/harness.ts';
import { startBroker, type Broker } from './testing/broker.ts';
import { createMessaging, silentLogger } from '@exchange/messaging';
import { loadCatalog } from '@exchange/contracts/markets';
import { buildApp } from './app.ts';
import { createWalletClient } from './clients/wallet-client.ts';
import { StreamFeed } from './stream.ts';
import { ORDERS_SCHEMA } from './db/schema.ts';

let h: Harness;
let broker: Broker;
let url: string;
let alice: Awaited<ReturnType<Harness['user']>>;
let bob: Awaited<ReturnType<Harness['user']>>;
const open: WebSocket[] = [];

beforeAll(async () => {
  h = await createHarness();
  broker = await startBroker(h.app, h.db.pool);
  await h.app.listen({ port: 0, host: '127.0.0.1' });
  url = `ws://127.0.0.1:${(h.app.server.address() as AddressInfo).port}/api/v1/stream`;
  alice = await h.user();
  bob = await h.user();
});
afterAll(async () => {
  for (const s of open) s.close();
  await broker?.close();
  await h?.close();
});

type Frame = { type: string; channel?: string; code?: string; data?: Record<string, unknown>; userId?: string };

/** A WebSocket client that queues frames; `next` waits for the first frame matching a predicate. */
async function connect(protocols?: string[], path = url) {
  const ws = protocols ? new WebSocket(path, protocols) : new WebSocket(path);
  open.push(ws);
  const frames: Frame[] = [];
  const waiters: Array<() => void> = [];
  let closed: { code: number } | undefined;
  ws.addEventListener('message', (e) => {
    frames.push(JSON.parse(String(e.data)) as Frame);
    for (const w of waiters.splice(0)) w();
  });
  ws.addEventListener('close', (e) => {
    closed = { code: e.code };
    for (const w of waiters.splice(0)) w();
  });
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve());
    ws.addEventListener('error', () => reject(new Error('websocket error')));
  });
  return {
    ws,
    frames,
    get closed() {
      return closed;
    },
    send: (o: unknown) => ws.send(JSON.stringify(o)),
    async next(pred: (f: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const i = frames.findIndex(pred);
        if (i >= 0) return frames.splice(i, 1)[0]!;
        if (closed || Date.now() > until) throw new Error(`no matching frame; got ${JSON.stringify(frames)}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 100);
        });
      }
    },
  };
}

const tradeEvent = (price: number) =>
  TradeExecutedV1.create(
    {
      tradeId: randomUUID(),
      market: 'BTC-USD',
      seq: String(Date.now()),
      priceTicks: String(price),
      quantityLots: '10',
      price: String(price),
      quantity: '0.10',
      takerSide: 'buy',
      makerOrderId: randomUUID(),
      takerOrderId: randomUUID(),
      makerUserId: randomUUID(),
      takerUserId: randomUUID(),
      baseAmount: '10000000',
      quoteAmount: String(price * 10),
      buyerFee: '10000',
      sellerFee: '1200',
      at: new Date().toISOString(),
    },
    { producer: 'payment-processor' },
  );

const orderUpdate = (userId: string, seq: number) =>
  OrderUpdatedV1.create(
    {
      orderId: randomUUID(),
      userId,
      market: 'BTC-USD',
      seq: String(seq),
      status: 'partially_filled',
      filledLots: '10',
      remainingLots: '40',
      filledNotional: '600000',
      at: new Date().toISOString(),
    },
    { producer: 'payment-processor' },
  );

describe('WebSocket stream', () => {
  it('a client subscribed to trades and book gets the book snapshot and receives a trade', async () => {
    const c = await connect();
    c.send({ op: 'subscribe', channels: ['trades:BTC-USD', 'book:BTC-USD'] });
    expect(await c.next((f) => f.type === 'subscribed')).toMatchObject({
      channels: ['trades:BTC-USD', 'book:BTC-USD'],
    });
    expect(await c.next((f) => f.type === 'snapshot')).toMatchObject({
      channel: 'book:BTC-USD',
      data: { seq: '0', bids: [] },
    });
    const t = tradeEvent(60000);
    await broker.publish(t);
    const f = await c.next((x) => x.type === 'update' && x.channel === 'trades:BTC-USD');
    expect(f.data).toMatchObject({ tradeId: t.payload.tradeId, price: '60000', quantity: '0.10', side: 'buy' });
  });

  it('unknown channels and bad messages get an error frame, the socket stays usable', async () => {
    const c = await connect();
    c.send({ op: 'subscribe', channels: ['trades:DOGE-USD'] });
    expect((await c.next((f) => f.type === 'error')).code).toBe('INVALID_CHANNEL');
    c.ws.send('not json');
    expect((await c.next((f) => f.type === 'error')).code).toBe('BAD_MESSAGE');
    c.send({ op: 'ping' });
    await c.next((f) => f.type === 'pong');
  });

  it('a logout, lock or revocation closes the private channel of an open socket within the re-check interval', async () => {
    const sid = randomUUID();
    const carol = randomUUID();
    const c = await connect();
    c.send({ op: 'auth', token: h.issuer.sign({ sub: carol, sid }) });
    await c.next((f) => f.type === 'authenticated');
    c.send({ op: 'subscribe', channels: ['orders'] });
    await c.next((f) => f.type === 'subscribed');
    h.issuer.revokeSession(sid); // what logout, an operator lock or refresh-token reuse does
    expect((await c.next((f) => f.type === 'error', 12_000)).code).toBe('SESSION_REVOKED');
    // the socket stays open for public channels, but the user's orders no longer reach it
    expect(h.app.streamHub.publish('orders', { id: 'x' }, carol)).toBe(0);
  });

  it('the orders channel requires auth, and only delivers the user’s own orders', async () => {
    const c = await connect();
    c.send({ op: 'subscribe', channels: ['orders'] });
    expect((await c.next((f) => f.type === 'error')).code).toBe('UNAUTHENTICATED');
    c.send({ op: 'auth', token: 'not-a-token' });
    expect((await c.next((f) => f.type === 'error')).code).toBe('INVALID_TOKEN');
    c.send({ op: 'auth', token: alice.token });
    expect(await c.next((f) => f.type === 'authenticated')).toMatchObject({ userId: alice.id });
    c.send({ op: 'subscribe', channels: ['orders'] });
    await c.next((f) => f.type === 'subscribed');

    const bobs = await connect(['bearer', bob.token]); // token in Sec-WebSocket-Protocol
    expect(bobs.ws.protocol).toBe('bearer');
    expect(await bobs.next((f) => f.type === 'authenticated')).toMatchObject({ userId: bob.id });
    bobs.send({ op: 'subscribe', channels: ['orders'] });
    await bobs.next((f) => f.type === 'subscribed');

    const anon = await connect();
    anon.send({ op: 'subscribe', channels: ['trades:BTC-USD'] });
    await anon.next((f) => f.type === 'subscribed');

    const forBob = orderUpdate(bob.id, 1);
    const forAlice = orderUpdate(alice.id, 2);
    await broker.publish(forBob);
    await broker.publish(forAlice);
    const a = await c.next((f) => f.type === 'update');
    expect(a).toMatchObject({
      channel: 'orders',
      data: { id: forAlice.payload.orderId, status: 'partially_filled', filledQuantity: '0.10', averagePrice: '60000' },
    });
    const b = await bobs.next((f) => f.type === 'update');
    expect(b.data).toMatchObject({ id: forBob.payload.orderId });
    // Give a stray delivery time to arrive, then check nobody saw someone else's order.
    await broker.publish(tradeEvent(60001));
    await anon.next((f) => f.type === 'update');
    await new Promise((r) => setTimeout(r, 200));
    expect(c.frames.filter((f) => f.type === 'update')).toEqual([]);
    expect(bobs.frames.filter((f) => f.type === 'update')).toEqual([]);
    expect(anon.frames.filter((f) => f.channel === 'orders')).toEqual([]);
  });

  it("an amend's outcome (applied or rejected) is pushed on the owner's orders channel", async () => {
    const c = await connect();
    c.send({ op: 'auth', token: alice.token });
    await c.next((f) => f.type === 'authenticated');
    c.send({ op: 'subscribe', channels: ['orders'] });
    await c.next((f) => f.type === 'subscribed');
    const amended = (userId: string, ok: boolean) =>
      OrderAmendedV1.create(
        {
          amendId: randomUUID(),
          orderId: randomUUID(),
          userId,
          market: 'BTC-USD',
          seq: '7',
          ok,
          ...(ok
            ? { priceTicks: '59000', quantityLots: '30', remainingLots: '20', priorityKept: false }
            : { reason: 'AMEND_WOULD_TAKE', priorityKept: false }),
          holdAsset: 'USD',
          holdDelta: ok ? '-100000' : '0',
          at: new Date().toISOString(),
        },
        { producer: 'payment-processor' },
      );
    const forBob = amended(bob.id, true);
    const applied = amended(alice.id, true);
    const rejected = amended(alice.id, false);
    await broker.publish(forBob);
    await broker.publish(applied);
    await broker.publish(rejected);
    expect((await c.next((f) => f.type === 'update')).data).toEqual({
      kind: 'amend',
      id: applied.payload.orderId,
      amendId: applied.payload.amendId,
      market: 'BTC-USD',
      ok: true,
      reason: null,
      price: '59000',
      quantity: '0.30',
      remainingQuantity: '0.20',
      priorityKept: false,
      seq: '7',
      at: applied.payload.at,
    });
    expect((await c.next((f) => f.type === 'update')).data).toMatchObject({
      kind: 'amend',
      id: rejected.payload.orderId,
      ok: false,
      reason: 'AMEND_WOULD_TAKE',
      price: null,
    });
    // order updates say what they are too
    await broker.publish(orderUpdate(alice.id, 9));
    expect((await c.next((f) => f.type === 'update')).data).toMatchObject({
      kind: 'order',
      status: 'partially_filled',
    });
    expect(c.frames.filter((f) => f.type === 'update')).toEqual([]); // Bob's amend never reached Alice
  });

  it('the orders channel is dropped when the token expires', async () => {
    const shortLived = h.issuer.sign({ sub: alice.id, expiresIn: 7 }); // verification allows 5 s of clock skew
    const c = await connect();
    c.send({ op: 'auth', token: shortLived });
    expect((await c.next((f) => f.type === 'authenticated')).userId).toBe(alice.id);
    c.send({ op: 'subscribe', channels: ['orders'] });
    await c.next((f) => f.type === 'subscribed');
    expect((await c.next((f) => f.type === 'error', 10_000)).code).toBe('TOKEN_EXPIRED');
    await broker.publish(orderUpdate(alice.id, 3));
    await new Promise((r) => setTimeout(r, 300));
    expect(c.frames.filter((f) => f.type === 'update')).toEqual([]);
  });

  it('clients on another replica (not the active read-model consumer) get the updates too', async () => {
    const replica = await buildApp({
      pool: h.db.pool,
      catalog: loadCatalog(undefined),
      wallet: createWalletClient({ baseUrl: h.wallet.url, internalToken: h.issuer.internalToken }),
      auth: h.issuer.authOptions(),
      management: { managementUrl: 'http://127.0.0.1:1', vhost: '/' },
      fastify: { logger: false },
    });
    const messaging = createMessaging({
      url: broker.vhost.url,
      service: 'order',
      pool: h.db.pool,
      schema: ORDERS_SCHEMA,
      logger: silentLogger,
      relay: false,
    });
    await messaging.connection.register(new StreamFeed(replica.streamHub, loadCatalog(undefined), silentLogger));
    await messaging.start();
    await replica.listen({ port: 0, host: '127.0.0.1' });
    try {
      const c = await connect(
        undefined,
        `ws://127.0.0.1:${(replica.server.address() as AddressInfo).port}/api/v1/stream`,
      );
      c.send({ op: 'subscribe', channels: ['trades:BTC-USD'] });
      await c.next((f) => f.type === 'subscribed');
      const t = tradeEvent(60002);
      await broker.publish(t);
      expect((await c.next((f) => f.type === 'update')).data).toMatchObject({ tradeId: t.payload.tradeId });
      c.ws.close();
    } finally {
      await replica.close();
      await messaging.close();
    }
  });

  it('a token in the URL is refused and the socket closed', async () => {
    const c = await connect(undefined, `${url}?token=${alice.token}`);
    expect((await c.next((f) => f.type === 'error')).code).toBe('TOKEN_IN_URL');
    for (let i = 0; i < 50 && !c.closed; i++) await new Promise((r) => setTimeout(r, 20));
    expect(c.closed?.code).toBe(1008);
  });
});
