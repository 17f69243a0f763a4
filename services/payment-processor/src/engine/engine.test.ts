// The engine fed through the real broker: commands published to `exchange.commands` → `orders.BTC-USD` → journal,
// outbox → relay → captured wallet/event queues. Real Postgres and RabbitMQ, own database and vhost.
import { loadCatalog } from '@exchange/contracts/markets';
import { CancelOrderV1, PlaceOrderV1, ROUTES } from '@exchange/contracts/trading';
import type { Envelope } from '@exchange/contracts';
import { createTestIssuer, type TestIssuer } from '@exchange/auth-client/testing';
import { buildApp } from '../app.ts';
import { authOptions, type Runtime } from '../runtime.ts';
import { generateCommands } from '../testing/commands.ts';
import {
  Bus,
  createEnv,
  journal,
  lastSeq,
  MGMT_URL,
  outboxMessages,
  startInProcess,
  stopInProcess,
  testConfig,
  waitFor,
  type Env,
} from '../testing/harness.ts';
import { canonical, referenceRun, timeless } from '../testing/reference.ts';
import type { JournalCommand } from './core.ts';
import { uuidv5 } from '../uuid.ts';

const market = loadCatalog().market('BTC-USD')!;
const QUEUE = ROUTES.ordersQueue('BTC-USD');

let env: Env;
let rt: Runtime;
let bus: Bus;
const commands = generateCommands(240, { seed: 11, amends: true, stops: true });
let ref = referenceRun(market, commands);

beforeAll(async () => {
  env = await createEnv('pp_engine');
  bus = await Bus.open(env.vhost.url);
  rt = await startInProcess(env, { SNAPSHOT_EVERY: '40', RABBITMQ_MANAGEMENT_URL: MGMT_URL });
  await bus.publish(QUEUE, commands);
  await waitFor('all commands journaled', async () => (await lastSeq(env.db)) === ref.commands.length);
  // the same run with the id generation (epoch) the engine applied each command in
  const epochs = (await journal(env.db)).map((r) => (r.command as JournalCommand).epoch);
  expect(new Set(epochs).size).toBe(1);
  expect(epochs[0]).toMatch(/^[0-9a-f-]{36}$/);
  ref = referenceRun(market, commands, undefined, epochs);
  await rt.messaging.relay!.drained();
  const settles = ref.messages.filter((m) => m.routingKey === ROUTES.walletSettlementQueue).length;
  await waitFor('wallet messages delivered', async () => bus.wallet.length >= settles);
  const events = ref.messages.filter((m) => m.routingKey !== ROUTES.walletSettlementQueue).length;
  await waitFor(
    'events delivered',
    async () => bus.events.filter((e) => e.message.type !== 'market.book-snapshot').length >= events,
  );
}, 90_000);

afterAll(async () => {
  await stopInProcess(rt);
  await bus.close();
  await env.drop();
});

describe('engine through the broker', () => {
  it('journals every command with exactly the events of an uninterrupted in-memory run', async () => {
    const rows = await journal(env.db);
    expect(rows.map((r) => r.seq)).toEqual(ref.commands.map((_, i) => i + 1));
    expect(canonical(rows.map((r) => r.command))).toBe(canonical(ref.commands));
    expect(canonical(rows.map((r) => r.events))).toBe(canonical(ref.results.map((r) => r.events)));
    const { rows: snaps } = await env.db.pool.query<{ seq: string }>(
      'SELECT seq FROM payment.engine_snapshots ORDER BY seq',
    );
    expect(snaps.map((s) => Number(s.seq))).toEqual(
      [40, 80, 120, 160, 200, 240].filter((s) => s <= ref.commands.length).slice(-3),
    );
  });

  it('applied the commands in group-commit batches, none of them split (the batched path is what matched above)', async () => {
    const consumed = (await rt.registry.getSingleMetric('messages_consumed_total')!.get()).values.filter(
      (v) => v.labels.queue === QUEUE,
    );
    const count = (outcome: string) => consumed.find((v) => v.labels.outcome === outcome)?.value ?? 0;
    expect(count('ok')).toBe(commands.length);
    expect(count('batch_split')).toBe(0);
    // published at once, so batches of more than one command formed: fewer transactions than commands
    const sizes = (await rt.registry.getSingleMetric('engine_batch_commands')!.get()).values;
    const total = (suffix: string) =>
      sizes.find((v) => (v as { metricName?: string }).metricName === `engine_batch_commands_${suffix}`)!.value;
    expect(total('sum')).toBe(commands.length);
    expect(total('count')).toBeLessThan(commands.length);
  });

  it('sends settle-trade with the amounts of Market.fillAmounts, and release-hold after the last settle of an order', async () => {
    const wallet = bus.wallet.map((c) => c.message);
    const want = ref.messages
      .filter((m) => m.routingKey === ROUTES.walletSettlementQueue)
      .map((m) => timeless(m.message));
    expect(wallet.map(timeless)).toEqual(want);

    const trades = new Map(
      bus.events
        .filter((e) => e.message.type === 'engine.trade-executed')
        .map((e) => [(e.message.payload as { tradeId: string }).tradeId, e.message.payload as Record<string, string>]),
    );
    const settles = wallet.filter((m) => m.type === 'wallet.settle-trade');
    expect(settles.length).toBeGreaterThan(20);
    for (const s of settles) {
      const p = s.payload as Record<string, string> & { buyer: { orderId: string }; seller: { orderId: string } };
      const t = trades.get(p.tradeId!)!;
      expect(t).toBeDefined();
      const a = market.fillAmounts(BigInt(t.priceTicks!), BigInt(t.quantityLots!), t.takerSide as 'buy' | 'sell');
      expect([p.baseAmount, p.quoteAmount, p.buyerFee, p.sellerFee]).toEqual(
        [a.baseAmount, a.quoteAmount, a.buyerFee, a.sellerFee].map(String),
      );
      expect([p.baseAsset, p.quoteAsset]).toEqual(['BTC', 'USD']);
    }
    // Every order that finished gets exactly one release, after every settle naming it.
    const lastSettle = new Map<string, number>();
    wallet.forEach((m, i) => {
      if (m.type !== 'wallet.settle-trade') return;
      const p = m.payload as { buyer: { orderId: string }; seller: { orderId: string } };
      lastSettle.set(p.buyer.orderId, i);
      lastSettle.set(p.seller.orderId, i);
    });
    const releases = new Map<string, number>();
    wallet.forEach((m, i) => {
      if (m.type !== 'wallet.release-hold') return;
      const id = (m.payload as { holdId: string }).holdId;
      expect(releases.has(id)).toBe(false);
      releases.set(id, i);
    });
    expect(releases.size).toBeGreaterThan(50);
    // each release names what its order's settles captured in all, so the wallet can wait for an overtaken one
    const totals = new Map<string, { base: bigint; quote: bigint }>();
    for (const m of settles) {
      const p = m.payload as { buyer: { orderId: string }; seller: { orderId: string } } & Record<string, string>;
      for (const id of [p.buyer.orderId, p.seller.orderId]) {
        const t = totals.get(id) ?? { base: 0n, quote: 0n };
        t.base += BigInt(p.baseAmount!);
        t.quote += BigInt(p.quoteAmount!);
        totals.set(id, t);
      }
    }
    for (const m of wallet.filter((x) => x.type === 'wallet.release-hold')) {
      const p = m.payload as Record<string, string>;
      const t = totals.get(p.holdId!) ?? { base: 0n, quote: 0n };
      expect(p).toMatchObject({
        market: 'BTC-USD',
        baseAsset: 'BTC',
        quoteAsset: 'USD',
        filledBase: String(t.base),
        filledQuote: String(t.quote),
      });
    }
    for (const [orderId, i] of lastSettle) {
      const r = releases.get(orderId);
      if (r !== undefined) expect(r).toBeGreaterThan(i);
    }
    // …and a filled order's release comes right after its fills were settled.
    const filled = bus.events
      .filter((e) => e.message.type === 'engine.order-updated')
      .map((e) => e.message.payload as { orderId: string; status: string })
      .filter((p) => p.status === 'filled');
    for (const f of filled) expect(releases.has(f.orderId)).toBe(true);
  });

  it('publishes cumulative order updates and throttled book snapshots', () => {
    const updates = bus.events.filter((e) => e.message.type === 'engine.order-updated');
    expect(updates.map((u) => u.routingKey).every((k) => k === 'engine.order-updated.BTC-USD')).toBe(true);
    const want = ref.messages.filter((m) => m.message.type === 'engine.order-updated').map((m) => timeless(m.message));
    expect(updates.map((u) => timeless(u.message))).toEqual(want);
    const books = bus.events.filter((e) => e.message.type === 'market.book-snapshot');
    expect(books.length).toBeGreaterThan(0);
    expect(books.length).toBeLessThan(ref.commands.length);
  });

  it('applies the same command once however often it is delivered (same message id, or same order id)', async () => {
    const before = { journal: await journal(env.db), outbox: await outboxMessages(env.db) };
    const place = commands.find((c) => c.type === PlaceOrderV1.type)!;
    const cancel = commands.find((c) => c.type === CancelOrderV1.type)!;
    const reissued: Envelope[] = [
      { ...place, id: uuidv5('reissued-place') },
      { ...cancel, id: uuidv5('reissued-cancel') },
    ];
    // counted before publishing: the consumer may apply them before a count taken afterwards
    const { rows } = await env.db.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM payment.inbox WHERE queue = $1`,
      [QUEUE],
    );
    await bus.publish(QUEUE, [place, cancel, place, ...reissued]);
    await waitFor('duplicates consumed', async () => {
      const r = await env.db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM payment.inbox WHERE queue = $1`, [
        QUEUE,
      ]);
      return Number(r.rows[0]!.n) === Number(rows[0]!.n) + 2;
    });
    // a marker command after the duplicates proves they were all processed before it
    const marker = generateCommands(1, { seed: 12345 });
    await bus.publish(QUEUE, marker);
    await waitFor('marker journaled', async () => (await lastSeq(env.db)) === ref.commands.length + 1);
    const after = await journal(env.db);
    expect(after.slice(0, -1)).toEqual(before.journal);
    expect(after.at(-1)!.message_id).toBe(marker[0]!.id);
    const outbox = await outboxMessages(env.db);
    const added = outbox.slice(before.outbox.length).map((o) => o.message);
    expect(added.every((m) => m.causationId === marker[0]!.id || m.type === 'market.book-snapshot')).toBe(true);
  });
});

describe('admin API', () => {
  let issuer: TestIssuer;
  beforeAll(async () => {
    issuer = await createTestIssuer();
  });
  afterAll(async () => {
    await issuer.close();
  });

  it('serves engine status and dead letters to admins only; readiness checks database and broker', async () => {
    const config = testConfig(env);
    const app = await buildApp({
      pool: rt.pool,
      messaging: rt.messaging,
      engines: rt.engines,
      auth: { ...authOptions(config), ...issuer.authOptions() },
      replicaId: rt.replicaId,
      registry: rt.registry,
      logLevel: 'silent',
    });
    try {
      // the management API (stats lag a little) names this replica the single active consumer
      await waitFor('consumer reported active', async () => (await rt.engines.status())[0]!.consumer === 'active');
      const admin = issuer.sign({ sub: uuidv5('admin'), roles: ['admin'], mfaAt: Math.floor(Date.now() / 1000) });
      const user = issuer.sign({ sub: uuidv5('user'), roles: ['user'] });
      const res = await app.inject({
        url: '/api/v1/admin/engine/markets',
        headers: { authorization: `Bearer ${admin}` },
      });
      expect(res.statusCode).toBe(200);
      const body = res.json() as { markets: Array<Record<string, unknown>> };
      expect(body.markets).toEqual([
        expect.objectContaining({
          market: 'BTC-USD',
          queue: 'orders.BTC-USD',
          lastSeq: ref.commands.length + 1,
          loadedSeq: ref.commands.length + 1,
          lastSnapshotSeq: Math.floor((ref.commands.length + 1) / 40) * 40,
          consumer: 'active',
        }),
      ]);
      expect(body.markets[0]!.restingOrders).toBe(ref.core.orderBook.orderCount + 1);
      const forbidden = await app.inject({
        url: '/api/v1/admin/engine/markets',
        headers: { authorization: `Bearer ${user}` },
      });
      expect(forbidden.statusCode).toBe(403);
      expect((await app.inject({ url: '/api/v1/admin/engine/markets' })).statusCode).toBe(401);
      const dl = await app.inject({
        url: '/api/v1/admin/dead-letters/payment-processor',
        headers: { authorization: `Bearer ${admin}` },
      });
      expect(dl.statusCode).toBe(200);
      expect(dl.json()).toEqual({ items: [], nextCursor: null });
      expect(
        (
          await app.inject({
            url: '/api/v1/admin/dead-letters/payment-processor',
            headers: { authorization: `Bearer ${user}` },
          })
        ).statusCode,
      ).toBe(403);
      // a message that breaks its contract is dead-lettered at once, listed and retryable by admins
      const bad = { ...commands[0]!, id: uuidv5('poison'), payload: { market: 'BTC-USD', orderId: 'nope' } };
      await bus.publish(QUEUE, [bad as Envelope]);
      const listed = await waitFor('dead letter listed', async () => {
        const r = await app.inject({
          url: '/api/v1/admin/dead-letters/payment-processor',
          headers: { authorization: `Bearer ${admin}` },
        });
        const items = (r.json() as { items: Array<{ id: string; queue: string; messageId: string; reason: string }> })
          .items;
        return items.length ? items : undefined;
      });
      expect(listed).toEqual([
        expect.objectContaining({ queue: QUEUE, messageId: bad.id, reason: expect.stringMatching(/invalid message/) }),
      ]);
      // retrying it is an admin write: with 2FA on, the check must be recent
      const staleAdmin = issuer.sign({
        sub: uuidv5('admin'),
        roles: ['admin'],
        mfaAt: Math.floor(Date.now() / 1000) - 3600,
      });
      const retry = await app.inject({
        method: 'POST',
        url: `/api/v1/admin/dead-letters/payment-processor/${listed[0]!.id}/retry`,
        headers: { authorization: `Bearer ${staleAdmin}` },
      });
      expect(retry.statusCode).toBe(403);
      expect((retry.json() as { error: { code: string } }).error.code).toBe('MFA_REQUIRED');
      const stillListed = await app.inject({
        url: '/api/v1/admin/dead-letters/payment-processor',
        headers: { authorization: `Bearer ${staleAdmin}` },
      });
      expect(stillListed.statusCode).toBe(200);
      expect(await lastSeq(env.db)).toBe(ref.commands.length + 1);
      const ready = await app.inject({ url: '/ready' });
      expect(ready.statusCode).toBe(200);
      expect(Object.keys((ready.json() as { checks: object }).checks).sort()).toEqual(['broker', 'database']);
      const metrics = (await app.inject({ url: '/metrics' })).body;
      expect(metrics).toMatch(/engine_orders_total\{[^}]*market="BTC-USD"/);
      expect(metrics).toMatch(/trades_total\{[^}]*market="BTC-USD"[^}]*\} [1-9]/);
      expect(metrics).toContain('engine_command_duration_seconds_bucket');
    } finally {
      await app.close();
    }
  });
});
