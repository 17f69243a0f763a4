/**
 * One market's single-writer engine inside a replica. Every command runs in the consumer's transaction (whose inbox
 * row dedupes the message id):
 *
 *   lock engine_state (FOR UPDATE) → in sync with the journal? else reload snapshot + journal → dedupe by order id →
 *   apply → journal row + engine_state + engine_orders + outbox messages (+ snapshot every N) → commit → ack
 *
 * The row lock makes the journal single-writer even if two replicas briefly both think they are active; comparing its
 * `last_seq` with the in-memory engine detects a takeover (another replica advanced the journal) and a commit that
 * failed after the in-memory book already moved: either way the engine is rebuilt from the database before applying.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Envelope } from '@exchange/contracts';
import type { Market } from '@exchange/contracts/markets';
import { AmendOrderV1, CancelOrderV1, PlaceOrderV1 } from '@exchange/contracts/trading';
import { withTransaction, type Pool, type PoolClient } from '@exchange/db';
import type { Logger } from '@exchange/messaging';
import type { PaymentMetrics } from '../metrics.ts';
import { uuidv5 } from '../uuid.ts';
import {
  MarketCore,
  type AmendPayload,
  type CancelPayload,
  type CoreSnapshot,
  type JournalCommand,
  type PlacePayload,
} from './core.ts';
import { bookSnapshotMessage, messagesFor, type OutgoingMessage } from './messages.ts';
import { enqueueAll, OUTBOX_CHANNEL, outboxInsert } from './outbox.ts';

export interface MarketEngineOptions {
  market: Market;
  pool: Pool;
  replicaId: string;
  snapshotEvery: number;
  bookSnapshotIntervalMs: number;
  bookSnapshotDepth: number;
  metrics?: PaymentMetrics;
  logger: Logger;
  /** How many snapshots to keep per market (default 3). */
  keepSnapshots?: number;
}

export class EngineDivergenceError extends Error {}

const REPLAY_BATCH = 1000;

export class MarketEngine {
  readonly market: Market;
  readonly symbol: string;
  private readonly opts: MarketEngineOptions;
  private core: MarketCore | undefined;
  /** The in-memory engine may not match the journal (a command failed half-way): reload before the next one. */
  private dirty = true;
  private lastBookSnapshotAt = 0;
  private lastBookSnapshotSeq = -1;
  private bookTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  lastSnapshotSeq = 0;
  lastDeliveryAt: Date | undefined;
  lastAppliedAt: Date | undefined;
  reloads = 0;
  /** Set when the journal does not replay (fail-stop: this replica stops consuming the market). */
  halted: string | undefined;

  constructor(opts: MarketEngineOptions) {
    this.opts = opts;
    this.market = opts.market;
    this.symbol = opts.market.symbol;
  }

  /** Loaded engine state (for status and tests); undefined before the first load. */
  get loaded(): MarketCore | undefined {
    return this.dirty ? undefined : this.core;
  }

  /** Create the market's state row and load the engine (before consuming). */
  async restore(): Promise<void> {
    await withTransaction(this.opts.pool, async (client) => {
      await client.query('INSERT INTO payment.engine_state (market) VALUES ($1) ON CONFLICT DO NOTHING', [this.symbol]);
      const { rows } = await client.query<{ last_seq: string }>(
        'SELECT last_seq FROM payment.engine_state WHERE market = $1',
        [this.symbol],
      );
      await this.load(client, Number(rows[0]!.last_seq), 'start');
    });
  }

  /** Rebuild the engine: latest snapshot at or before `lastSeq`, then replay the journal up to it (verifying events). */
  private async load(client: PoolClient, lastSeq: number, reason: string): Promise<void> {
    const t0 = performance.now();
    this.dirty = true;
    const snap = await client.query<{ seq: string; state: CoreSnapshot }>(
      `SELECT seq, state FROM payment.engine_snapshots WHERE market = $1 AND seq <= $2 ORDER BY seq DESC LIMIT 1`,
      [this.symbol, lastSeq],
    );
    let core: MarketCore;
    try {
      core = new MarketCore(this.market, snap.rows[0]?.state);
    } catch (err) {
      throw new EngineDivergenceError(
        `${this.symbol}: snapshot ${snap.rows[0]?.seq} cannot be restored: ${String(err)}`,
      );
    }
    this.lastSnapshotSeq = snap.rows[0] ? Number(snap.rows[0].seq) : 0;
    let replayed = 0;
    while (core.seq < lastSeq) {
      const { rows } = await client.query<{ seq: string; command: JournalCommand; events: unknown }>(
        `SELECT seq, command, events FROM payment.engine_journal
          WHERE market = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT ${REPLAY_BATCH}`,
        [this.symbol, core.seq, lastSeq],
      );
      if (rows.length === 0) break;
      for (const row of rows) {
        if (Number(row.seq) !== core.seq + 1) {
          throw new EngineDivergenceError(
            `${this.symbol}: journal gap: expected seq ${core.seq + 1}, found ${row.seq}`,
          );
        }
        let r: ReturnType<MarketCore['apply']>;
        try {
          r = core.apply(row.command);
        } catch (err) {
          throw new EngineDivergenceError(`${this.symbol}: journal seq ${row.seq} cannot be replayed: ${String(err)}`);
        }
        if (!isDeepStrictEqual(JSON.parse(JSON.stringify(r.events)), row.events)) {
          throw new EngineDivergenceError(
            `${this.symbol}: replay of journal seq ${row.seq} produced different events than journaled`,
          );
        }
        replayed++;
      }
    }
    if (core.seq !== lastSeq) {
      throw new EngineDivergenceError(`${this.symbol}: journal ends at ${core.seq}, engine_state says ${lastSeq}`);
    }
    this.core = core;
    this.dirty = false;
    this.reloads++;
    this.opts.metrics?.engineReloads.inc({ market: this.symbol, reason });
    this.opts.logger.info(
      {
        market: this.symbol,
        reason,
        seq: lastSeq,
        snapshotSeq: this.lastSnapshotSeq,
        replayed,
        restingOrders: core.orderBook.orderCount,
        ms: Math.round(performance.now() - t0),
      },
      'engine: state loaded from snapshot + journal',
    );
  }

  /** The consumer handler for `orders.<MARKET>`: runs inside the consumer's transaction. */
  async handle(envelope: Envelope, client: PoolClient): Promise<void> {
    this.lastDeliveryAt = new Date();
    const end = this.opts.metrics?.commandDuration.startTimer({ market: this.symbol });
    const { rows } = await client.query<{ last_seq: string }>(
      'SELECT last_seq FROM payment.engine_state WHERE market = $1 FOR UPDATE',
      [this.symbol],
    );
    if (!rows[0]) throw new Error(`${this.symbol}: engine_state row missing (restore() not run)`);
    const lastSeq = Number(rows[0].last_seq);
    if (this.dirty || !this.core || this.core.seq !== lastSeq) {
      // recovery: a command of this replica failed half-way; resync: the journal moved on without this engine (another
      // replica took over, or this replica's commit failed after the engine had applied the command)
      const reason = this.dirty || !this.core ? 'recovery' : 'resync';
      await this.load(client, lastSeq, reason);
    }
    const core = this.core!;

    const cmd = await this.journalCommand(envelope, client, core.seq + 1);
    if (!cmd) {
      this.dirty = false;
      this.opts.metrics?.engineOrders.inc({ market: this.symbol, result: 'duplicate' });
      end?.();
      return;
    }
    const at = new Date();
    const atIso = at.toISOString();
    this.dirty = true; // until the command is fully written; a throw below leaves the engine to be reloaded
    const r = core.apply(cmd);
    const messages = messagesFor(this.market, cmd, r, atIso, envelope.correlationId);
    const book = this.bookSnapshotDue(r.seq, atIso);
    if (book) messages.push(book);
    // journal row, journal position and the outbox messages in one round trip (NOTIFY is delivered on commit)
    const params: unknown[] = [
      this.symbol,
      r.seq,
      envelope.id,
      JSON.stringify(cmd),
      JSON.stringify(r.events),
      r.bookSeq,
      this.opts.replicaId,
      at,
      OUTBOX_CHANNEL,
    ];
    const outbox = messages.length ? `, o AS (${outboxInsert(messages, params)})` : '';
    await client.query(
      `WITH j AS (
         INSERT INTO payment.engine_journal (market, seq, message_id, command, events, book_seq, applied_by, applied_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ), s AS (
         UPDATE payment.engine_state SET last_seq = $2, book_seq = $6, updated_at = now() WHERE market = $1
       )${outbox}
       SELECT ${messages.length ? `pg_notify($9, '') WHERE EXISTS (SELECT 1 FROM o)` : `$9::text`}`,
      params,
    );
    if (r.seq % this.opts.snapshotEvery === 0) await this.storeSnapshot(client, core);

    this.dirty = false;
    this.lastAppliedAt = at;
    const taker = cmd.kind === 'place' ? r.orders.find((o) => o.orderId === cmd.order.orderId) : undefined;
    const result =
      cmd.kind === 'place'
        ? (taker?.status ?? 'cancelled')
        : cmd.kind === 'amend'
          ? r.amend?.ok
            ? 'amend_applied'
            : 'amend_rejected'
          : r.orders.some((o) => o.orderId === cmd.cancel.orderId)
            ? 'cancel_applied'
            : 'cancel_unknown';
    this.opts.metrics?.engineOrders.inc({ market: this.symbol, result });
    if (r.fills.length) this.opts.metrics?.trades.inc({ market: this.symbol }, r.fills.length);
    end?.();
  }

  /**
   * Dedupe by order id and decide how the command is journaled; undefined = already applied, skip. Records the order
   * id with this command's journal seq at the same time (rolled back with everything else if the command fails).
   */
  private async journalCommand(
    envelope: Envelope,
    client: PoolClient,
    seq: number,
  ): Promise<JournalCommand | undefined> {
    if (envelope.type === PlaceOrderV1.type) {
      const order = envelope.payload as PlacePayload;
      this.checkMarket(order.market);
      // new order id: inserted (cancel_seq null); a cancel came first: updated (cancel_seq set); placed before: no row
      const { rows } = await client.query<{ cancel_seq: string | null }>(
        `INSERT INTO payment.engine_orders (order_id, market, user_id, placed_seq) VALUES ($1, $2, $3, $4)
         ON CONFLICT (order_id) DO UPDATE SET placed_seq = EXCLUDED.placed_seq WHERE engine_orders.placed_seq IS NULL
         RETURNING cancel_seq`,
        [order.orderId, this.symbol, order.userId, seq],
      );
      if (!rows[0]) return undefined;
      return {
        kind: 'place',
        messageId: envelope.id,
        order,
        ...(rows[0].cancel_seq !== null ? { preCancelled: true } : {}),
      };
    }
    if (envelope.type === CancelOrderV1.type) {
      const cancel = envelope.payload as CancelPayload;
      this.checkMarket(cancel.market);
      const { rows } = await client.query(
        `INSERT INTO payment.engine_orders (order_id, market, user_id, cancel_seq) VALUES ($1, $2, $3, $4)
         ON CONFLICT (order_id) DO UPDATE SET cancel_seq = EXCLUDED.cancel_seq WHERE engine_orders.cancel_seq IS NULL
         RETURNING order_id`,
        [cancel.orderId, this.symbol, cancel.userId, seq],
      );
      if (!rows[0]) return undefined;
      return { kind: 'cancel', messageId: envelope.id, cancel };
    }
    if (envelope.type === AmendOrderV1.type) {
      // Deduplicated by the consumer's inbox (message id); the order service sends an amend only for an order whose
      // place command is already ahead of it on this queue.
      const amend = envelope.payload as AmendPayload;
      this.checkMarket(amend.market);
      return { kind: 'amend', messageId: envelope.id, amend };
    }
    throw new Error(`orders.${this.symbol}: unexpected message type ${envelope.type}`);
  }

  private checkMarket(market: string): void {
    if (market !== this.symbol) {
      throw new Error(`orders.${this.symbol}: command for market ${market} on the wrong queue`);
    }
  }

  private async storeSnapshot(client: PoolClient, core: MarketCore): Promise<void> {
    await client.query(
      `INSERT INTO payment.engine_snapshots (market, seq, book_seq, state) VALUES ($1, $2, $3, $4)
       ON CONFLICT DO NOTHING`,
      [this.symbol, core.seq, core.bookSeq, JSON.stringify(core.snapshot())],
    );
    await client.query(
      `DELETE FROM payment.engine_snapshots WHERE market = $1 AND seq < ALL (
         SELECT seq FROM payment.engine_snapshots WHERE market = $1 ORDER BY seq DESC LIMIT $2)`,
      [this.symbol, this.opts.keepSnapshots ?? 3],
    );
    this.lastSnapshotSeq = core.seq;
  }

  /** Throttled `market.book-snapshot`: at most one per interval, and a trailing one after the last change. */
  private bookSnapshotDue(seq: number, at: string): OutgoingMessage | undefined {
    const now = Date.now();
    const due = this.lastBookSnapshotAt + this.opts.bookSnapshotIntervalMs;
    if (now >= due) {
      this.lastBookSnapshotAt = now;
      this.lastBookSnapshotSeq = seq;
      return bookSnapshotMessage(
        this.market,
        this.core!.orderBook,
        this.opts.bookSnapshotDepth,
        at,
        uuidv5(`${this.symbol}:${seq}:book`),
      );
    }
    if (!this.bookTimer && !this.stopped) {
      this.bookTimer = setTimeout(() => {
        this.bookTimer = undefined;
        void this.flushBookSnapshot().catch((err: unknown) =>
          this.opts.logger.warn({ err, market: this.symbol }, 'engine: trailing book snapshot failed'),
        );
      }, due - now);
      this.bookTimer.unref();
    }
    return undefined;
  }

  private async flushBookSnapshot(): Promise<void> {
    if (this.stopped) return;
    await withTransaction(this.opts.pool, async (client) => {
      const { rows } = await client.query<{ last_seq: string }>(
        'SELECT last_seq FROM payment.engine_state WHERE market = $1 FOR UPDATE',
        [this.symbol],
      );
      const seq = Number(rows[0]?.last_seq ?? -1);
      // Only the replica whose engine is current publishes (a standby's book is stale).
      if (this.dirty || !this.core || this.core.seq !== seq || seq === this.lastBookSnapshotSeq) return;
      this.lastBookSnapshotAt = Date.now();
      this.lastBookSnapshotSeq = seq;
      await enqueueAll(client, [
        bookSnapshotMessage(
          this.market,
          this.core.orderBook,
          this.opts.bookSnapshotDepth,
          new Date().toISOString(),
          uuidv5(`${this.symbol}:${seq}:book`),
        ),
      ]);
    });
  }

  /** Store a snapshot of the current state if it is current and newer than the last one (graceful shutdown). */
  async checkpoint(): Promise<boolean> {
    return withTransaction(this.opts.pool, async (client) => {
      const { rows } = await client.query<{ last_seq: string }>(
        'SELECT last_seq FROM payment.engine_state WHERE market = $1 FOR UPDATE',
        [this.symbol],
      );
      const seq = Number(rows[0]?.last_seq ?? -1);
      if (this.dirty || !this.core || this.core.seq !== seq || seq === 0) return false;
      const { rows: have } = await client.query(
        'SELECT 1 FROM payment.engine_snapshots WHERE market = $1 AND seq = $2',
        [this.symbol, seq],
      );
      if (have.length) return false;
      await this.storeSnapshot(client, this.core);
      return true;
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.bookTimer) clearTimeout(this.bookTimer);
    this.bookTimer = undefined;
  }
}
