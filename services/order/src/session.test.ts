/**
 * Issue 17, the session side in the order service: fee tiers resolved at acceptance and carried to the engine,
 * GET /api/v1/account/fees, the dead-man's switch (fires, re-arming postpones it, survives a restart), and
 * cancel-on-disconnect (socket close, market scope, several sessions, a crashed replica's sessions).
 * No timed assertions: every wait polls for an outcome (or for the database clock to pass a deadline).
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { buildCatalog, DEFAULT_ASSETS, DEFAULT_MARKETS } from '@exchange/contracts/markets';
import { buildApp } from './app.ts';
import { createHarness, type Harness } from './testing/harness.ts';
import { createWalletClient } from './clients/wallet-client.ts';
import { startDeadManScheduler } from './session/dead-man-switch.ts';
import { silentLogger } from '@exchange/messaging';
import { signApiRequest, type Scope } from '@exchange/auth-client';

const catalog = buildCatalog(
  DEFAULT_ASSETS,
  DEFAULT_MARKETS.map((m) =>
    m.symbol === 'BTC-USD'
      ? {
          ...m,
          feeTiers: [
            { minVolume: '1000', makerFeeBps: 5, takerFeeBps: 15 },
            { minVolume: '5000', makerFeeBps: -2, takerFeeBps: 10 },
          ],
        }
      : m,
  ),
);

let h: Harness;
const sockets: WebSocket[] = [];
beforeAll(async () => {
  h = await createHarness({ catalog, codStaleMs: 1000 });
  await h.app.listen({ port: 0, host: '127.0.0.1' });
});
afterAll(async () => {
  for (const s of sockets) s.close();
  await h?.close();
});

async function until<T>(fn: () => Promise<T | undefined | false>, what: string, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const place = async (auth: Record<string, string>, over: Record<string, unknown> = {}) => {
  const res = await h.app.inject({
    method: 'POST',
    url: '/api/v1/orders',
    headers: auth,
    payload: { market: 'BTC-USD', side: 'buy', type: 'limit', price: '1000', quantity: '0.01', ...over },
  });
  expect(res.statusCode).toBe(201);
  return res.json<{ id: string; makerFeeBps: number; takerFeeBps: number; status: string }>();
};

/** The reason of every CancelOrderV1 in the outbox for these orders (id → reason). */
async function cancels(ids: string[]): Promise<Map<string, string>> {
  const { rows } = await h.db.pool.query<{ id: string; reason: string }>(
    `SELECT message->'payload'->>'orderId' AS id, message->'payload'->>'reason' AS reason FROM orders.outbox
      WHERE type = 'engine.cancel-order' AND message->'payload'->>'orderId' = ANY($1)`,
    [ids],
  );
  return new Map(rows.map((r) => [r.id, r.reason]));
}

/**
 * Record `quote` cents of BTC-USD volume of `userId`, `daysAgo` UTC days ago, as the trade projection does for each
 * fill (its roll-up; the projection itself is covered in events.test.ts).
 */
async function fill(userId: string, quoteCents: bigint, daysAgo = 0) {
  await h.db.pool.query(
    `INSERT INTO orders.volume_daily AS v (user_id, market, day, quote_volume)
     VALUES ($1, 'BTC-USD', (now() AT TIME ZONE 'UTC')::date - $3::int, $2)
     ON CONFLICT (user_id, market, day) DO UPDATE SET quote_volume = v.quote_volume + EXCLUDED.quote_volume`,
    [userId, quoteCents.toString(), daysAgo],
  );
}

describe('fee tiers', () => {
  it('resolves the tier at acceptance exactly at the threshold and carries its rates to the engine', async () => {
    const u = await h.user();
    const fees = async () =>
      (await h.app.inject({ method: 'GET', url: '/api/v1/account/fees', headers: u.auth })).json<{
        windowDays: number;
        markets: Array<Record<string, unknown>>;
      }>();
    const btc = async () => (await fees()).markets.find((m) => m.market === 'BTC-USD')!;

    expect(await btc()).toMatchObject({
      volume30d: '0.00',
      volumeAsset: 'USD',
      tier: { tier: 0, makerFeeBps: 10, takerFeeBps: 20, minVolume: '0.00' },
      nextTier: { tier: 1, minVolume: '1000.00', makerFeeBps: 5, takerFeeBps: 15 },
      volumeToNextTier: '1000.00',
    });
    const a = await place(u.auth);
    expect(a).toMatchObject({ makerFeeBps: 10, takerFeeBps: 20 });

    // 999.99 USD in the window, and a big fill outside it (31 days ago): still the base tier
    await fill(u.id, 99_999n);
    await fill(u.id, 10_000_000n, 31);
    expect(await btc()).toMatchObject({ volume30d: '999.99', tier: { tier: 0 }, volumeToNextTier: '0.01' });
    expect(await place(u.auth)).toMatchObject({ makerFeeBps: 10, takerFeeBps: 20 });

    // one cent more: exactly 1000.00, tier 1
    await fill(u.id, 1n);
    expect(await btc()).toMatchObject({ volume30d: '1000.00', tier: { tier: 1 }, volumeToNextTier: '4000.00' });
    const b = await place(u.auth);
    expect(b).toMatchObject({ makerFeeBps: 5, takerFeeBps: 15 });

    // 5000.00: the rebate tier, the top one
    await fill(u.id, 400_000n);
    expect(await btc()).toMatchObject({
      tier: { tier: 2, makerFeeBps: -2, takerFeeBps: 10 },
      nextTier: null,
      volumeToNextTier: null,
    });
    const c = await place(u.auth);
    expect(c).toMatchObject({ makerFeeBps: -2, takerFeeBps: 10 });
    // other markets are unaffected (volume counts per market)
    expect((await fees()).markets.find((m) => m.market === 'ETH-USD')).toMatchObject({ volume30d: '0.00' });

    // the engine gets the rates of each order in its place command
    const { rows } = await h.db.pool.query<{ id: string; maker: number; taker: number }>(
      `SELECT message->'payload'->>'orderId' AS id, (message->'payload'->>'makerFeeBps')::int AS maker,
              (message->'payload'->>'takerFeeBps')::int AS taker
         FROM orders.outbox WHERE type = 'engine.place-order' AND message->'payload'->>'userId' = $1`,
      [u.id],
    );
    const byId = new Map(rows.map((r) => [r.id, [r.maker, r.taker]]));
    expect(byId.get(a.id)).toEqual([10, 20]);
    expect(byId.get(b.id)).toEqual([5, 15]);
    expect(byId.get(c.id)).toEqual([-2, 10]);
  });
});

describe("dead-man's switch", () => {
  const arm = async (auth: Record<string, string>, timeoutSeconds: number) =>
    h.app.inject({
      method: 'POST',
      url: '/api/v1/orders/cancel-all-after',
      headers: auth,
      payload: { timeoutSeconds },
    });
  const dbPast = (iso: string) =>
    until(
      async () => (await h.db.pool.query<{ p: boolean }>(`SELECT now() > $1::timestamptz AS p`, [iso])).rows[0]!.p,
      `database clock past ${iso}`,
    );

  it('refuses bad input with 400 and stable codes', async () => {
    const u = await h.user();
    for (const body of [{ timeoutSeconds: -1 }, { timeoutSeconds: 1.5 }, { timeoutSeconds: 86_401 }, {}]) {
      const res = await h.app.inject({
        method: 'POST',
        url: '/api/v1/orders/cancel-all-after',
        headers: u.auth,
        payload: body,
      });
      expect(res.statusCode).toBe(400);
      expect(res.json<{ error: { code: string } }>().error.code).toBe('VALIDATION_ERROR');
    }
    expect(
      (await h.app.inject({ method: 'POST', url: '/api/v1/orders/cancel-all-after', payload: {} })).statusCode,
    ).toBe(401);
  });

  it('fires: cancels every open order of the user once, and only theirs; re-arming postponed it first', async () => {
    const u = await h.user();
    const other = await h.user();
    const mine = [await place(u.auth), await place(u.auth, { market: 'ETH-USD', price: '100', quantity: '0.1' })];
    const theirs = await place(other.auth);
    const first = await arm(u.auth, 1);
    expect(first.statusCode).toBe(200);
    const armed = first.json<{ armed: boolean; firesAt: string }>();
    expect(armed).toMatchObject({ armed: true, timeoutSeconds: 1, cancelledOnArm: 0 });
    // re-armed before its deadline: the deadline moves, and passing the old one fires nothing
    const again = (await arm(u.auth, 3)).json<{ firesAt: string }>();
    expect(Date.parse(again.firesAt)).toBeGreaterThan(Date.parse(armed.firesAt));
    await dbPast(armed.firesAt);
    expect(await h.app.deadManSwitches.fireDue()).toEqual([]);
    expect((await cancels(mine.map((o) => o.id))).size).toBe(0);
    // GET shows it armed until the new deadline
    expect(
      (await h.app.inject({ method: 'GET', url: '/api/v1/orders/cancel-all-after', headers: u.auth })).json(),
    ).toMatchObject({ armed: true, timeoutSeconds: 3, firesAt: again.firesAt });

    const fired = await until(async () => {
      const r = await h.app.deadManSwitches.fireDue();
      return r.length ? r : undefined;
    }, 'the switch to fire');
    expect(fired).toEqual([{ userId: u.id, cancelled: 2 }]);
    const sent = await cancels([...mine.map((o) => o.id), theirs.id]);
    expect(sent).toEqual(new Map(mine.map((o) => [o.id, 'dead_man_switch'])));
    // fired once: the row is gone, nothing fires again
    expect(await h.app.deadManSwitches.fireDue()).toEqual([]);
    expect(
      (await h.app.inject({ method: 'GET', url: '/api/v1/orders/cancel-all-after', headers: u.auth })).json(),
    ).toEqual({ armed: false, timeoutSeconds: 0, firesAt: null });
  });

  it('a bot arms it with an API key of the trade scope; a read-only key may only look', async () => {
    const u = await h.user();
    const call = (scopes: Scope[], method: 'GET' | 'POST', body?: string) => {
      const { apiKey, secret } = h.issuer.createApiKey(u.id, scopes);
      const path = '/api/v1/orders/cancel-all-after';
      return h.app.inject({
        method,
        url: path,
        headers: {
          ...(body ? { 'content-type': 'application/json' } : {}),
          ...signApiRequest({ apiKey, secret, method, path, ...(body ? { body } : {}) }),
        },
        ...(body ? { payload: body } : {}),
      });
    };
    const armed = await call(['trade'], 'POST', JSON.stringify({ timeoutSeconds: 30 }));
    expect(armed.statusCode).toBe(200);
    expect(armed.json()).toMatchObject({ armed: true, timeoutSeconds: 30 });
    const refused = await call(['read'], 'POST', JSON.stringify({ timeoutSeconds: 0 }));
    expect(refused.statusCode).toBe(403);
    expect(refused.json<{ error: { code: string } }>().error.code).toBe('INSUFFICIENT_SCOPE');
    expect((await call(['read'], 'GET')).json()).toMatchObject({ armed: true, timeoutSeconds: 30 });
    await arm(u.auth, 0);
  });

  it('0 disarms; a call after the deadline cancels first, whatever the scheduler did', async () => {
    const u = await h.user();
    const o = await place(u.auth);
    await arm(u.auth, 1);
    expect((await arm(u.auth, 0)).json()).toEqual({
      armed: false,
      timeoutSeconds: 0,
      firesAt: null,
      cancelledOnArm: 0,
    });
    const late = (await arm(u.auth, 1)).json<{ firesAt: string }>();
    await dbPast(late.firesAt);
    // no scheduler ran: the late re-arm itself fires the expired switch
    expect((await arm(u.auth, 60)).json()).toMatchObject({ armed: true, timeoutSeconds: 60, cancelledOnArm: 1 });
    expect(await cancels([o.id])).toEqual(new Map([[o.id, 'dead_man_switch']]));
    await arm(u.auth, 0);
  });

  it('survives a restart: armed on one instance, fired by a new one (state in the database)', async () => {
    const u = await h.user();
    const o = await place(u.auth);
    expect((await arm(u.auth, 1)).statusCode).toBe(200);
    // "restart": a fresh order-service instance on the same database, its own scheduler
    const restarted = await buildApp({
      pool: h.db.pool,
      catalog,
      wallet: createWalletClient({ baseUrl: h.wallet.url, internalToken: h.issuer.internalToken }),
      auth: h.issuer.authOptions(),
      management: { managementUrl: 'http://127.0.0.1:1', vhost: '/' },
      fastify: { logger: false },
    });
    const stop = startDeadManScheduler(restarted.deadManSwitches, 100, silentLogger);
    try {
      expect(await until(async () => (await cancels([o.id])).get(o.id), 'the cancel')).toBe('dead_man_switch');
    } finally {
      await stop();
      await restarted.close();
    }
  });
});

describe('cancel-on-disconnect', () => {
  type Frame = { type: string; code?: string; enabled?: boolean; market?: string | null };
  async function session(token: string) {
    const url = `ws://127.0.0.1:${(h.app.server.address() as AddressInfo).port}/api/v1/stream`;
    const ws = new WebSocket(url);
    sockets.push(ws);
    const frames: Frame[] = [];
    ws.addEventListener('message', (e) => frames.push(JSON.parse(String(e.data)) as Frame));
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener('open', () => resolve());
      ws.addEventListener('error', () => reject(new Error('websocket error')));
    });
    const next = (type: string) =>
      until(async () => {
        const i = frames.findIndex((f) => f.type === type);
        return i >= 0 ? frames.splice(i, 1)[0] : undefined;
      }, `a ${type} frame`);
    const send = (o: unknown) => ws.send(JSON.stringify(o));
    send({ op: 'auth', token });
    await next('authenticated');
    return { ws, send, next, frames };
  }
  const codRows = async (userId: string) =>
    (await h.db.pool.query(`SELECT 1 FROM orders.cod_sessions WHERE user_id = $1`, [userId])).rowCount;

  it('needs auth, a boolean and a known market', async () => {
    const u = await h.user();
    const url = `ws://127.0.0.1:${(h.app.server.address() as AddressInfo).port}/api/v1/stream`;
    const anon = new WebSocket(url);
    sockets.push(anon);
    const got: Frame[] = [];
    anon.addEventListener('message', (e) => got.push(JSON.parse(String(e.data)) as Frame));
    await new Promise((r) => anon.addEventListener('open', r));
    anon.send(JSON.stringify({ op: 'cancel_on_disconnect', enabled: true }));
    expect((await until(async () => got[0], 'an error')).code).toBe('UNAUTHENTICATED');
    const s = await session(u.token);
    s.send({ op: 'cancel_on_disconnect', enabled: 'yes' });
    expect((await s.next('error')).code).toBe('BAD_MESSAGE');
    s.send({ op: 'cancel_on_disconnect', enabled: true, market: 'DOGE-USD' });
    expect((await s.next('error')).code).toBe('INVALID_MARKET');
    expect(await codRows(u.id)).toBe(0);
  });

  it("a dropped COD session cancels the user's orders in its market, even with another session still open", async () => {
    const u = await h.user();
    const other = await h.user();
    const btc = [await place(u.auth), await place(u.auth)];
    const eth = await place(u.auth, { market: 'ETH-USD', price: '100', quantity: '0.1' });
    const theirs = await place(other.auth);
    const cod = await session(u.token);
    cod.send({ op: 'cancel_on_disconnect', enabled: true, market: 'BTC-USD' });
    expect(await cod.next('cancel_on_disconnect')).toMatchObject({ enabled: true, market: 'BTC-USD' });
    const plain = await session(u.token); // a second session of the same user, without COD
    expect(await codRows(u.id)).toBe(1);
    cod.ws.close();
    const sent = await until(async () => {
      const m = await cancels([...btc.map((o) => o.id), eth.id, theirs.id]);
      return m.size >= 2 ? m : undefined;
    }, 'the cancels');
    expect(sent).toEqual(new Map(btc.map((o) => [o.id, 'disconnect'])));
    expect(await codRows(u.id)).toBe(0);
    // the other session closing (no COD) cancels nothing more
    plain.ws.close();
    const later = await place(u.auth);
    await until(async () => !h.app.streamHub.authenticated().some((c) => c.userId === u.id), 'sockets gone');
    expect(await cancels([eth.id, later.id])).toEqual(new Map());
  });

  it('turned off while connected: closing cancels nothing', async () => {
    const u = await h.user();
    const o = await place(u.auth);
    const s = await session(u.token);
    s.send({ op: 'cancel_on_disconnect', enabled: true });
    await s.next('cancel_on_disconnect');
    s.send({ op: 'cancel_on_disconnect', enabled: false });
    expect(await s.next('cancel_on_disconnect')).toMatchObject({ enabled: false, market: null });
    expect(await codRows(u.id)).toBe(0);
    s.ws.close();
    await until(async () => !h.app.streamHub.authenticated().some((c) => c.userId === u.id), 'socket gone');
    expect(await cancels([o.id])).toEqual(new Map());
  });

  it("a crashed replica's sessions are ended by the sweep; live sessions are kept fresh", async () => {
    const u = await h.user();
    const live = await h.user();
    const o = await place(u.auth);
    const kept = await place(live.auth);
    // a session held by a replica that died (kill -9): nobody refreshes it any more
    await h.db.pool.query(
      `INSERT INTO orders.cod_sessions (id, user_id, market, instance_id, seen_at)
       VALUES ($1, $2, NULL, $3, now() - interval '1 hour')`,
      [randomUUID(), u.id, randomUUID()],
    );
    // a live session on this replica, older than the grace period but refreshed by the heartbeat
    const s = await session(live.token);
    s.send({ op: 'cancel_on_disconnect', enabled: true });
    await s.next('cancel_on_disconnect');
    await h.db.pool.query(`UPDATE orders.cod_sessions SET seen_at = now() - interval '1 hour' WHERE user_id = $1`, [
      live.id,
    ]);
    const ended = await h.app.cancelOnDisconnect.tick();
    expect(ended).toEqual([expect.objectContaining({ userId: u.id, cancelled: 1, cause: 'stale' })]);
    expect(await cancels([o.id, kept.id])).toEqual(new Map([[o.id, 'disconnect']]));
    expect(await codRows(live.id)).toBe(1);
    s.ws.close();
    expect(await until(async () => (await cancels([kept.id])).get(kept.id), 'the live session cancel')).toBe(
      'disconnect',
    );
  });
});
