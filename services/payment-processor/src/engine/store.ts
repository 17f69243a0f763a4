/**
 * Where a market's engine keeps its state: the journal (every command with the events it produced), the journal
 * position and halt (engine_state), the order-id claims that dedupe commands (engine_orders), and snapshots.
 * MarketEngine and EngineHost only orchestrate; every statement they need is here.
 *
 * Methods that take a `tx` run in the caller's transaction: a command is applied in the broker consumer's
 * transaction, whose inbox row dedupes the message, so its journal row, position and outbox messages commit (or roll
 * back) with that row.
 */
import { context, propagation } from '@opentelemetry/api';
import { withTransaction, type Pool, type PoolClient } from '@exchange/db';
import { OUTBOX_TABLE, outboxChannel, relayWakeup } from '@exchange/messaging';
import { PAYMENT_SCHEMA } from '../db/schema.ts';
import type { CoreSnapshot, JournalCommand } from './core.ts';
import type { OutgoingMessage } from './messages.ts';

export interface EnginePosition {
  lastSeq: number;
  /** Why the market is halted (set by a replica, cleared by an admin resume), null when it is not. */
  haltedReason: string | null;
}

export interface JournalEntry {
  seq: number;
  command: JournalCommand;
  events: unknown;
}

export interface SnapshotEntry {
  seq: number;
  bookSeq: number;
  state: CoreSnapshot;
}

/** One applied command: its journal row and the position it moves the market to. */
export interface AppliedCommand {
  seq: number;
  messageId: string;
  command: JournalCommand;
  events: unknown;
  bookSeq: number;
  appliedBy: string;
  at: Date;
  epoch: string;
}

export interface MarketStoreStatus {
  lastSeq: number;
  bookSeq: number;
  lastSnapshotSeq: number | null;
  haltedReason: string | null;
}

/** An order id as the engine knows it: the journal seqs of its place and of its cancel, when they came. */
export interface OrderClaim {
  userId: string;
  placedSeq: number | null;
  cancelSeq: number | null;
}

export interface EngineStore {
  /** Run `fn` in a transaction of its own (start-up, trailing book snapshots, shutdown checkpoints). */
  transaction<T>(fn: (tx: PoolClient) => Promise<T>): Promise<T>;
  /** Create the market's position row when it is missing; its journal position. */
  init(tx: PoolClient, market: string): Promise<number>;
  /** Lock the market's position for the rest of the transaction (single writer); undefined when it has no row. */
  lock(tx: PoolClient, market: string): Promise<EnginePosition | undefined>;
  /** The newest snapshot at or before `seq`. */
  latestSnapshot(tx: PoolClient, market: string, seq: number): Promise<SnapshotEntry | undefined>;
  /** Journal entries after `after` up to `upTo`, in order, at most `limit`. */
  readJournal(tx: PoolClient, market: string, after: number, upTo: number, limit: number): Promise<JournalEntry[]>;
  /**
   * Claim an order id for a place at `seq`: undefined when the order was placed before (a duplicate), else whether a
   * cancel for it arrived first.
   */
  claimPlace(
    tx: PoolClient,
    market: string,
    order: { orderId: string; userId: string },
    seq: number,
  ): Promise<{ preCancelled: boolean } | undefined>;
  /** Claim an order id for a cancel at `seq`: false when it was cancelled once already (a re-sent cancel). */
  claimCancel(
    tx: PoolClient,
    market: string,
    order: { orderId: string; userId: string },
    seq: number,
  ): Promise<boolean>;
  /**
   * Claim an order id for a rejected place at `seq`: false when the id is known to the engine from another command
   * (an invalid copy must never turn a known order into a rejected one).
   */
  claimRejectedPlace(
    tx: PoolClient,
    market: string,
    order: { orderId: string; userId: string },
    seq: number,
  ): Promise<boolean>;
  /** The claims recorded for these order ids (a batch reads them once, then decides each command in memory). */
  readClaims(tx: PoolClient, orderIds: string[]): Promise<Map<string, OrderClaim>>;
  /**
   * Write a batch's claims (one row per order id, merged in command order). Only fills a seq that is still empty;
   * false when any row found its seq taken already (the batch read something another transaction has since changed:
   * the caller rolls back and goes one command at a time).
   */
  writeClaims(tx: PoolClient, market: string, claims: Array<OrderClaim & { orderId: string }>): Promise<boolean>;
  /**
   * Journal rows of consecutive commands (in seq order), the position after the last, and their outbox messages in
   * order, written together.
   */
  append(tx: PoolClient, market: string, applied: AppliedCommand[], messages: OutgoingMessage[]): Promise<void>;
  /** Store a snapshot and keep only the newest `keep` of the market's. */
  saveSnapshot(tx: PoolClient, market: string, snapshot: SnapshotEntry, keep: number): Promise<void>;
  hasSnapshot(tx: PoolClient, market: string, seq: number): Promise<boolean>;
  /** Messages outside a command (trailing book snapshots), in the caller's transaction. */
  enqueue(tx: PoolClient, messages: OutgoingMessage[]): Promise<void>;
  /** Markets of `markets` with a recorded halt, and its reason. */
  persistedHalts(markets: string[]): Promise<Map<string, string>>;
  /** Record a halt (kept when one is recorded already). */
  recordHalt(market: string, reason: string): Promise<void>;
  /** Clear a recorded halt; false when there was none. */
  clearHalt(market: string): Promise<boolean>;
  status(markets: string[]): Promise<Map<string, MarketStoreStatus>>;
}

/** The engine's tables in the payment schema. */
const P = `"${PAYMENT_SCHEMA}"`;

const OUTBOX_CHANNEL = outboxChannel(PAYMENT_SCHEMA);

/**
 * Outbox rows for the engine's messages, written in as few statements as possible: one engine command's messages go
 * in one INSERT (combined with the journal write, see `append`) and one wake-up of the relay. Same rows as
 * `@exchange/messaging`'s `enqueue` (the relay publishes them in `sequence` order); the messages were built and
 * validated by their contracts' `create()`. A command with many fills would otherwise pay two round trips per message.
 *
 * The rows come from one JSON array, so the statement's text is the same whatever the number of messages: it is
 * prepared and planned once per connection, where a VALUES list sized by its batch was a new text (parsed and planned
 * on every call) for almost every batch. One JSON document, not an array per column: a `jsonb[]` parameter escapes
 * every message a second time as an array element, and PostgreSQL parses it twice. `WITH ORDINALITY … ORDER BY` gives
 * the rows their `sequence` in array order, which is the order the relay publishes them in. Trace context of the
 * active span goes into the headers.
 */
const OUTBOX_ROWS = `INSERT INTO ${P}."${OUTBOX_TABLE}" (message_id, type, exchange, routing_key, message, headers)
          SELECT m.message_id, m.type, m.exchange, m.routing_key, m.message, $1::jsonb
            FROM ROWS FROM (jsonb_to_recordset($2::jsonb)
                   AS (message_id text, type text, exchange text, routing_key text, message jsonb)) WITH ORDINALITY
                 AS m(message_id, type, exchange, routing_key, message, n)
           ORDER BY m.n
          RETURNING 1`;

/** `OUTBOX_ROWS`' parameters for `messages`: `$1` and `$2` of every statement that includes it. */
function outboxParams(messages: OutgoingMessage[]): unknown[] {
  const headers: Record<string, string> = {};
  propagation.inject(context.active(), headers);
  const rows = messages.map((m) => ({
    message_id: m.message.id,
    type: m.message.type,
    exchange: m.exchange,
    routing_key: m.routingKey,
    message: m.message,
  }));
  return [JSON.stringify(headers), JSON.stringify(rows)];
}

/**
 * The relay's wake-up at the end of a statement that wrote outbox rows (`o`), whose last parameter is `$n`: a NOTIFY on
 * commit, only when there was a message, where the relay runs in another process; nothing where it runs in this one,
 * which `relayWakeup` wakes itself once the transaction ends.
 */
const wakeUp = (n: number) => ({
  notify: `SELECT pg_notify($${n}, '') WHERE EXISTS (SELECT 1 FROM o)`,
  local: 'SELECT 1 WHERE EXISTS (SELECT 1 FROM o)',
});

/**
 * The engine's write of a batch of applied commands: journal rows, journal position and their outbox messages in one
 * round trip, and the relay's wake-up (`wakeUp`). The journal rows come as one JSON array too (see `OUTBOX_ROWS`).
 */
const appendSql = (wake: string) => `WITH j AS (
         INSERT INTO ${P}.engine_journal (market, seq, message_id, command, events, book_seq, applied_by, applied_at)
         SELECT $3, t.seq, t.message_id, t.command, t.events, t.book_seq, $7, t.applied_at
           FROM jsonb_to_recordset($8::jsonb)
                AS t(seq bigint, message_id text, command jsonb, events jsonb, book_seq bigint, applied_at timestamptz)
       ), s AS (
         UPDATE ${P}.engine_state SET last_seq = $4, book_seq = $5, epoch = $6, updated_at = now() WHERE market = $3
       ), o AS (${OUTBOX_ROWS})
       ${wake}`;
const APPEND = { notify: appendSql(wakeUp(9).notify), local: appendSql(wakeUp(9).local) };

const ENQUEUE = {
  notify: `WITH o AS (${OUTBOX_ROWS}) ${wakeUp(3).notify}`,
  local: `WITH o AS (${OUTBOX_ROWS}) ${wakeUp(3).local}`,
};

/**
 * Which form of a statement that writes outbox rows to send on `tx`, and the NOTIFY channel parameter it takes. A
 * batch without messages takes the same form (one text either way); in this process it costs the relay one empty poll.
 */
function wakeForm(tx: PoolClient): { form: 'notify' | 'local'; channel: string[] } {
  return relayWakeup(tx, PAYMENT_SCHEMA).notify
    ? { form: 'notify', channel: [OUTBOX_CHANNEL] }
    : { form: 'local', channel: [] };
}

export class PostgresEngineStore implements EngineStore {
  private readonly pool: Pool;

  constructor(pool: Pool) {
    this.pool = pool;
  }

  transaction<T>(fn: (tx: PoolClient) => Promise<T>): Promise<T> {
    return withTransaction(this.pool, fn);
  }

  async init(tx: PoolClient, market: string): Promise<number> {
    await tx.query(`INSERT INTO ${P}.engine_state (market) VALUES ($1) ON CONFLICT DO NOTHING`, [market]);
    const { rows } = await tx.query<{ last_seq: string }>(`SELECT last_seq FROM ${P}.engine_state WHERE market = $1`, [
      market,
    ]);
    return Number(rows[0]!.last_seq);
  }

  async lock(tx: PoolClient, market: string): Promise<EnginePosition | undefined> {
    const { rows } = await tx.query<{ last_seq: string; halted_reason: string | null }>(
      `SELECT last_seq, halted_reason FROM ${P}.engine_state WHERE market = $1 FOR UPDATE`,
      [market],
    );
    const r = rows[0];
    return r ? { lastSeq: Number(r.last_seq), haltedReason: r.halted_reason } : undefined;
  }

  async latestSnapshot(tx: PoolClient, market: string, seq: number): Promise<SnapshotEntry | undefined> {
    const { rows } = await tx.query<{ seq: string; book_seq: string; state: string }>(
      `SELECT seq, book_seq, state FROM ${P}.engine_snapshots WHERE market = $1 AND seq <= $2 ORDER BY seq DESC LIMIT 1`,
      [market, seq],
    );
    const r = rows[0];
    return r
      ? { seq: Number(r.seq), bookSeq: Number(r.book_seq), state: JSON.parse(r.state) as CoreSnapshot }
      : undefined;
  }

  async readJournal(
    tx: PoolClient,
    market: string,
    after: number,
    upTo: number,
    limit: number,
  ): Promise<JournalEntry[]> {
    const { rows } = await tx.query<{ seq: string; command: JournalCommand; events: unknown }>(
      `SELECT seq, command, events FROM ${P}.engine_journal
        WHERE market = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4`,
      [market, after, upTo, limit],
    );
    return rows.map((r) => ({ seq: Number(r.seq), command: r.command, events: r.events }));
  }

  async claimPlace(
    tx: PoolClient,
    market: string,
    order: { orderId: string; userId: string },
    seq: number,
  ): Promise<{ preCancelled: boolean } | undefined> {
    // new order id: inserted (cancel_seq null); a cancel came first: updated (cancel_seq set); placed before: no row
    const { rows } = await tx.query<{ cancel_seq: string | null }>(
      `INSERT INTO ${P}.engine_orders (order_id, market, user_id, placed_seq) VALUES ($1, $2, $3, $4)
       ON CONFLICT (order_id) DO UPDATE SET placed_seq = EXCLUDED.placed_seq WHERE engine_orders.placed_seq IS NULL
       RETURNING cancel_seq`,
      [order.orderId, market, order.userId, seq],
    );
    return rows[0] ? { preCancelled: rows[0].cancel_seq !== null } : undefined;
  }

  async readClaims(tx: PoolClient, orderIds: string[]): Promise<Map<string, OrderClaim>> {
    if (orderIds.length === 0) return new Map();
    const { rows } = await tx.query<{
      order_id: string;
      user_id: string;
      placed_seq: string | null;
      cancel_seq: string | null;
    }>(`SELECT order_id, user_id, placed_seq, cancel_seq FROM ${P}.engine_orders WHERE order_id = ANY($1::text[])`, [
      orderIds,
    ]);
    return new Map(
      rows.map((r) => [
        r.order_id,
        {
          userId: r.user_id,
          placedSeq: r.placed_seq === null ? null : Number(r.placed_seq),
          cancelSeq: r.cancel_seq === null ? null : Number(r.cancel_seq),
        },
      ]),
    );
  }

  async writeClaims(tx: PoolClient, market: string, claims: Array<OrderClaim & { orderId: string }>): Promise<boolean> {
    if (claims.length === 0) return true;
    const { rowCount } = await tx.query(
      `INSERT INTO ${P}.engine_orders AS o (order_id, market, user_id, placed_seq, cancel_seq)
       SELECT id, $1, u, p, c FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[]) AS t(id, u, p, c)
       ON CONFLICT (order_id) DO UPDATE
          SET placed_seq = COALESCE(o.placed_seq, EXCLUDED.placed_seq),
              cancel_seq = COALESCE(o.cancel_seq, EXCLUDED.cancel_seq)
        WHERE (o.placed_seq IS NULL OR EXCLUDED.placed_seq IS NULL)
          AND (o.cancel_seq IS NULL OR EXCLUDED.cancel_seq IS NULL)`,
      [
        market,
        claims.map((c) => c.orderId),
        claims.map((c) => c.userId),
        claims.map((c) => c.placedSeq),
        claims.map((c) => c.cancelSeq),
      ],
    );
    return rowCount === claims.length;
  }

  async claimCancel(
    tx: PoolClient,
    market: string,
    order: { orderId: string; userId: string },
    seq: number,
  ): Promise<boolean> {
    const { rows } = await tx.query(
      `INSERT INTO ${P}.engine_orders (order_id, market, user_id, cancel_seq) VALUES ($1, $2, $3, $4)
       ON CONFLICT (order_id) DO UPDATE SET cancel_seq = EXCLUDED.cancel_seq WHERE engine_orders.cancel_seq IS NULL
       RETURNING order_id`,
      [order.orderId, market, order.userId, seq],
    );
    return rows.length > 0;
  }

  async claimRejectedPlace(
    tx: PoolClient,
    market: string,
    order: { orderId: string; userId: string },
    seq: number,
  ): Promise<boolean> {
    // new to the engine, or claimed at this very seq (the same command, re-run after a reload)
    const { rows } = await tx.query(
      `INSERT INTO ${P}.engine_orders (order_id, market, user_id, placed_seq) VALUES ($1, $2, $3, $4)
       ON CONFLICT (order_id) DO UPDATE SET placed_seq = EXCLUDED.placed_seq
         WHERE engine_orders.placed_seq IS NULL OR engine_orders.placed_seq = EXCLUDED.placed_seq
       RETURNING order_id`,
      [order.orderId, market, order.userId, seq],
    );
    return rows.length > 0;
  }

  async append(tx: PoolClient, market: string, applied: AppliedCommand[], messages: OutgoingMessage[]): Promise<void> {
    const last = applied[applied.length - 1];
    if (!last) return;
    const wake = wakeForm(tx);
    await tx.query(APPEND[wake.form], [
      ...outboxParams(messages),
      market,
      last.seq,
      last.bookSeq,
      last.epoch,
      last.appliedBy,
      JSON.stringify(
        applied.map((a) => ({
          seq: a.seq,
          message_id: a.messageId,
          command: a.command,
          events: a.events,
          book_seq: a.bookSeq,
          applied_at: a.at,
        })),
      ),
      ...wake.channel,
    ]);
  }

  async saveSnapshot(tx: PoolClient, market: string, s: SnapshotEntry, keep: number): Promise<void> {
    await tx.query(
      `INSERT INTO ${P}.engine_snapshots (market, seq, book_seq, state) VALUES ($1, $2, $3, $4)
       ON CONFLICT DO NOTHING`,
      [market, s.seq, s.bookSeq, JSON.stringify(s.state)],
    );
    await tx.query(
      `DELETE FROM ${P}.engine_snapshots WHERE market = $1 AND seq < ALL (
         SELECT seq FROM ${P}.engine_snapshots WHERE market = $1 ORDER BY seq DESC LIMIT $2)`,
      [market, keep],
    );
  }

  async hasSnapshot(tx: PoolClient, market: string, seq: number): Promise<boolean> {
    const { rows } = await tx.query(`SELECT 1 FROM ${P}.engine_snapshots WHERE market = $1 AND seq = $2`, [
      market,
      seq,
    ]);
    return rows.length > 0;
  }

  /** Write `messages` to the outbox in the caller's transaction, in order, and wake the relay once it commits. */
  async enqueue(tx: PoolClient, messages: OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const wake = wakeForm(tx);
    await tx.query(ENQUEUE[wake.form], [...outboxParams(messages), ...wake.channel]);
  }

  async persistedHalts(markets: string[]): Promise<Map<string, string>> {
    const { rows } = await this.pool.query<{ market: string; halted_reason: string }>(
      `SELECT market, halted_reason FROM ${P}.engine_state WHERE market = ANY($1::text[]) AND halted_reason IS NOT NULL`,
      [markets],
    );
    return new Map(rows.map((r) => [r.market, r.halted_reason]));
  }

  async recordHalt(market: string, reason: string): Promise<void> {
    await this.pool.query(
      `UPDATE ${P}.engine_state SET halted_reason = $2, halted_at = now()
        WHERE market = $1 AND halted_reason IS NULL`,
      [market, reason],
    );
  }

  async clearHalt(market: string): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      `UPDATE ${P}.engine_state SET halted_reason = NULL, halted_at = NULL
        WHERE market = $1 AND halted_reason IS NOT NULL`,
      [market],
    );
    return (rowCount ?? 0) > 0;
  }

  async status(markets: string[]): Promise<Map<string, MarketStoreStatus>> {
    const { rows } = await this.pool.query<{
      market: string;
      last_seq: string;
      book_seq: string;
      snap: string | null;
      halted_reason: string | null;
    }>(
      `SELECT s.market, s.last_seq, s.book_seq, s.halted_reason,
              (SELECT max(seq) FROM ${P}.engine_snapshots n WHERE n.market = s.market) AS snap
         FROM ${P}.engine_state s WHERE s.market = ANY($1::text[])`,
      [markets],
    );
    return new Map(
      rows.map((r) => [
        r.market,
        {
          lastSeq: Number(r.last_seq),
          bookSeq: Number(r.book_seq),
          lastSnapshotSeq: r.snap != null ? Number(r.snap) : null,
          haltedReason: r.halted_reason,
        },
      ]),
    );
  }
}
