/**
 * The engines of every market this deployment runs, each consuming its own quorum queue `orders.<MARKET>` with
 * single active consumer: any number of replicas may run; RabbitMQ delivers each market's queue to exactly one of
 * them at a time and hands it to another when that one's channel dies. Scaling replicas never splits a market.
 */
import type { Market } from '@exchange/contracts/markets';
import { ROUTES } from '@exchange/contracts/trading';
import type { Pool } from '@exchange/db';
import type { Consumer, Logger, Messaging } from '@exchange/messaging';
import type { PaymentMetrics } from '../metrics.ts';
import { ordersConsumer } from '../messaging/orders.ts';
import { ordersQueue } from '../messaging/queues.ts';
import { EngineDivergenceError, MarketEngine } from './market-engine.ts';
import { PostgresEngineStore, type EngineStore } from './store.ts';

export interface EngineHostOptions {
  markets: Market[];
  pool: Pool;
  /** Where the engines keep their journal, positions and snapshots (default: PostgresEngineStore on `pool`). */
  store?: EngineStore;
  messaging: Messaging;
  replicaId: string;
  snapshotEvery: number;
  bookSnapshotIntervalMs: number;
  bookSnapshotDepth: number;
  prefetch: number;
  /** Commands applied per transaction at most (group commit, see ConsumeOptions.batch); default 1. */
  batch?: number;
  /**
   * Unexplained failures of one command (retried with ORDERS_RETRY's backoff, messaging/queues.ts) before the market
   * halts; default 5.
   */
  haltAfterFailures?: number;
  /** How often a halted replica looks for an admin's resume (ms); default 2000. */
  haltPollMs?: number;
  metrics?: PaymentMetrics;
  logger: Logger;
  /** RabbitMQ management API base (with credentials) and this process's connection name: active-consumer status. */
  management?: { url: string; vhost: string; connectionName: string };
}

export type ConsumerStatus = 'active' | 'standby' | 'not_consuming' | 'unknown';

export interface MarketStatus {
  market: string;
  queue: string;
  /** Journal position in the database (whoever wrote it). */
  lastSeq: number;
  bookSeq: number;
  lastSnapshotSeq: number | null;
  /** This replica's in-memory engine: the journal seq it has applied, null when not loaded. */
  loadedSeq: number | null;
  /** Resting orders in this replica's engine (current only when it is the active consumer). */
  restingOrders: number | null;
  /** Trading phase in this replica's engine (auction: the volatility guard's call auction), null when not loaded. */
  phase: 'continuous' | 'auction' | null;
  consumer: ConsumerStatus;
  lastDeliveryAt: string | null;
  lastAppliedAt: string | null;
  reloads: number;
  /** Why this market is halted (a command keeps failing, or the journal does not replay here), null when it is not. */
  halted: string | null;
  /** Id generation of this replica's loaded engine (new on every load: start, takeover, recovery, restore). */
  epoch: string | null;
}

export class EngineHost {
  readonly engines = new Map<string, MarketEngine>();
  private readonly opts: EngineHostOptions;
  private readonly store: EngineStore;
  private readonly consumers = new Map<string, Consumer>();
  private started = false;
  private haltTimer: NodeJS.Timeout | undefined;

  constructor(opts: EngineHostOptions) {
    this.opts = opts;
    this.store = opts.store ?? new PostgresEngineStore(opts.pool);
    for (const market of opts.markets) {
      this.engines.set(
        market.symbol,
        new MarketEngine({
          market,
          pool: opts.pool,
          store: this.store,
          replicaId: opts.replicaId,
          snapshotEvery: opts.snapshotEvery,
          bookSnapshotIntervalMs: opts.bookSnapshotIntervalMs,
          bookSnapshotDepth: opts.bookSnapshotDepth,
          ...(opts.metrics ? { metrics: opts.metrics } : {}),
          logger: opts.logger,
        }),
      );
    }
  }

  /**
   * Restore every engine (snapshot + journal), declare the market queues, then start consuming. A market whose journal
   * does not replay to the events it recorded is halted (fail-stop: not consumed, its commands wait in the queue,
   * `engine_halted` = 1) while the other markets trade on.
   */
  async start(): Promise<void> {
    const persisted = await this.persistedHalts();
    for (const engine of this.engines.values()) {
      await this.opts.messaging.declareQueue(ordersQueue(engine.symbol));
      try {
        await engine.restore();
      } catch (err) {
        if (!(err instanceof EngineDivergenceError)) throw err;
        this.halt(engine, err);
        continue;
      }
      const reason = persisted.get(engine.symbol);
      if (reason !== undefined) {
        this.markHalted(engine, reason, true);
        continue;
      }
      await this.startConsumer(engine);
    }
    this.started = true;
    this.haltTimer = setInterval(() => void this.pollResumes(), this.opts.haltPollMs ?? 2_000);
    this.haltTimer.unref();
  }

  private async startConsumer(engine: MarketEngine): Promise<void> {
    let consumer: Consumer | undefined = undefined;
    consumer = await this.opts.messaging.consume(
      ordersConsumer(engine, {
        prefetch: this.opts.prefetch,
        batch: this.opts.batch ?? 1,
        haltAfterFailures: this.opts.haltAfterFailures ?? 5,
        onExhausted: (reason) => this.persistHalt(engine, reason),
        onHalted: (err) => {
          if (err instanceof EngineDivergenceError) this.halt(engine, err);
          else this.markHalted(engine, err.message, true);
          // Stop taking this market's commands; the one in hand is returned to the queue for whoever resumes it.
          void consumer?.stop();
          if (this.consumers.get(engine.symbol) === consumer) this.consumers.delete(engine.symbol);
        },
      }),
    );
    this.consumers.set(engine.symbol, consumer);
  }

  private async persistedHalts(): Promise<Map<string, string>> {
    return this.store.persistedHalts([...this.engines.keys()]);
  }

  /**
   * A command of the market failed past its retries for a reason that is not its content: record the halt in
   * engine_state (every replica sees it and stops applying the market's commands), stop consuming here. The command
   * stays at the head of the queue; an admin resumes the market once the cause is fixed.
   */
  private async persistHalt(engine: MarketEngine, reason: string): Promise<void> {
    const text = reason.slice(0, 1000);
    // Not `persisted` until the row says so: pollResumes() takes a persisted halt missing from engine_state for one an
    // admin lifted, and would resume the market in the window before recordHalt commits.
    this.markHalted(engine, text, false);
    this.consumers.delete(engine.symbol);
    for (let wait = 500; ; wait = Math.min(wait * 2, 10_000)) {
      try {
        await this.store.recordHalt(engine.symbol, text);
        engine.haltedPersisted = true;
        return;
      } catch (err) {
        if (!this.started) return;
        this.opts.logger.error({ err, market: engine.symbol }, 'engine: could not record the halt yet; retrying');
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  private markHalted(engine: MarketEngine, reason: string, persisted: boolean): void {
    if (engine.halted) return;
    engine.halted = reason;
    engine.haltedPersisted = persisted;
    this.opts.metrics?.engineHalted.set({ market: engine.symbol }, 1);
    this.opts.logger.error(
      { market: engine.symbol, reason },
      'engine: market HALTED, its commands wait in the queue until an admin resumes it',
    );
  }

  /** Admin: lift a persisted halt. Every replica resumes consuming the market within haltPollMs. */
  async resume(market: string): Promise<'resumed' | 'not_halted' | 'unknown_market'> {
    const engine = this.engines.get(market);
    if (!engine) return 'unknown_market';
    const cleared = await this.store.clearHalt(market);
    if (!cleared && !engine.haltedPersisted) return 'not_halted';
    await this.pollResumes();
    return 'resumed';
  }

  private async pollResumes(): Promise<void> {
    if (!this.started) return;
    const waiting = [...this.engines.values()].filter((e) => e.halted && e.haltedPersisted);
    if (waiting.length === 0) return;
    try {
      const still = await this.persistedHalts();
      for (const engine of waiting) {
        if (still.has(engine.symbol) || this.consumers.has(engine.symbol) || !this.started) continue;
        engine.halted = undefined;
        engine.haltedPersisted = false;
        this.opts.metrics?.engineHalted.set({ market: engine.symbol }, 0);
        this.opts.logger.warn({ market: engine.symbol }, 'engine: market resumed by an admin; consuming again');
        await this.startConsumer(engine);
      }
    } catch (err) {
      this.opts.logger.warn({ err }, 'engine: could not check for resumed markets');
    }
  }

  private halt(engine: MarketEngine, err: Error): void {
    if (engine.halted) return;
    engine.halted = err.message;
    this.opts.metrics?.engineHalted.set({ market: engine.symbol }, 1);
    this.opts.logger.error(
      { err, market: engine.symbol },
      'engine: HALTED, the journal does not replay to its recorded events; not consuming this market',
    );
  }

  /** Stop consuming (waiting for the command in flight), then snapshot each engine so a restart replays nothing. */
  async stop(): Promise<void> {
    if (this.haltTimer) clearInterval(this.haltTimer);
    this.haltTimer = undefined;
    const consumers = [...this.consumers.values()];
    this.consumers.clear();
    await Promise.all(consumers.map((c) => c.stop()));
    for (const engine of this.engines.values()) {
      engine.stop();
      if (this.started) {
        await engine
          .checkpoint()
          .catch((err: unknown) =>
            this.opts.logger.warn({ err, market: engine.symbol }, 'engine: shutdown snapshot failed'),
          );
      }
    }
    this.started = false;
  }

  async status(): Promise<MarketStatus[]> {
    const db = await this.store.status([...this.engines.keys()]);
    const consumers = await this.consumerStatuses();
    return [...this.engines.values()].map((e) => {
      const r = db.get(e.symbol);
      const core = e.loaded;
      return {
        market: e.symbol,
        queue: ROUTES.ordersQueue(e.symbol),
        lastSeq: r?.lastSeq ?? 0,
        bookSeq: r?.bookSeq ?? 0,
        lastSnapshotSeq: r?.lastSnapshotSeq ?? null,
        loadedSeq: core ? core.seq : null,
        restingOrders: core ? core.orderBook.orderCount : null,
        phase: core ? core.orderBook.phase : null,
        consumer:
          e.halted || !this.consumers.has(e.symbol)
            ? 'not_consuming'
            : (consumers.get(e.symbol) ?? (this.started ? 'unknown' : 'not_consuming')),
        lastDeliveryAt: e.lastDeliveryAt?.toISOString() ?? null,
        lastAppliedAt: e.lastAppliedAt?.toISOString() ?? null,
        reloads: e.reloads,
        halted: e.halted ?? r?.haltedReason ?? null,
        epoch: e.epoch ?? null,
      };
    });
  }

  /**
   * amqplib does not say whether a single-active-consumer subscription is the active one; the management API does
   * (consumer_details[].active). Without it configured the status is `unknown` while consuming.
   */
  private async consumerStatuses(): Promise<Map<string, ConsumerStatus>> {
    const out = new Map<string, ConsumerStatus>();
    const m = this.opts.management;
    if (!m || !this.started) return out;
    for (const symbol of this.engines.keys()) {
      try {
        const names = await connectionNamesOf(m.url, m.vhost, m.connectionName);
        const details = await queueConsumers(m.url, m.vhost, ROUTES.ordersQueue(symbol));
        const mine = details.filter((d) => names.has(d.connectionName));
        out.set(symbol, mine.length === 0 ? 'not_consuming' : mine.some((d) => d.active) ? 'active' : 'standby');
      } catch {
        out.set(symbol, 'unknown');
      }
    }
    return out;
  }
}

export interface QueueConsumer {
  connectionName: string;
  active: boolean;
  consumerTag: string;
}

async function management<T>(managementUrl: string, path: string): Promise<T> {
  const u = new URL(managementUrl);
  const auth =
    'Basic ' + Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
  u.username = '';
  u.password = '';
  const base = u.toString().replace(/\/$/, '');
  const res = await fetch(`${base}/api${path}`, {
    headers: { authorization: auth },
    signal: AbortSignal.timeout(2_000),
  });
  if (!res.ok) throw new Error(`management API ${path}: ${res.status}`);
  return (await res.json()) as T;
}

/** Broker-side names of the connections a client opened with `clientName` (its connection_name property). */
export async function connectionNamesOf(
  managementUrl: string,
  vhost: string,
  clientName: string,
): Promise<Set<string>> {
  const conns = await management<Array<{ name: string; client_properties?: { connection_name?: string } }>>(
    managementUrl,
    `/vhosts/${encodeURIComponent(vhost)}/connections`,
  );
  return new Set(conns.filter((c) => c.client_properties?.connection_name === clientName).map((c) => c.name));
}

/** Consumers of a queue as the RabbitMQ management API reports them (connectionName: the broker-side name). */
export async function queueConsumers(managementUrl: string, vhost: string, queue: string): Promise<QueueConsumer[]> {
  const body = await management<{
    consumer_details?: Array<{
      active?: boolean;
      activity_status?: string;
      consumer_tag?: string;
      channel_details?: { connection_name?: string };
    }>;
  }>(managementUrl, `/queues/${encodeURIComponent(vhost)}/${encodeURIComponent(queue)}`);
  return (body.consumer_details ?? []).map((d) => ({
    connectionName: d.channel_details?.connection_name ?? '',
    active: d.active === true || d.activity_status === 'single_active',
    consumerTag: d.consumer_tag ?? '',
  }));
}
