/**
 * The engines of every market this deployment runs, each consuming its own quorum queue `orders.<MARKET>` with
 * single active consumer: any number of replicas may run; RabbitMQ delivers each market's queue to exactly one of
 * them at a time and hands it to another when that one's channel dies. Scaling replicas never splits a market.
 */
import type { Market } from '@exchange/contracts/markets';
import { ROUTES } from '@exchange/contracts/trading';
import type { Pool } from '@exchange/db';
import type { Consumer, Logger, Messaging, RetryPolicy } from '@exchange/messaging';
import type { PaymentMetrics } from '../metrics.ts';
import { isTransientEngineError } from './errors.ts';
import { EngineDivergenceError, MarketEngine, MarketHaltedError } from './market-engine.ts';

/**
 * The retry policy the market queues are declared with (it names their retry queues; kept as it is so existing
 * queues still match). The engine retries in place: transient failures (database unreachable, timeouts, lock and
 * serialization failures, disk full, read-only after a failover) are waited out for as long as they last; a command
 * whose content the engine cannot apply is rejected as an engine outcome; any other failure is retried with this
 * backoff, `haltAfterFailures` times, and then the market is HALTED (never skipped): see EngineHost.
 */
export const ORDERS_RETRY: RetryPolicy = { attempts: 5, backoffMs: [200, 1_000, 5_000, 15_000, 60_000] };

export interface EngineHostOptions {
  markets: Market[];
  pool: Pool;
  messaging: Messaging;
  replicaId: string;
  snapshotEvery: number;
  bookSnapshotIntervalMs: number;
  bookSnapshotDepth: number;
  prefetch: number;
  /** Commands applied per transaction at most (group commit, see ConsumeOptions.batch); default 1. */
  batch?: number;
  /** Unexplained failures of one command (retried with ORDERS_RETRY's backoff) before the market halts; default 5. */
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
  private readonly consumers = new Map<string, Consumer>();
  private started = false;
  private haltTimer: NodeJS.Timeout | undefined;

  constructor(opts: EngineHostOptions) {
    this.opts = opts;
    for (const market of opts.markets) {
      this.engines.set(
        market.symbol,
        new MarketEngine({
          market,
          pool: opts.pool,
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
      const queue = ROUTES.ordersQueue(engine.symbol);
      await this.opts.messaging.declareQueue({
        name: queue,
        bindings: [{ exchange: ROUTES.commandsExchange, routingKey: queue }],
        singleActiveConsumer: true,
        retry: ORDERS_RETRY,
      });
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
    const queue = ROUTES.ordersQueue(engine.symbol);
    let consumer: Consumer | undefined = undefined;
    consumer = await this.opts.messaging.consume({
      queue,
      // room for a full batch waiting behind the one in hand
      prefetch: Math.max(this.opts.prefetch, 2 * (this.opts.batch ?? 1)),
      concurrency: 1,
      batch: this.opts.batch ?? 1,
      // Retry in place: a command that fails holds the queue instead of going to a retry queue, so no later command
      // overtakes it and price-time priority is what clients submitted.
      retryMode: 'inline',
      retry: { attempts: Math.max(1, this.opts.haltAfterFailures ?? 5), backoffMs: ORDERS_RETRY.backoffMs },
      transient: isTransientEngineError,
      // never skip a command: past its retries (or when it keeps crashing the engine) the market halts
      onExhausted: async ({ envelope, reason }) => {
        await this.persistHalt(engine, `command ${envelope.id} (${envelope.type}) keeps failing: ${reason}`);
      },
      onInvalid: (parsed, reason, client) => engine.rejectInvalid(parsed, reason, client),
      handler: async (message, client) => {
        try {
          await engine.handle(message, client);
        } catch (err) {
          if (err instanceof EngineDivergenceError || err instanceof MarketHaltedError) {
            if (err instanceof EngineDivergenceError) this.halt(engine, err);
            else this.markHalted(engine, err.message, true);
            // Stop taking this market's commands; the one in hand is returned to the queue for whoever resumes it.
            void consumer?.stop();
            if (this.consumers.get(engine.symbol) === consumer) this.consumers.delete(engine.symbol);
          }
          throw err;
        }
      },
    });
    this.consumers.set(engine.symbol, consumer);
  }

  private async persistedHalts(): Promise<Map<string, string>> {
    const { rows } = await this.opts.pool.query<{ market: string; halted_reason: string }>(
      'SELECT market, halted_reason FROM payment.engine_state WHERE market = ANY($1::text[]) AND halted_reason IS NOT NULL',
      [[...this.engines.keys()]],
    );
    return new Map(rows.map((r) => [r.market, r.halted_reason]));
  }

  /**
   * A command of the market failed past its retries for a reason that is not its content: record the halt in
   * engine_state (every replica sees it and stops applying the market's commands), stop consuming here. The command
   * stays at the head of the queue; an admin resumes the market once the cause is fixed.
   */
  private async persistHalt(engine: MarketEngine, reason: string): Promise<void> {
    const text = reason.slice(0, 1000);
    this.markHalted(engine, text, true);
    this.consumers.delete(engine.symbol);
    for (let wait = 500; ; wait = Math.min(wait * 2, 10_000)) {
      try {
        await this.opts.pool.query(
          `UPDATE payment.engine_state SET halted_reason = $2, halted_at = now()
            WHERE market = $1 AND halted_reason IS NULL`,
          [engine.symbol, text],
        );
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
    const { rowCount } = await this.opts.pool.query(
      `UPDATE payment.engine_state SET halted_reason = NULL, halted_at = NULL
        WHERE market = $1 AND halted_reason IS NOT NULL`,
      [market],
    );
    if (!rowCount && !engine.haltedPersisted) return 'not_halted';
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
    const { rows } = await this.opts.pool.query<{
      market: string;
      last_seq: string;
      book_seq: string;
      snap: string | null;
      halted_reason: string | null;
    }>(
      `SELECT s.market, s.last_seq, s.book_seq, s.halted_reason,
              (SELECT max(seq) FROM payment.engine_snapshots n WHERE n.market = s.market) AS snap
         FROM payment.engine_state s WHERE s.market = ANY($1::text[])`,
      [[...this.engines.keys()]],
    );
    const db = new Map(rows.map((r) => [r.market, r]));
    const consumers = await this.consumerStatuses();
    return [...this.engines.values()].map((e) => {
      const r = db.get(e.symbol);
      const core = e.loaded;
      return {
        market: e.symbol,
        queue: ROUTES.ordersQueue(e.symbol),
        lastSeq: Number(r?.last_seq ?? 0),
        bookSeq: Number(r?.book_seq ?? 0),
        lastSnapshotSeq: r?.snap != null ? Number(r.snap) : null,
        loadedSeq: core ? core.seq : null,
        restingOrders: core ? core.orderBook.orderCount : null,
        consumer:
          e.halted || !this.consumers.has(e.symbol)
            ? 'not_consuming'
            : (consumers.get(e.symbol) ?? (this.started ? 'unknown' : 'not_consuming')),
        lastDeliveryAt: e.lastDeliveryAt?.toISOString() ?? null,
        lastAppliedAt: e.lastAppliedAt?.toISOString() ?? null,
        reloads: e.reloads,
        halted: e.halted ?? r?.halted_reason ?? null,
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
