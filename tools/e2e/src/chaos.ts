/**
 * `pnpm test:chaos [--profile full|short] [--json results.json]`
 *
 * The whole stack (several payment-processor replicas) on a private PostgreSQL cluster and a private RabbitMQ node,
 * under a steady order load through the gateway. Faults are injected one after another; after each one heals, the
 * load pauses, the flow settles and the checks run. One table row per fault; exit code 1 when any check fails.
 * The private cluster and node are the only things restarted, alarmed or killed besides the stack's own processes.
 */
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { ExchangeClient } from '@exchange/sdk';
import { startPrivateBroker } from '@exchange/messaging/private-broker';
import type { RunningProcess, ServiceName } from '@exchange/stack';
import { startPrivatePostgres } from './private-postgres.ts';
import { recordFailure, type FlowStats } from './load.ts';
import type { TestStack } from './harness.ts';

const { values: args } = parseArgs({
  options: { profile: { type: 'string', default: 'full' }, json: { type: 'string' } },
});
const SHORT = args.profile === 'short';
/** How long a fault may take to heal and the stack to take orders again before the run fails. */
const RECOVERY_LIMIT_MS = 180_000;

// ------------------------------------------------------------------------------------------------------------ load

interface Trader {
  userId: string;
  client: ExchangeClient;
}

/** Limit orders (and some cancels) around a mid on two markets, as many as the workers manage, until paused. */
class Load {
  readonly stats: FlowStats = { sent: 0, accepted: 0, rejected4xx: 0, serverErrors: 0, networkErrors: 0, errors: [] };
  readonly accepted: string[] = [];
  private running = false;
  private workers: Promise<void>[] = [];
  private n = 0;
  private readonly traders: Trader[];
  private readonly concurrency: number;
  constructor(traders: Trader[], concurrency: number) {
    this.traders = traders;
    this.concurrency = concurrency;
  }

  resume(): void {
    if (this.running) return;
    this.running = true;
    this.workers = Array.from({ length: this.concurrency }, (_, w) => this.worker(w));
  }

  /**
   * Stop taking new orders; resolves once the ones in flight are answered. A request is retried while the stack
   * answers 5xx, so a service that never comes back would hold this forever: it fails after `limitMs` instead.
   */
  async pause(limitMs = 180_000): Promise<void> {
    this.running = false;
    await within(limitMs, Promise.all(this.workers), 'the load did not stop: requests still get 5xx or no answer');
  }

  private async worker(w: number): Promise<void> {
    while (this.running) {
      const i = this.n++;
      const t = this.traders[(i + w) % this.traders.length]!;
      if (i % 10 === 9 && this.accepted.length > 0) {
        const id = this.accepted[(i * 7919) % this.accepted.length]!;
        await this.retrying(() => t.client.cancelOrder(id)).catch(() => {});
        continue;
      }
      const btc = (i * 37) % 10 < 7;
      const side = (i * 13) % 2 === 0 ? ('buy' as const) : ('sell' as const);
      const offset = ((i * 7) % 40) - 20;
      const body = {
        market: btc ? 'BTC-USD' : 'ETH-USD',
        side,
        type: 'limit' as const,
        price: btc
          ? String(60_000 + (side === 'buy' ? offset : -offset))
          : (3000 + (side === 'buy' ? offset : -offset) / 10).toFixed(1),
        quantity: btc ? (0.01 * (1 + (i % 20))).toFixed(2) : (0.1 * (1 + (i % 20))).toFixed(1),
        timeInForce: i % 7 === 0 ? ('IOC' as const) : ('GTC' as const),
        clientOrderId: `chaos-${i}`,
      };
      this.stats.sent++;
      const order = await this.retrying(() => t.client.placeOrder(body)).catch(() => undefined);
      if (order) {
        this.stats.accepted++;
        this.accepted.push(order.id);
      }
    }
  }

  /** Retry 5xx and network failures (counted, never hidden) with the same request until answered or 4xx. */
  private async retrying<T>(call: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await call();
      } catch (e) {
        if (recordFailure(this.stats, e) === 'client') throw e;
        await sleep(Math.min(200 * (attempt + 1), 2_000));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------- checks

interface Check {
  ok: boolean;
  detail: string;
}

interface Row {
  fault: string;
  recoverS: number;
  orders: Check;
  trades: Check;
  balances: Check;
  deadLetters: Check;
  holds: Check;
  reconciliation: Check;
  serverErrors: number;
  networkErrors: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `work`, or an error naming what did not happen once `ms` have passed (the harness then prints the logs). */
async function within<T>(ms: number, work: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} (after ${ms / 1000} s)`)), ms);
  });
  try {
    return await Promise.race([work, limit]);
  } finally {
    clearTimeout(timer);
  }
}
const fail = (detail: string): Check => ({ ok: false, detail });
const pass = (detail: string): Check => ({ ok: true, detail });

async function main(): Promise<number> {
  const started = Date.now();
  const [pgCluster, broker] = await Promise.all([startPrivatePostgres(), startPrivateBroker()]);
  // The harness reads the admin URL when it is first imported: point it at the private cluster first.
  process.env.TEST_DATABASE_ADMIN_URL = pgCluster.adminUrl;
  const { startTestStack, ADMIN } = await import('./harness.ts');
  const { newTrader } = await import('./fixtures/traders.ts');
  const { staffAccessToken } = await import('./admin-session.ts');
  const { waitForQuiescence } = await import('./consistency.ts');
  const { loadCatalog } = await import('@exchange/contracts/markets');
  const catalog = loadCatalog(undefined);

  let t: TestStack | undefined;
  const rows: Row[] = [];
  try {
    // Ports are picked at random on a machine other stacks share: a collision at start-up is worth another try.
    for (let attempt = 1; !t; attempt++) {
      try {
        t = await startTestStack({
          amqpUrl: broker.url,
          replicas: { 'payment-processor': SHORT ? 2 : 3 },
          // A restart on a busy machine (the test itself loads it) can take longer than a minute to become ready.
          readyTimeoutMs: 180_000,
          env: {
            PER_USER_LIMIT_SECOND: '0',
            PER_USER_LIMIT_MINUTE: '0',
            SNAPSHOT_EVERY: '200',
            WITHDRAWAL_DISPATCH_DELAY_MS: '0',
            // The shared broker's management API knows nothing of the private node.
            RABBITMQ_MANAGEMENT_URL: 'http://guest:guest@127.0.0.1:1',
          },
        });
      } catch (err) {
        if (attempt >= 3) throw err;
        process.stdout.write(`chaos: stack did not start (${(err as Error).message.split('\n')[0]}), retrying\n`);
      }
    }
    const stack = t!;
    const pool = stack.db.pool;
    const gateway = stack.url('gateway');
    const traders: Trader[] = [];
    // four for the load, and a fifth, the probe, whose client IP the load never uses: while a fault lasts, the
    // load's retries can spend its IPs' gateway limit (30/s, 1,200/min), and a probe refused by that limit measured
    // the limit's window (up to a minute) instead of the stack's recovery
    for (let i = 0; i < 5; i++) {
      const c = stack.client();
      const { userId } = await newTrader(c, {
        USD: '50000000.00',
        BTC: '5000.00000000',
        ETH: '50000.000000000000000000',
      });
      // Withdrawals need a verified email; the suite runs no mail server, so it stands in for the emailed link.
      await pool.query(`UPDATE auth.users SET email_verified_at = now() WHERE id = $1`, [userId]);
      traders.push({
        userId,
        client: new ExchangeClient({
          baseUrl: gateway,
          session: c.getSession()!,
          retries: 0,
          headers: { 'x-forwarded-for': `198.51.100.${200 + i}` },
        }),
      });
    }
    const probe = traders[4]!.client;
    const load = new Load(traders.slice(0, 4), SHORT ? 4 : 8);

    // staff routes need 2FA: the first call enrols the seeded admin as an operator would, later calls reuse it
    const adminToken = () => staffAccessToken(stack.url('auth'), ADMIN);

    const replicas = () => stack.stack.processes.filter((p) => p.service === 'payment-processor');
    const byPid = async (sql: string): Promise<RunningProcess> => {
      // On a loaded machine the first orders may not have reached an engine yet when the first fault is due.
      let r: Array<{ app: string }> = [];
      for (const until = Date.now() + 60_000; r.length === 0 && Date.now() < until; await sleep(250)) {
        r = (await pool.query<{ app: string }>(sql)).rows;
      }
      const pid = Number(r[0]?.app.split(':').pop());
      const p = replicas().find((x) => x.child.pid === pid);
      if (!p) throw new Error(`no payment-processor process with pid ${pid} (${sql})`);
      return p;
    };
    /** The replica that applied the latest command: the active engine. */
    const activeEngine = () =>
      byPid(
        `SELECT 'x:' || split_part(applied_by, ':', 2) AS app FROM payment.engine_journal ORDER BY applied_at DESC LIMIT 1`,
      );
    /** The replica whose session holds the payment outbox relay's advisory lock. */
    const relayLeader = () =>
      byPid(`SELECT a.application_name AS app FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
              WHERE l.locktype = 'advisory' AND l.granted
                AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended('outbox-relay:payment', 0)
                AND a.application_name LIKE 'payment-processor:%'`);
    const restart = async (p: RunningProcess) => {
      await stack.stack.kill(p, 'SIGKILL');
      await stack.stack.startProcess(p.service as ServiceName, p.replica, p.port);
    };
    const killService = (s: ServiceName) => async () =>
      restart(s === 'payment-processor' ? await activeEngine() : stack.stack.processes.find((p) => p.service === s)!);

    /**
     * Seconds from `t0` until a new order placed through the gateway has its engine outcome; a stack that has not
     * recovered after `RECOVERY_LIMIT_MS` fails the run (with its logs) rather than hold it.
     */
    const recovered = async (t0: number, clientOrderId: string): Promise<number> => {
      const body = {
        market: 'BTC-USD',
        side: 'buy' as const,
        type: 'limit' as const,
        price: '59990',
        quantity: '0.01',
        timeInForce: 'IOC' as const,
        clientOrderId,
      };
      const late = () => {
        if (Date.now() - t0 > RECOVERY_LIMIT_MS)
          throw new Error(`no new order had its engine outcome ${RECOVERY_LIMIT_MS / 1000} s after the fault`);
      };
      let id: string | undefined;
      while (!id) {
        late();
        id = await probe.placeOrder(body).then(
          (o) => o.id,
          () => undefined,
        );
        if (!id) await sleep(250);
      }
      for (;;) {
        const { rows: r } = await pool
          .query<{ done: boolean }>(`SELECT last_seq IS NOT NULL AS done FROM orders.orders WHERE id = $1`, [id])
          .catch(() => ({ rows: [] as Array<{ done: boolean }> }));
        if (r[0]?.done) return (Date.now() - t0) / 1000;
        late();
        await sleep(200);
      }
    };

    const checks = async (): Promise<Omit<Row, 'fault' | 'recoverS' | 'serverErrors' | 'networkErrors'>> => {
      const q = async <R extends Record<string, unknown>>(sql: string, v: unknown[] = []) =>
        (await pool.query<R>(sql, v)).rows;
      // No order lost: each accepted order exists and has an engine outcome; resting orders = the engine's book.
      const accepted = load.accepted;
      const known = await q<{ id: string; outcome: boolean }>(
        `SELECT id::text, (status <> 'pending' AND last_seq IS NOT NULL) AS outcome FROM orders.orders WHERE id = ANY($1::uuid[])`,
        [accepted],
      );
      const lost = accepted.length - known.length;
      const noOutcome = known.filter((k) => !k.outcome).length;
      const open = await q<{ market: string; n: string }>(
        `SELECT market, count(*)::text AS n FROM orders.orders WHERE status IN ('new','partially_filled') GROUP BY market`,
      );
      const heads = await q<{ market: string; seq: string }>(
        `SELECT market, max(seq)::text AS seq FROM payment.engine_journal GROUP BY market`,
      );
      const token = await adminToken();
      const books = new Map<string, number>();
      for (const p of replicas()) {
        const r = await fetch(`http://127.0.0.1:${p.port}/api/v1/admin/engine/markets`, {
          headers: { authorization: `Bearer ${token}` },
        });
        if (!r.ok) continue;
        const s = (await r.json()) as {
          markets: Array<{ market: string; loadedSeq: number | null; restingOrders: number | null }>;
        };
        for (const m of s.markets) {
          const head = Number(heads.find((h) => h.market === m.market)?.seq ?? 0);
          if (m.loadedSeq === head && m.restingOrders !== null) books.set(m.market, m.restingOrders);
        }
      }
      const bookDiff = heads
        .map((h) => ({
          m: h.market,
          open: Number(open.find((o) => o.market === h.market)?.n ?? 0),
          book: books.get(h.market),
        }))
        .filter((x) => x.book !== x.open);
      const orders =
        lost || noOutcome || bookDiff.length
          ? fail(`lost ${lost}, no outcome ${noOutcome}, book≠open ${JSON.stringify(bookDiff)}`)
          : pass(`${accepted.length} accepted, ${open.reduce((n, o) => n + Number(o.n), 0)} resting = book`);

      // No trade lost or doubled: engine journal, engine messages, order service and wallet agree by trade id.
      const [journal] = await q<{ n: string }>(
        `SELECT count(*)::text AS n FROM payment.engine_journal j, jsonb_array_elements(j.events) e WHERE e->>'type' = 'trade'`,
      );
      const engineIds = await q<{ id: string; n: string }>(
        `SELECT message->'payload'->>'tradeId' AS id, count(*)::text AS n FROM payment.outbox WHERE type = 'engine.trade-executed' GROUP BY 1`,
      );
      const tape = new Set(
        (await q<{ id: string }>(`SELECT trade_id::text AS id FROM orders.trades`)).map((r) => r.id),
      );
      const settled = new Set(
        (await q<{ id: string }>(`SELECT trade_id::text AS id FROM wallet.settlements`)).map((r) => r.id),
      );
      const doubled = engineIds.filter((r) => r.n !== '1').length;
      const ids = new Set(engineIds.map((r) => r.id));
      const missingTape = [...ids].filter((i) => !tape.has(i)).length + [...tape].filter((i) => !ids.has(i)).length;
      const missingWallet =
        [...ids].filter((i) => !settled.has(i)).length + [...settled].filter((i) => !ids.has(i)).length;
      const trades =
        Number(journal!.n) !== ids.size || doubled || missingTape || missingWallet
          ? fail(
              `journal ${journal!.n}, engine ${ids.size} (doubled ${doubled}), tape diff ${missingTape}, wallet diff ${missingWallet}`,
            )
          : pass(`${ids.size} trades`);

      // Every user's balances from deposits, paid withdrawals and fills at the fee schedule = the wallet's.
      const model = new Map<string, bigint>();
      const add = (u: string, a: string, v: bigint) => model.set(`${u}/${a}`, (model.get(`${u}/${a}`) ?? 0n) + v);
      for (const d of await q<{ user_id: string; asset: string; amount: string }>(
        `SELECT user_id::text, asset, amount::text FROM wallet.deposits WHERE status = 'confirmed'`,
      ))
        add(d.user_id, d.asset, BigInt(d.amount));
      for (const w of await q<{ user_id: string; asset: string; out: string }>(
        `SELECT user_id::text, asset, (amount + fee)::text AS out FROM wallet.withdrawals WHERE status = 'completed'`,
      ))
        add(w.user_id, w.asset, -BigInt(w.out));
      // each fill at the rates its order and the counterpart's order were accepted with (fee tiers; null: base)
      type Rate = number | null;
      for (const f of await q<{
        user_id: string;
        market: string;
        side: string;
        liquidity: string;
        price_ticks: string;
        quantity_lots: string;
        own_maker: Rate;
        own_taker: Rate;
        other_maker: Rate;
        other_taker: Rate;
      }>(
        `SELECT f.user_id::text, f.market, f.side, f.liquidity, f.price_ticks::text, f.quantity_lots::text,
                o.maker_fee_bps AS own_maker, o.taker_fee_bps AS own_taker,
                x.maker_fee_bps AS other_maker, x.taker_fee_bps AS other_taker
           FROM orders.fills f
           LEFT JOIN orders.orders o ON o.id = f.order_id
           LEFT JOIN orders.fills g ON g.trade_id = f.trade_id AND g.order_id <> f.order_id
           LEFT JOIN orders.orders x ON x.id = g.order_id`,
      )) {
        const m = catalog.market(f.market)!;
        const takerSide = f.liquidity === 'taker' ? f.side : f.side === 'buy' ? 'sell' : 'buy';
        const rates = (maker: Rate, taker: Rate) =>
          maker === null || taker === null ? undefined : { makerFeeBps: maker, takerFeeBps: taker };
        const own = rates(f.own_maker, f.own_taker);
        const other = rates(f.other_maker, f.other_taker);
        const [makerRates, takerRates] = f.liquidity === 'maker' ? [own, other] : [other, own];
        const a = m.fillAmounts(
          BigInt(f.price_ticks),
          BigInt(f.quantity_lots),
          takerSide as 'buy' | 'sell',
          makerRates,
          takerRates,
        );
        if (f.side === 'buy') {
          add(f.user_id, m.quote.symbol, -a.quoteAmount);
          add(f.user_id, m.base.symbol, a.baseAmount - a.buyerFee);
        } else {
          add(f.user_id, m.base.symbol, -a.baseAmount);
          add(f.user_id, m.quote.symbol, a.quoteAmount - a.sellerFee);
        }
      }
      const wallet = await q<{ user_id: string; asset: string; balance: string }>(
        `SELECT user_id::text, asset, balance::text FROM wallet.accounts WHERE kind = 'user'`,
      );
      const seen = new Set<string>();
      const off: string[] = [];
      for (const w of wallet) {
        const k = `${w.user_id}/${w.asset}`;
        seen.add(k);
        if ((model.get(k) ?? 0n) !== BigInt(w.balance))
          off.push(`${k}: wallet ${w.balance} model ${model.get(k) ?? 0n}`);
      }
      for (const [k, v] of model) if (!seen.has(k) && v !== 0n) off.push(`${k}: wallet none model ${v}`);
      const balances = off.length ? fail(off.slice(0, 3).join('; ')) : pass(`${wallet.length} balances`);

      // No dead letters: none in any service's table, none sitting in a broker-side DLQ.
      const [dead] = await q<{ n: string }>(
        `SELECT ((SELECT count(*) FROM wallet.dead_letters) + (SELECT count(*) FROM orders.dead_letters)
                 + (SELECT count(*) FROM payment.dead_letters))::text AS n`,
      );
      const dlq = (await broker.rabbitmqctl('list_queues', 'name', 'messages', '--no-table-headers'))
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .filter(([name, n]) => name?.endsWith('.dlq') && n !== '0');
      const deadLetters =
        dead!.n !== '0' || dlq.length ? fail(`table ${dead!.n}, queues ${JSON.stringify(dlq)}`) : pass('0');

      // No stranded holds: active holds are exactly the open orders and the withdrawals not yet ended.
      const [stranded] = await q<{ orders: string; withdrawals: string; unheld: string }>(
        `SELECT (SELECT count(*) FROM wallet.holds h LEFT JOIN orders.orders o ON o.id = h.id
                  WHERE h.status = 'active' AND h.ref_type = 'order'
                    AND (o.id IS NULL OR o.status NOT IN ('new','partially_filled')))::text AS orders,
                (SELECT count(*) FROM wallet.holds h LEFT JOIN wallet.withdrawals w ON w.id = h.id
                  WHERE h.status = 'active' AND h.ref_type = 'withdrawal'
                    AND (w.id IS NULL OR w.status NOT IN ('pending','processing')))::text AS withdrawals,
                (SELECT count(*) FROM orders.orders o LEFT JOIN wallet.holds h ON h.id = o.id AND h.status = 'active'
                  WHERE o.status IN ('new','partially_filled') AND h.id IS NULL)::text AS unheld`,
      );
      const holds =
        stranded!.orders !== '0' || stranded!.withdrawals !== '0' || stranded!.unheld !== '0'
          ? fail(
              `order ${stranded!.orders}, withdrawal ${stranded!.withdrawals}, open without hold ${stranded!.unheld}`,
            )
          : pass('0');

      // The wallet's reconciliation: every check ran (none incomplete) and found nothing.
      const r = await fetch(`${stack.url('wallet')}/api/v1/admin/reconciliation/run`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      });
      const rec = (await r.json()) as {
        status?: string;
        report?: { checks: Array<{ name: string; mismatches: number; error?: string }> };
      };
      const bad = (rec.report?.checks ?? [])
        .filter((c) => c.mismatches > 0 || c.error)
        .map((c) => `${c.name}: ${c.error ?? c.mismatches}`);
      const reconciliation =
        r.status !== 201 || rec.status !== 'ok' || bad.length
          ? fail(`${r.status} ${rec.status ?? ''} ${bad.join('; ')}`)
          : pass(`ok (${rec.report!.checks.length} checks)`);
      return { orders, trades, balances, deadLetters, holds, reconciliation };
    };

    const withdraw = () =>
      traders[1]!.client
        .withdraw({ asset: 'USD', amount: '10', address: 'DE89370400440532013000' })
        .catch((e: unknown) => recordFailure(load.stats, e));

    interface Fault {
      name: string;
      /** Inject and heal; resolves once healed. `t0` is when the fault started. */
      run(): Promise<{ t0: number; healed: Promise<void> }>;
    }
    const simple = (name: string, fn: () => Promise<void>): Fault => ({
      name,
      async run() {
        const t0 = Date.now();
        return { t0, healed: fn() };
      },
    });
    const stopSeconds = SHORT ? 20 : 60;
    const alarmSeconds = SHORT ? 10 : 30;
    const faults: Fault[] = [
      ...(SHORT
        ? []
        : (['auth', 'wallet', 'order', 'gateway'] as const).map((s) => simple(`kill -9 ${s}`, killService(s)))),
      simple('kill -9 active payment-processor', killService('payment-processor')),
      ...(SHORT ? [] : [simple('kill -9 payment outbox relay leader', async () => restart(await relayLeader()))]),
      {
        name: `SIGSTOP active payment-processor ${stopSeconds} s`,
        async run() {
          const p = await activeEngine();
          const t0 = Date.now();
          p.child.kill('SIGSTOP');
          return {
            t0,
            healed: sleep(stopSeconds * 1000).then(() => void p.child.kill('SIGCONT')),
          };
        },
      },
      simple('RabbitMQ node kill -9 + restart', async () => {
        await broker.kill();
        await sleep(2_000);
        await broker.start();
      }),
      simple('PostgreSQL restart (immediate)', () => pgCluster.restart(2_000)),
      {
        name: `RabbitMQ memory alarm ${alarmSeconds} s`,
        async run() {
          // rabbitmqctl itself takes a while to start: the fault begins when the alarm is set, not when asked for.
          await broker.rabbitmqctl('set_vm_memory_high_watermark', 'absolute', '1');
          const t0 = Date.now();
          return {
            t0,
            healed: sleep(alarmSeconds * 1000).then(async () => {
              await broker.rabbitmqctl('set_vm_memory_high_watermark', '0.4');
            }),
          };
        },
      },
    ];

    load.resume();
    let probeN = 0;
    for (const f of faults) {
      await sleep(SHORT ? 2_000 : 10_000);
      await withdraw();
      const before = { s: load.stats.serverErrors, n: load.stats.networkErrors, samples: load.stats.errors.length };
      process.stdout.write(`chaos: ${f.name} …\n`);
      const { t0, healed } = await f.run();
      healed.catch(() => {}); // awaited below; a failure to heal must not go unhandled meanwhile
      const recoverS = await recovered(t0, `probe-${probeN++}`);
      await within(RECOVERY_LIMIT_MS, healed, `${f.name}: the fault did not heal`);
      await sleep(SHORT ? 1_000 : 5_000);
      await load.pause();
      await waitForQuiescence(pool, 300_000).catch((e: unknown) =>
        process.stdout.write(`chaos: ${(e as Error).message}\n`),
      );
      await waitForWithdrawals(pool);
      const row: Row = {
        fault: f.name,
        recoverS,
        ...(await checks()),
        serverErrors: load.stats.serverErrors - before.s,
        networkErrors: load.stats.networkErrors - before.n,
      };
      rows.push(row);
      process.stdout.write(`${formatRow(row)}\n`);
      const samples = load.stats.errors.slice(before.samples).filter((e) => !/^4\d\d/.test(e));
      if (samples.length) process.stdout.write(`  first failures seen: ${samples.slice(0, 3).join(' | ')}\n`);
      load.resume();
    }
    await load.pause();
    process.stdout.write(
      `\nchaos (${args.profile}): ${load.stats.accepted} orders accepted, ${load.accepted.length} ids, ` +
        `${((Date.now() - started) / 60_000).toFixed(1)} min\n\n${formatTable(rows)}\n`,
    );
  } catch (err) {
    // What the processes said last is what explains a fault that did not heal.
    const logs = t?.logs ?? [];
    for (const label of new Set(logs.map((l) => l.slice(0, l.indexOf(']') + 1)))) {
      process.stderr.write(
        `${logs
          .filter((l) => l.startsWith(label))
          .slice(-15)
          .join('\n')}\n`,
      );
    }
    throw err;
  } finally {
    await t?.close().catch(() => {});
    await broker.close().catch(() => {});
    await pgCluster.close().catch(() => {});
  }
  const failed = rows.filter((r) => !rowOk(r)).length;
  if (args.json) writeFileSync(args.json, JSON.stringify({ passed: rows.length - failed, failed, rows }, null, 2));
  return failed;
}

async function waitForWithdrawals(pool: import('@exchange/db').Pool): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const { rows } = await pool.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM wallet.withdrawals WHERE status IN ('pending','processing')`,
    );
    if (rows[0]!.n === '0') return;
    await sleep(200);
  }
}

const CHECKS = ['orders', 'trades', 'balances', 'deadLetters', 'holds', 'reconciliation'] as const;
const rowOk = (r: Row) => CHECKS.every((c) => r[c].ok);
const mark = (c: Check) => (c.ok ? 'ok' : `FAIL: ${c.detail}`);

function formatRow(r: Row): string {
  return `| ${r.fault} | ${r.recoverS.toFixed(1)} | ${CHECKS.map((c) => mark(r[c])).join(' | ')} | ${r.serverErrors} / ${r.networkErrors} |`;
}

function formatTable(rows: Row[]): string {
  return [
    '| fault | recovered (s) | no order lost | no trade lost/doubled | balances = model | no dead letters | no stranded holds | reconciliation | 5xx / no answer during fault |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map(formatRow),
  ].join('\n');
}

main().then(
  (failed) => process.exit(failed ? 1 : 0),
  (err: unknown) => {
    process.stderr.write(`chaos: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(2);
  },
);
