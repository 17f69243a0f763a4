/**
 * Crash safety without 2PC: the order row is written `pending` before the wallet hold and becomes `new` together with
 * its outbox message. Whatever dies in between, the recovery sweeper leaves no orphan hold and no ghost order.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import { createTestVhost, type TestVhost } from '@exchange/messaging/testing';
import { COMMANDS_EXCHANGE, declareExchanges, envelopesOf } from '@exchange/messaging';
import { createHarness, type Harness } from './testing/harness.ts';
import { eventually } from './testing/broker.ts';

let h: Harness;
let crash: ((id: string) => Promise<void>) | undefined;

beforeAll(async () => {
  h = await createHarness({ afterHold: (id) => crash?.(id) ?? Promise.resolve(), pendingTimeoutMs: 0 });
});
afterAll(async () => {
  await h?.close();
});

const body = (over: Record<string, unknown> = {}) => ({
  market: 'BTC-USD',
  side: 'buy',
  type: 'limit',
  price: '60000',
  quantity: '0.1',
  ...over,
});
const orderById = async (id: string) =>
  (await h.db.pool.query('SELECT * FROM orders.orders WHERE id = $1', [id])).rows[0] as
    Record<string, unknown> | undefined;
const messagesFor = async (id: string) =>
  (await h.db.pool.query(`SELECT type FROM orders.outbox WHERE message->'payload'->>'orderId' = $1`, [id])).rows;

/** Place an order whose request "crashes" after the hold; returns the order id left pending. */
async function crashAfterHold(user: { auth: Record<string, string>; id: string }, over: Record<string, unknown> = {}) {
  let orderId = '';
  crash = async (id) => {
    orderId = id;
    throw new Error('simulated crash between hold and commit');
  };
  const res = await h.app.inject({ method: 'POST', url: '/api/v1/orders', headers: user.auth, payload: body(over) });
  crash = undefined;
  expect(res.statusCode).toBe(500);
  expect((await orderById(orderId))?.status).toBe('pending');
  expect((await h.wallet.holds()).filter((x) => x.holdId === orderId)).toHaveLength(1);
  expect(await messagesFor(orderId)).toEqual([]);
  return orderId;
}

describe('recovery sweeper (in process)', () => {
  it('finishes an order whose hold exists: new + PlaceOrderV1, one hold', async () => {
    const u = await h.user();
    const id = await crashAfterHold(u);
    const r = await h.app.orderService.sweep();
    expect(r.finished).toEqual([id]);
    expect((await orderById(id))?.status).toBe('new');
    expect(await messagesFor(id)).toEqual([{ type: 'engine.place-order' }]);
    expect((await h.wallet.holds()).filter((x) => x.holdId === id)).toEqual([
      expect.objectContaining({ status: 'held' }),
    ]);
    expect((await h.app.orderService.sweep()).finished).toEqual([]); // nothing left to do
  });

  it('rejects and releases when the market was halted meanwhile', async () => {
    const u = await h.user({ fund: false });
    await h.wallet.credit(u.id, 'USD', 1_000_000n);
    const id = await crashAfterHold(u);
    await h.app.orderService.setHalted('BTC-USD', true, 'test', 'incident');
    try {
      const r = await h.app.orderService.sweep();
      expect(r.released).toEqual([id]);
    } finally {
      await h.app.orderService.setHalted('BTC-USD', false, 'test', undefined);
    }
    expect(await orderById(id)).toMatchObject({
      status: 'rejected',
      reason: 'MARKET_HALTED',
      hold_release_pending: false,
    });
    expect(await messagesFor(id)).toEqual([]);
    expect(await h.wallet.balance(u.id, 'USD')).toEqual({ available: 1_000_000n, held: 0n });
  });

  it('removes a pending order whose hold never happened and cannot (no funds)', async () => {
    const u = await h.user({ fund: false });
    await h.wallet.credit(u.id, 'USD', 1_000_000n);
    h.wallet.setDown(true);
    const res = await h.app.inject({ method: 'POST', url: '/api/v1/orders', headers: u.auth, payload: body() });
    expect(res.statusCode).toBe(503);
    const [row] = (await h.db.pool.query('SELECT id FROM orders.orders WHERE user_id = $1', [u.id])).rows;
    // The wallet is still down: the sweeper cannot learn the truth and leaves it alone.
    const r1 = await h.app.orderService.sweep();
    expect(r1.unresolved).toContain(row.id);
    h.wallet.setDown(false);
    // Meanwhile the funds went elsewhere.
    await h.db.pool.query(`UPDATE wallet_stub.balances SET available = 0 WHERE user_id = $1`, [u.id]);
    const r2 = await h.app.orderService.sweep();
    expect(r2.removed).toEqual([row.id]);
    expect(await orderById(row.id)).toBeUndefined();
    expect((await h.wallet.holds()).filter((x) => x.userId === u.id)).toEqual([]);
  });

  it('retries a release that failed until the wallet answers', async () => {
    const u = await h.user({ fund: false });
    await h.wallet.credit(u.id, 'USD', 1_000_000n);
    const id = await crashAfterHold(u);
    await h.db.pool.query(`UPDATE orders.orders SET created_at = now() - interval '1 hour' WHERE id = $1`, [id]);
    // Too old to finish (the user gave up long ago): it is released, but the release call fails the first time.
    const release = h.app.orderService.opts.wallet.release;
    let failures = 1;
    h.app.orderService.opts.wallet.release = async (...a) => {
      if (failures-- > 0) throw new Error('wallet down');
      return release(...a);
    };
    try {
      const r1 = await h.app.orderService.sweep();
      expect(r1.unresolved).toEqual([id]);
      expect(await orderById(id)).toMatchObject({
        status: 'rejected',
        reason: 'PENDING_EXPIRED',
        hold_release_pending: true,
      });
      const r2 = await h.app.orderService.sweep();
      expect(r2.released).toEqual([id]);
    } finally {
      h.app.orderService.opts.wallet.release = release;
    }
    expect(await orderById(id)).toMatchObject({ hold_release_pending: false });
    expect(await h.wallet.balance(u.id, 'USD')).toEqual({ available: 1_000_000n, held: 0n });
    expect(await messagesFor(id)).toEqual([]);
  });
});

describe('kill -9 between hold and commit (real processes)', () => {
  let vhost: TestVhost;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    vhost = await createTestVhost('order-crash');
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await vhost?.drop();
  });

  async function freePort(): Promise<number> {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const { port } = s.address() as { port: number };
    await new Promise((r) => s.close(r));
    return port;
  }

  async function startService(extra: Record<string, string>) {
    const port = await freePort();
    const child = spawn(process.execPath, [fileURLToPath(new URL('./main.ts', import.meta.url))], {
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'test',
        LOG_LEVEL: 'warn',
        HOST: '127.0.0.1',
        PORT: String(port),
        DATABASE_URL: h.db.url,
        AMQP_URL: vhost.url,
        AUTH_JWKS_URL: h.issuer.jwksUrl,
        INTERNAL_API_TOKEN: h.issuer.internalToken,
        WALLET_URL: h.wallet.url,
        SHUTDOWN_TIMEOUT_MS: '5000',
        ...extra,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    // Listen for the exit now: a kill -9 can end the process before the caller's failed fetch returns, and a later
    // `once(child, 'exit')` would then wait for an event that already happened.
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    let output = '';
    child.stdout!.on('data', (d) => (output += String(d)));
    child.stderr!.on('data', (d) => (output += String(d)));
    const base = `http://127.0.0.1:${port}`;
    await eventually(async () => (await fetch(`${base}/ready`).catch(() => undefined))?.status === 200, 30_000).catch(
      (err: unknown) => {
        throw new Error(`service did not become ready: ${String(err)}\n${output}`);
      },
    );
    return { child, base, exited, output: () => output };
  }

  it('the next instance’s sweeper finishes the order: one hold, one PlaceOrderV1 on the engine queue', async () => {
    const u = await h.user();
    const conn = await amqp.connect(vhost.url);
    const ch = await conn.createChannel();
    await declareExchanges(ch);
    await ch.assertQueue('orders.BTC-USD', { durable: true });
    await ch.bindQueue('orders.BTC-USD', COMMANDS_EXCHANGE, 'orders.BTC-USD');
    try {
      const first = await startService({ ORDER_FAULT: 'kill-after-hold' });
      const res = await fetch(`${first.base}/api/v1/orders`, {
        method: 'POST',
        headers: { ...u.auth, 'content-type': 'application/json' },
        body: JSON.stringify(body({ clientOrderId: 'crash-1' })),
      }).catch((err: unknown) => err);
      expect((res as { status?: number }).status).toBeUndefined(); // the connection died with the process
      const [, signal] = await first.exited;
      expect(signal).toBe('SIGKILL');
      const [row] = (await h.db.pool.query(`SELECT * FROM orders.orders WHERE client_order_id = 'crash-1'`)).rows;
      expect(row.status).toBe('pending');
      expect((await h.wallet.holds()).filter((x) => x.holdId === row.id)).toHaveLength(1);
      expect(await messagesFor(row.id)).toEqual([]);

      const second = await startService({ PENDING_ORDER_TIMEOUT_S: '1', SWEEP_INTERVAL_MS: '200' });
      await eventually(async () => (await orderById(row.id))?.status === 'new', 15_000);
      // The relay also sends what the in-process tests above left in the outbox; ours must be there exactly once.
      const cmds: Array<{ type: string; payload: { orderId: string; holdAmount: string } }> = [];
      await eventually(async () => {
        for (
          let m = await ch.get('orders.BTC-USD', { noAck: true });
          m;
          m = await ch.get('orders.BTC-USD', { noAck: true })
        ) {
          cmds.push(...(envelopesOf(m) as unknown as typeof cmds));
        }
        return cmds.some((c) => c.payload.orderId === row.id);
      }, 15_000);
      await new Promise((r) => setTimeout(r, 300));
      for (
        let m = await ch.get('orders.BTC-USD', { noAck: true });
        m;
        m = await ch.get('orders.BTC-USD', { noAck: true })
      ) {
        cmds.push(...(envelopesOf(m) as unknown as typeof cmds));
      }
      const ours = cmds.filter((c) => c.payload.orderId === row.id);
      expect(ours).toEqual([
        expect.objectContaining({
          type: 'engine.place-order',
          payload: expect.objectContaining({ holdAmount: '600000' }),
        }),
      ]);
      expect((await h.wallet.holds()).filter((x) => x.holdId === row.id)).toHaveLength(1);

      // The client retrying with its clientOrderId now gets the order.
      const retry = await fetch(`${second.base}/api/v1/orders`, {
        method: 'POST',
        headers: { ...u.auth, 'content-type': 'application/json' },
        body: JSON.stringify(body({ clientOrderId: 'crash-1' })),
      });
      expect(retry.status).toBe(200);
      expect(((await retry.json()) as { id: string; status: string }).id).toBe(row.id);

      second.child.kill('SIGTERM');
      const [code] = await second.exited;
      expect(code).toBe(0);
    } finally {
      await ch.close().catch(() => {});
      await conn.close().catch(() => {});
    }
  }, 90_000); // two real service processes start here: slow on a loaded CI machine
});
