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
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { Envelope } from '@exchange/contracts';
import type { Market } from '@exchange/contracts/markets';
import { AmendOrderV1, CancelOrderV1, PlaceOrderV1 } from '@exchange/contracts/trading';
import { withTransaction, type Pool, type PoolClient } from '@exchange/db';
import { PermanentError, type Logger } from '@exchange/messaging';
import type { PaymentMetrics } from '../metrics.ts';
import { uuidv5 } from '../uuid.ts';
import {
  MarketCore,
  type AmendPayload,
  type ApplyResult,
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

/** The market is halted (engine_state.halted_reason is set): no replica applies its commands until it is resumed. */
export class MarketHaltedError extends Error {}

/** A command the engine cannot apply because of what it says (not because of the database): it is rejected. */
class ContentError extends Error {}

const REPLAY_BATCH = 1000;

const rejectsAnOrder = (cmd: JournalCommand) =>
  cmd.kind === 'reject' && cmd.command === 'place' && cmd.orderId !== undefined && cmd.userId !== undefined;

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
  /** Set when the market is halted in this replica (journal does not replay, or halted by a failing command). */
  halted: string | undefined;
  /** The halt is the persisted one (engine_state.halted_reason): lifted by an admin resume, not by a restart. */
  haltedPersisted = false;
  /**
   * Id generation of the loaded engine: a fresh random value every load from the database, so the ids of the
   * commands it applies (journal seq based) never repeat those of another load — after a database restore or an
   * engine reset the journal's sequence numbers are issued again, the ids are not.
   */
  epoch: string | undefined;

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
    this.epoch = randomUUID();
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
    await this.sync(client);
    const core = this.core!;

    let cmd: JournalCommand | undefined;
    try {
      cmd = await this.journalCommand(envelope, client, core.seq + 1);
    } catch (err) {
      if (!(err instanceof ContentError)) throw err;
      const reject = this.rejectCommand(envelope.id, envelope.type, envelope.payload, err.message);
      // nothing to reject (a cancel on the wrong queue, an unknown type): not a command of this market
      if (!rejectsAnOrder(reject)) throw new PermanentError(err.message);
      cmd = await this.claim(client, reject);
    }
    if (!cmd) {
      this.dirty = false;
      this.opts.metrics?.engineOrders.inc({ market: this.symbol, result: 'duplicate' });
      end?.();
      return;
    }
    await this.applyAndWrite(cmd, envelope, client);
    end?.();
  }

  /**
   * A command that failed contract validation (ConsumeOptions.onInvalid): journaled as a rejection, so the order it
   * names (when it names one) is rejected and its hold released. False (dead-letter) when it names nothing usable.
   */
  async rejectInvalid(parsed: unknown, reason: string, client: PoolClient): Promise<boolean> {
    const env = parsed && typeof parsed === 'object' ? (parsed as Partial<Envelope>) : undefined;
    if (typeof env?.id !== 'string') return false;
    const reject = this.rejectCommand(env.id, typeof env.type === 'string' ? env.type : '', env.payload, reason);
    // only a place that names its order and user can be rejected (and its hold released); the rest is dead-lettered
    if (!rejectsAnOrder(reject)) return false;
    await this.sync(client);
    const cmd = await this.claim(client, reject);
    await this.applyAndWrite(
      cmd,
      { id: env.id, ...(typeof env.correlationId === 'string' ? { correlationId: env.correlationId } : {}) },
      client,
    );
    return true;
  }

  /** Lock the market's journal position and make the in-memory engine current (reload when it is not). */
  private async sync(client: PoolClient): Promise<void> {
    const { rows } = await client.query<{ last_seq: string; halted_reason: string | null }>(
      'SELECT last_seq, halted_reason FROM payment.engine_state WHERE market = $1 FOR UPDATE',
      [this.symbol],
    );
    if (!rows[0]) throw new Error(`${this.symbol}: engine_state row missing (restore() not run)`);
    if (rows[0].halted_reason !== null) {
      throw new MarketHaltedError(`${this.symbol} is halted: ${rows[0].halted_reason}`);
    }
    const lastSeq = Number(rows[0].last_seq);
    if (this.dirty || !this.core || this.core.seq !== lastSeq) {
      // recovery: a command of this replica failed half-way; resync: the journal moved on without this engine (another
      // replica took over, or this replica's commit failed after the engine had applied the command)
      const reason = this.dirty || !this.core ? 'recovery' : 'resync';
      await this.load(client, lastSeq, reason);
    }
  }

  /**
   * A rejected place names an order only if that order id is new to the engine (or is this very command's, placed at
   * the next seq): an invalid copy must never turn a known order into a rejected one.
   */
  private async claim(client: PoolClient, cmd: JournalCommand): Promise<JournalCommand> {
    if (cmd.kind !== 'reject' || cmd.command !== 'place' || !cmd.orderId || !cmd.userId) return cmd;
    const seq = this.core!.seq + 1;
    const { rows } = await client.query(
      `INSERT INTO payment.engine_orders (order_id, market, user_id, placed_seq) VALUES ($1, $2, $3, $4)
       ON CONFLICT (order_id) DO UPDATE SET placed_seq = EXCLUDED.placed_seq
         WHERE engine_orders.placed_seq IS NULL OR engine_orders.placed_seq = EXCLUDED.placed_seq
       RETURNING order_id`,
      [cmd.orderId, this.symbol, cmd.userId, seq],
    );
    if (rows[0]) return cmd;
    return {
      kind: 'reject',
      messageId: cmd.messageId,
      command: 'place',
      detail: `${cmd.detail} (order id ${cmd.orderId} already known to the engine: left as it is)`.slice(0, 500),
    };
  }

  private rejectCommand(messageId: string, type: string, payload: unknown, detail: string): JournalCommand {
    const p = payload && typeof payload === 'object' ? (payload as Record<string, unknown>) : {};
    const str = (v: unknown) => (typeof v === 'string' && v.length > 0 && v.length <= 100 ? v : undefined);
    const orderId = str(p.orderId);
    const userId = str(p.userId);
    return {
      kind: 'reject',
      messageId,
      command: type === PlaceOrderV1.type ? 'place' : type === CancelOrderV1.type ? 'cancel' : 'unknown',
      ...(orderId ? { orderId } : {}),
      ...(userId ? { userId } : {}),
      detail: detail.slice(0, 500),
    };
  }

  /**
   * Apply a command to the current engine and write its journal row, position and outbox messages. A command the
   * engine core throws on (its content makes the book fail) is rejected instead, after a reload: the in-memory
   * engine may be half-way through it.
   */
  private async applyAndWrite(
    journaled: JournalCommand,
    envelope: Pick<Envelope, 'id' | 'correlationId'>,
    client: PoolClient,
  ): Promise<void> {
    let cmd: JournalCommand = { ...journaled, epoch: this.epoch! };
    this.dirty = true; // until the command is fully written; a throw below leaves the engine to be reloaded
    let r: ApplyResult;
    try {
      r = this.core!.apply(cmd);
    } catch (err) {
      const seq = this.core!.seq;
      this.opts.logger.error(
        { err, market: this.symbol, messageId: envelope.id },
        'engine: command cannot be applied; rejecting it',
      );
      await this.load(client, seq, 'recovery');
      const payload =
        cmd.kind === 'place'
          ? cmd.order
          : cmd.kind === 'cancel'
            ? cmd.cancel
            : cmd.kind === 'amend'
              ? cmd.amend
              : { orderId: cmd.orderId, userId: cmd.userId };
      // an amend the book cannot apply is journaled as an unknown-command rejection: the order itself stays as it is
      const type =
        cmd.kind === 'place'
          ? PlaceOrderV1.type
          : cmd.kind === 'cancel'
            ? CancelOrderV1.type
            : cmd.kind === 'amend'
              ? AmendOrderV1.type
              : '';
      const reject = this.rejectCommand(cmd.messageId, type, payload, `engine cannot apply it: ${String(err)}`);
      cmd = { ...(await this.claim(client, reject)), epoch: this.epoch! };
      this.dirty = true;
      r = this.core!.apply(cmd);
    }
    const core = this.core!;
    const at = new Date();
    const atIso = at.toISOString();
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
      this.epoch,
    ];
    const outbox = messages.length ? `, o AS (${outboxInsert(messages, params)})` : '';
    await client.query(
      `WITH j AS (
         INSERT INTO payment.engine_journal (market, seq, message_id, command, events, book_seq, applied_by, applied_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ), s AS (
         UPDATE payment.engine_state SET last_seq = $2, book_seq = $6, epoch = $10, updated_at = now() WHERE market = $1
       )${outbox}
       SELECT ${messages.length ? `pg_notify($9, '') WHERE EXISTS (SELECT 1 FROM o)` : `$9::text`}`,
      params,
    );
    if (r.seq % this.opts.snapshotEvery === 0) await this.storeSnapshot(client, core);

    this.dirty = false;
    this.lastAppliedAt = at;
    const taker = cmd.kind === 'place' ? r.orders.find((o) => o.orderId === cmd.order.orderId) : undefined;
    const result =
      cmd.kind === 'reject'
        ? `${cmd.command}_rejected`
        : cmd.kind === 'place'
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
  }

  /**
   * Dedupe by order id and decide how the command is journaled; undefined = already applied, skip. Records the order
   * id with this command's journal seq at the same time (rolled back with everything else if the command fails).
   * A command for another market or of an unknown type is a ContentError (rejected, not retried).
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
      // A cancel of an order id already cancelled once (a re-sent cancel) is a duplicate: nothing to do again.
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
    throw new ContentError(`orders.${this.symbol}: unexpected message type ${envelope.type}`);
  }

  private checkMarket(market: string): void {
    if (market !== this.symbol) {
      throw new ContentError(`orders.${this.symbol}: command for market ${market} on the wrong queue`);
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
        uuidv5(`${this.symbol}:${this.epoch ?? ''}:${seq}:book`),
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
          uuidv5(`${this.symbol}:${this.epoch ?? ''}:${seq}:book`),
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
