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
 * The journal, position, order-id claims and snapshots are read and written through the EngineStore (store.ts).
 */
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { Envelope } from '@exchange/contracts';
import type { Market } from '@exchange/contracts/markets';
import { AmendOrderV1, CancelOrderV1, PlaceOrderV1 } from '@exchange/contracts/trading';
import type { Pool, PoolClient } from '@exchange/db';
import { PermanentError, type Logger } from '@exchange/messaging';
import type { PaymentMetrics } from '../metrics.ts';
import { orderedUuid, uuidv5 } from '../uuid.ts';
import {
  MarketCore,
  type AmendPayload,
  type ApplyResult,
  type CancelPayload,
  type JournalCommand,
  type PlacePayload,
} from './core.ts';
import { bookSnapshotMessage, messagesFor, type OutgoingMessage } from './messages.ts';
import { SnapshotSchedule } from './snapshot-schedule.ts';
import { PostgresEngineStore, type AppliedCommand, type EngineStore, type OrderClaim } from './store.ts';

/** What a batch's commands write at its end, in order (MarketEngine.handleBatch). */
interface BatchWrites {
  applied: AppliedCommand[];
  messages: OutgoingMessage[];
}

/**
 * A batch's order-id claims (engine_orders): read once for the batch, decided in memory command by command exactly as
 * `claimPlace` and `claimCancel` decide them in the database, and written once at the end (`writeClaims`). The
 * market's position lock, held by the batch's transaction, keeps any other writer of the market's claims out.
 */
class BatchClaims {
  private readonly known: Map<string, OrderClaim>;
  private readonly claimed = new Map<string, OrderClaim>();

  constructor(known: Map<string, OrderClaim>) {
    this.known = known;
  }

  /** The order ids the batch's places and cancels name. */
  static orderIds(envelopes: Envelope[]): string[] {
    const ids = new Set<string>();
    for (const e of envelopes) {
      if (e.type !== PlaceOrderV1.type && e.type !== CancelOrderV1.type) continue;
      const id = (e.payload as { orderId?: unknown } | undefined)?.orderId;
      if (typeof id === 'string') ids.add(id);
    }
    return [...ids];
  }

  /** As `claimPlace`: undefined when placed before, else whether a cancel came first. */
  place(order: { orderId: string; userId: string }, seq: number): { preCancelled: boolean } | undefined {
    const before = this.take(order, 'placedSeq', seq);
    return before && { preCancelled: before.cancelSeq !== null };
  }

  /** As `claimCancel`: false when cancelled once already. */
  cancel(order: { orderId: string; userId: string }, seq: number): boolean {
    return this.take(order, 'cancelSeq', seq) !== undefined;
  }

  /** One row per order id: the seqs this batch claimed (null where it claimed none). */
  changes(): Array<OrderClaim & { orderId: string }> {
    return [...this.claimed].map(([orderId, c]) => ({ orderId, ...c }));
  }

  /** Claim the order id's place or cancel seq unless it is taken: the claim as it stood before, or undefined. */
  private take(
    order: { orderId: string; userId: string },
    field: 'placedSeq' | 'cancelSeq',
    seq: number,
  ): OrderClaim | undefined {
    const empty = { userId: order.userId, placedSeq: null, cancelSeq: null };
    const before = this.known.get(order.orderId) ?? empty;
    if (before[field] !== null) return undefined;
    this.known.set(order.orderId, { ...before, [field]: seq });
    this.claimed.set(order.orderId, { ...(this.claimed.get(order.orderId) ?? empty), [field]: seq });
    return before;
  }
}

export interface MarketEngineOptions {
  market: Market;
  pool: Pool;
  /** Where the journal and snapshots live (default: PostgresEngineStore on `pool`). */
  store?: EngineStore;
  replicaId: string;
  /** Commands between snapshots while the book is small (see SnapshotSchedule for a large one). */
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
/**
 * How long after a book snapshot fell due a batch may still carry it before the trailing one goes alone: a few of the
 * gaps between batches while commands flow, short beside the interval (250 ms by default).
 */
export const TRAILING_BOOK_GRACE_MS = 50;
/** Retry delay when ending an auction failed (database down, market halted): the auction simply lasts longer. */
const AUCTION_END_RETRY_MS = 5000;

const rejectsAnOrder = (cmd: JournalCommand) =>
  cmd.kind === 'reject' && cmd.command === 'place' && cmd.orderId !== undefined && cmd.userId !== undefined;

export class MarketEngine {
  readonly market: Market;
  readonly symbol: string;
  private readonly opts: MarketEngineOptions;
  private readonly store: EngineStore;
  private core: MarketCore | undefined;
  /** The in-memory engine may not match the journal (a command failed half-way): reload before the next one. */
  private dirty = true;
  private lastBookSnapshotAt = 0;
  private lastBookSnapshotSeq = -1;
  private bookTimer: NodeJS.Timeout | undefined;
  /** Ends the running call auction (see scheduleAuctionEnd); for the auction that started at book seq auctionFor. */
  private auctionTimer: NodeJS.Timeout | undefined;
  private auctionFor = -1;
  private stopped = false;
  /** When the next snapshot is due (it remembers the last one's seq). */
  private readonly snapshots: SnapshotSchedule;
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
    this.store = opts.store ?? new PostgresEngineStore(opts.pool);
    this.market = opts.market;
    this.symbol = opts.market.symbol;
    this.snapshots = new SnapshotSchedule(opts.snapshotEvery);
  }

  /** Loaded engine state (for status and tests); undefined before the first load. */
  get loaded(): MarketCore | undefined {
    return this.dirty ? undefined : this.core;
  }

  /** Create the market's state row and load the engine (before consuming). */
  async restore(): Promise<void> {
    await this.store.transaction(async (client) => {
      await this.load(client, await this.store.init(client, this.symbol), 'start');
    });
  }

  /** Rebuild the engine: latest snapshot at or before `lastSeq`, then replay the journal up to it (verifying events). */
  private async load(client: PoolClient, lastSeq: number, reason: string): Promise<void> {
    const t0 = performance.now();
    this.dirty = true;
    const snap = await this.store.latestSnapshot(client, this.symbol, lastSeq);
    let core: MarketCore;
    try {
      core = new MarketCore(this.market, snap?.state);
    } catch (err) {
      throw new EngineDivergenceError(`${this.symbol}: snapshot ${snap?.seq} cannot be restored: ${String(err)}`);
    }
    const snapshotSeq = snap ? snap.seq : 0;
    let replayed = 0;
    while (core.seq < lastSeq) {
      const rows = await this.store.readJournal(client, this.symbol, core.seq, lastSeq, REPLAY_BATCH);
      if (rows.length === 0) break;
      for (const row of rows) {
        if (row.seq !== core.seq + 1) {
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
    // the book as loaded stands in for the snapshot's own: the cadence only needs its order of magnitude
    this.snapshots.taken(snapshotSeq, core.orderBook.orderCount);
    this.epoch = randomUUID();
    this.dirty = false;
    // an auction running at load (restart, takeover) gets a full auction period from now
    this.scheduleAuctionEnd();
    this.reloads++;
    this.opts.metrics?.engineReloads.inc({ market: this.symbol, reason });
    this.opts.logger.info(
      {
        market: this.symbol,
        reason,
        seq: lastSeq,
        snapshotSeq,
        replayed,
        restingOrders: core.orderBook.orderCount,
        ms: Math.round(performance.now() - t0),
      },
      'engine: state loaded from snapshot + journal',
    );
  }

  /** The consumer handler for `orders.<MARKET>`: runs inside the consumer's transaction. */
  async handle(envelope: Envelope, client: PoolClient): Promise<void> {
    await this.sync(client);
    await this.handleSynced(envelope, client);
    this.opts.metrics?.engineBatch.observe({ market: this.symbol }, 1);
  }

  /**
   * The consumer's batch handler: the commands of one group-commit transaction, in delivery order. The market's
   * position is locked and checked once for the batch rather than once per command: the row stays locked by this
   * transaction until it commits, and each command below moves the in-memory engine and the journal position
   * together, so a check between two commands could only find what the one before wrote. A command that throws
   * rolls the whole batch back (the consumer then goes one by one through `handle`, which reloads a dirty engine).
   */
  async handleBatch(envelopes: Envelope[], client: PoolClient): Promise<void> {
    await this.sync(client);
    // The batch's order-id claims are read once and decided in memory in command order, and they, the journal rows
    // and the outbox messages are written at the end. Until then the engine in memory is ahead of the database: it
    // stays dirty, so a failure anywhere below has it reloaded.
    const claims = new BatchClaims(await this.store.readClaims(client, BatchClaims.orderIds(envelopes)));
    const writes: BatchWrites = { applied: [], messages: [] };
    for (const envelope of envelopes) await this.handleSynced(envelope, client, writes, claims);
    this.dirty = true;
    if (!(await this.store.writeClaims(client, this.symbol, claims.changes()))) {
      throw new Error(`${this.symbol}: order-id claims changed under the batch; applying its commands one by one`);
    }
    await this.store.append(client, this.symbol, writes.applied, writes.messages);
    this.dirty = false;
    this.opts.metrics?.engineBatch.observe({ market: this.symbol }, envelopes.length);
  }

  private async handleSynced(
    envelope: Envelope,
    client: PoolClient,
    writes?: BatchWrites,
    claims?: BatchClaims,
  ): Promise<void> {
    this.lastDeliveryAt = new Date();
    const end = this.opts.metrics?.commandDuration.startTimer({ market: this.symbol });
    const core = this.core!;

    let cmd: JournalCommand | undefined;
    try {
      cmd = await this.journalCommand(envelope, client, core.seq + 1, claims);
    } catch (err) {
      if (!(err instanceof ContentError)) throw err;
      // a rejection claims its order id on its own (claimRejectedPlace): left to the one-by-one path
      if (claims) throw new Error(`${this.symbol}: a command to reject in the batch; applying it one by one`);
      const reject = this.rejectCommand(envelope.id, envelope.type, envelope.payload, err.message);
      // nothing to reject (a cancel on the wrong queue, an unknown type): not a command of this market
      if (!rejectsAnOrder(reject)) throw new PermanentError(err.message);
      cmd = await this.claim(client, reject);
    }
    if (!cmd) {
      if (!writes?.applied.length) this.dirty = false; // (a batch's earlier commands are not written yet)
      this.opts.metrics?.engineOrders.inc({ market: this.symbol, result: 'duplicate' });
      end?.();
      return;
    }
    await this.applyAndWrite(cmd, envelope, client, writes);
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
    const position = await this.store.lock(client, this.symbol);
    if (!position) throw new Error(`${this.symbol}: engine_state row missing (restore() not run)`);
    if (position.haltedReason !== null) {
      throw new MarketHaltedError(`${this.symbol} is halted: ${position.haltedReason}`);
    }
    const { lastSeq } = position;
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
    if (await this.store.claimRejectedPlace(client, this.symbol, { orderId: cmd.orderId, userId: cmd.userId }, seq)) {
      return cmd;
    }
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
    const amendId = type === AmendOrderV1.type ? str(p.amendId) : undefined;
    const topUpHoldId = amendId ? str(p.topUpHoldId) : undefined;
    return {
      kind: 'reject',
      messageId,
      command:
        type === PlaceOrderV1.type
          ? 'place'
          : type === CancelOrderV1.type
            ? 'cancel'
            : amendId && orderId && userId
              ? 'amend'
              : 'unknown',
      ...(orderId ? { orderId } : {}),
      ...(userId ? { userId } : {}),
      ...(amendId && orderId && userId ? { amendId, ...(topUpHoldId ? { topUpHoldId } : {}) } : {}),
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
    writes?: BatchWrites,
  ): Promise<void> {
    let cmd: JournalCommand = { ...journaled, epoch: this.epoch! };
    this.dirty = true; // until the command is fully written; a throw below leaves the engine to be reloaded
    let r: ApplyResult;
    try {
      r = this.core!.apply(cmd);
    } catch (err) {
      // In a batch the reload below would read a journal without the batch's unwritten rows: fail the batch instead
      // (rolled back whole; the consumer applies its commands one by one, and this one is rejected there).
      if (writes) throw err;
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
              : cmd.kind === 'end_auction'
                ? {}
                : { orderId: cmd.orderId, userId: cmd.userId };
      // an amend the book cannot apply is journaled as a rejected amend: the order itself stays as it is, the amend is
      // answered as rejected and its top-up hold released (core.ts, messages.ts)
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
    this.scheduleAuctionEnd();
    const messages = messagesFor(this.market, cmd, r, atIso, envelope.correlationId);
    const book = this.bookSnapshotDue(r.seq, atIso);
    if (book) messages.push(book);
    const applied: AppliedCommand = {
      seq: r.seq,
      messageId: envelope.id,
      command: cmd,
      events: r.events,
      bookSeq: r.bookSeq,
      appliedBy: this.opts.replicaId,
      at,
      epoch: this.epoch!,
    };
    if (writes) {
      writes.applied.push(applied);
      writes.messages.push(...messages);
    } else {
      await this.store.append(client, this.symbol, [applied], messages);
    }
    if (this.snapshots.due(r.seq)) await this.storeSnapshot(client, core);

    this.dirty = writes !== undefined; // a batch's commands are written at its end
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
            : cmd.kind === 'end_auction'
              ? 'auction_ended'
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
    claims?: BatchClaims,
  ): Promise<JournalCommand | undefined> {
    if (envelope.type === PlaceOrderV1.type) {
      const order = envelope.payload as PlacePayload;
      this.checkMarket(order.market);
      const claim = claims ? claims.place(order, seq) : await this.store.claimPlace(client, this.symbol, order, seq);
      if (!claim) return undefined; // placed before: a duplicate
      return {
        kind: 'place',
        messageId: envelope.id,
        order,
        ...(claim.preCancelled ? { preCancelled: true } : {}),
      };
    }
    if (envelope.type === CancelOrderV1.type) {
      const cancel = envelope.payload as CancelPayload;
      this.checkMarket(cancel.market);
      // A cancel of an order id already cancelled once (a re-sent cancel) is a duplicate: nothing to do again.
      const claimed = claims
        ? claims.cancel(cancel, seq)
        : await this.store.claimCancel(client, this.symbol, cancel, seq);
      if (!claimed) return undefined;
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

  /**
   * The volatility guard paused the market into a call auction: after the market's auctionSeconds, journal an
   * end_auction command (the only way an auction ends, so replay ends it at the same journal position). Runs on
   * whichever replica applied or loaded the auction; the engine_state row lock and the startSeq check make a second
   * timer (another replica, a late retry) a no-op.
   */
  private scheduleAuctionEnd(delayMs?: number): void {
    const a = this.core?.orderBook.auctionState();
    if (this.stopped || !a) return;
    if (this.auctionTimer && this.auctionFor === a.startSeq && delayMs === undefined) return;
    if (this.auctionTimer) clearTimeout(this.auctionTimer);
    const startSeq = a.startSeq;
    this.auctionFor = startSeq;
    const ms = delayMs ?? (this.market.config.volatilityGuard?.auctionSeconds ?? 30) * 1000;
    this.auctionTimer = setTimeout(() => {
      this.auctionTimer = undefined;
      this.endAuction(startSeq).catch((err: unknown) => {
        this.opts.logger.warn({ err, market: this.symbol, startSeq }, 'engine: ending the auction failed; retrying');
        this.scheduleAuctionEnd(AUCTION_END_RETRY_MS);
      });
    }, ms);
    this.auctionTimer.unref();
  }

  /** Journal and apply end_auction for the auction that started at `startSeq`; false when it is no longer running. */
  async endAuction(startSeq: number): Promise<boolean> {
    return this.store.transaction(async (client) => {
      await this.sync(client);
      const a = this.core!.orderBook.auctionState();
      if (!a || a.startSeq !== startSeq) return false;
      const messageId = uuidv5(`${this.symbol}:${this.epoch ?? ''}:end-auction:${startSeq}`);
      await this.applyAndWrite({ kind: 'end_auction', messageId, startSeq }, { id: messageId }, client);
      this.opts.logger.info({ market: this.symbol, startSeq }, 'engine: call auction ended');
      return true;
    });
  }

  private checkMarket(market: string): void {
    if (market !== this.symbol) {
      throw new ContentError(`orders.${this.symbol}: command for market ${market} on the wrong queue`);
    }
  }

  private async storeSnapshot(client: PoolClient, core: MarketCore): Promise<void> {
    await this.store.saveSnapshot(
      client,
      this.symbol,
      { seq: core.seq, bookSeq: core.bookSeq, state: core.snapshot() },
      this.opts.keepSnapshots ?? 3,
    );
    this.snapshots.taken(core.seq, core.orderBook.orderCount);
  }

  /**
   * Throttled `market.book-snapshot`: at most one per interval, carried by the batch that applies a command once the
   * interval has passed, and a trailing one after the last change (`armTrailingBookSnapshot`).
   */
  private bookSnapshotDue(seq: number, at: string): OutgoingMessage | undefined {
    const now = Date.now();
    if (now >= this.lastBookSnapshotAt + this.opts.bookSnapshotIntervalMs) {
      this.lastBookSnapshotAt = now;
      this.lastBookSnapshotSeq = seq;
      return bookSnapshotMessage(
        this.market,
        this.core!.orderBook,
        this.opts.bookSnapshotDepth,
        at,
        orderedUuid(`${this.symbol}:${this.epoch ?? ''}:book`, seq),
      );
    }
    this.armTrailingBookSnapshot();
    return undefined;
  }

  /**
   * The trailing book snapshot: a transaction of its own (lock, outbox row), so it is sent only when no batch carried
   * one within `TRAILING_BOOK_GRACE_MS` after it fell due. While commands flow, the next batch carries it, and a
   * transaction of its own would only make that batch queue behind it on the market's lock (one every interval and
   * market: about 15 % of the engine's transactions in `bench:e2e`). When a batch did carry one, the timer waits
   * for the next one due, as long as the book has changed since.
   */
  private armTrailingBookSnapshot(): void {
    if (this.bookTimer || this.stopped) return;
    this.bookTimer = setTimeout(
      () => {
        this.bookTimer = undefined;
        if (this.stopped || !this.core || this.core.seq === this.lastBookSnapshotSeq) return;
        // the grace again, not only the interval: a timer that fires late (a busy event loop) must not send a
        // snapshot alone just before the next batch would carry it
        if (Date.now() < this.trailingSnapshotAt()) {
          this.armTrailingBookSnapshot();
          return;
        }
        void this.flushBookSnapshot().catch((err: unknown) =>
          this.opts.logger.warn({ err, market: this.symbol }, 'engine: trailing book snapshot failed'),
        );
      },
      Math.max(TRAILING_BOOK_GRACE_MS, this.trailingSnapshotAt() - Date.now()),
    );
    this.bookTimer.unref();
  }

  /** The earliest a snapshot may go alone: the grace after the next one falls due. */
  private trailingSnapshotAt(): number {
    return this.lastBookSnapshotAt + this.opts.bookSnapshotIntervalMs + TRAILING_BOOK_GRACE_MS;
  }

  private async flushBookSnapshot(): Promise<void> {
    if (this.stopped) return;
    let carried = false;
    await this.store.transaction(async (client) => {
      const seq = (await this.store.lock(client, this.symbol))?.lastSeq ?? -1;
      // Only the replica whose engine is current publishes (a standby's book is stale).
      if (this.dirty || !this.core || this.core.seq !== seq || seq === this.lastBookSnapshotSeq) return;
      // a batch that held the lock meanwhile may have carried one, and the book changed again since
      carried = Date.now() < this.trailingSnapshotAt();
      if (carried) return;
      this.lastBookSnapshotAt = Date.now();
      this.lastBookSnapshotSeq = seq;
      await this.store.enqueue(client, [
        bookSnapshotMessage(
          this.market,
          this.core.orderBook,
          this.opts.bookSnapshotDepth,
          new Date().toISOString(),
          orderedUuid(`${this.symbol}:${this.epoch ?? ''}:book`, seq),
        ),
      ]);
    });
    if (carried) this.armTrailingBookSnapshot(); // for the book after the batch that carried one
  }

  /** Store a snapshot of the current state if it is current and newer than the last one (graceful shutdown). */
  async checkpoint(): Promise<boolean> {
    return this.store.transaction(async (client) => {
      const seq = (await this.store.lock(client, this.symbol))?.lastSeq ?? -1;
      if (this.dirty || !this.core || this.core.seq !== seq || seq === 0) return false;
      if (await this.store.hasSnapshot(client, this.symbol, seq)) return false;
      await this.storeSnapshot(client, this.core);
      return true;
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.bookTimer) clearTimeout(this.bookTimer);
    this.bookTimer = undefined;
    if (this.auctionTimer) clearTimeout(this.auctionTimer);
    this.auctionTimer = undefined;
  }
}
