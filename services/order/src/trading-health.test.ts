import amqp from 'amqplib';
import { createTestVhost, type TestVhost } from '@exchange/messaging/testing';
import { createHarness, type Harness } from './testing/harness.ts';
import { eventually } from './testing/broker.ts';
import { vhostOf } from './trading-health.ts';

let h: Harness;
let vhost: TestVhost;
let conn: amqp.ChannelModel;

beforeAll(async () => {
  vhost = await createTestVhost('order-health');
  h = await createHarness({
    management: { managementUrl: 'http://guest:guest@127.0.0.1:15672', vhost: vhostOf(vhost.url) },
  });
  conn = await amqp.connect(vhost.url);
});
afterAll(async () => {
  await conn?.close().catch(() => {});
  await h?.close();
  await vhost?.drop();
});

type Body = {
  status: string;
  markets: Array<{
    market: string;
    status: string;
    engineConsumers: number | null;
    queueDepth: number | null;
    halted: boolean;
  }>;
};

describe('GET /api/health/trading', () => {
  it('503 while a market has no engine consumer, 200 once every market has one; reports depth, halts, last trade', async () => {
    const ch = await conn.createChannel();
    for (const m of ['BTC-USD', 'ETH-USD', 'BTC-USDT']) await ch.assertQueue(`orders.${m}`, { durable: true });
    await ch.sendToQueue('orders.ETH-USD', Buffer.from('{}'));
    await ch.sendToQueue('orders.ETH-USD', Buffer.from('{}'));
    await ch.consume('orders.BTC-USD', () => {});

    const first = await eventually(async () => {
      const res = await h.app.inject({ method: 'GET', url: '/api/health/trading' });
      const body = res.json() as Body;
      const btc = body.markets.find((m) => m.market === 'BTC-USD');
      const eth = body.markets.find((m) => m.market === 'ETH-USD');
      return res.statusCode === 503 && btc?.engineConsumers === 1 && eth?.queueDepth === 2 ? body : undefined;
    }, 20_000);
    expect(first.status).toBe('unhealthy');
    expect(first.markets.map((m) => [m.market, m.status])).toEqual([
      ['BTC-USD', 'ok'],
      ['ETH-USD', 'no_consumer'],
      ['BTC-USDT', 'no_consumer'],
    ]);

    await ch.consume('orders.ETH-USD', (m) => m && ch.ack(m));
    await ch.consume('orders.BTC-USDT', () => {});
    const admin = await h.user({ fund: false, roles: ['admin'] });
    await h.app.inject({
      method: 'POST',
      url: '/api/v1/admin/markets/BTC-USDT/halt',
      headers: admin.auth,
      payload: { reason: 'test' },
    });
    const ok = await eventually(async () => {
      const res = await h.app.inject({ method: 'GET', url: '/api/health/trading' });
      return res.statusCode === 200 ? (res.json() as Body) : undefined;
    }, 20_000);
    expect(ok.status).toBe('healthy');
    expect(ok.markets.find((m) => m.market === 'BTC-USDT')).toMatchObject({ halted: true, status: 'ok' });
  });

  it('an unreachable management API is reported, not a 500', async () => {
    const other = await createHarness({ management: { managementUrl: 'http://u:p@127.0.0.1:1', vhost: 'x' } });
    try {
      const res = await other.app.inject({ method: 'GET', url: '/api/health/trading' });
      expect(res.statusCode).toBe(503);
      expect((res.json() as Body).markets[0]).toMatchObject({ status: 'unknown', engineConsumers: null });
    } finally {
      await other.close();
    }
  });
});
