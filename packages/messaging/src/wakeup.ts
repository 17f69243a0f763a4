import type { EventEmitter } from 'node:events';
import { schemaName } from './tables.ts';
import type { PgSchema } from 'drizzle-orm/pg-core';

/**
 * How an outbox write wakes the relay that publishes it.
 *
 * `NOTIFY` reaches a relay in any process, but it is dear on the hottest commits: PostgreSQL holds a lock that
 * serialises notifying transactions cluster-wide from before their commit record until after its WAL flush (so two
 * notifying commits never share a flush), and each notification wakes every backend of the database that listens on
 * any channel, each relay's among them. The relay usually runs in the process that wrote the row, though. Then the
 * write sends no `NOTIFY`: the writer's connection wakes the relay itself as soon as it reports that its transaction
 * has ended (the first ReadyForQuery whose status is idle), which is when the row became visible, or was rolled back.
 *
 * A statement sent on the relay's own pool is a transaction of its own: the writer wakes the relay when it returns.
 * Where the active relay is not in this process (another replica leads, or none does yet) or the writer's database is
 * not known (a pool other than the relay's), the write notifies as before. A relay that loses its lead between a
 * write and its commit misses that wake-up; the next leader's first poll, or its poll interval, finds the row, as
 * after a lost NOTIFY.
 */

/** What a relay registers while it leads: the database session it leads from, its pool, and how to wake it. */
export interface LocalRelay {
  /** `host:port/database` of the relay's session. */
  readonly database: string;
  /** The pool the relay's session came from: a statement sent on it is in the same database. */
  readonly pool?: object;
  poke(): void;
}

/** The relays active in this process, by `host:port/database/schema`. A set: tests may run two for one schema. */
const active = new Map<string, Set<LocalRelay>>();
/** The same relays by their pool, then schema. */
const byPool = new WeakMap<object, Map<string, Set<LocalRelay>>>();

/** Relays to wake when a connection's transaction ends, by connection. */
const waiting = new WeakMap<object, Set<LocalRelay>>();

interface ClientLike {
  host?: unknown;
  port?: unknown;
  database?: unknown;
  connection?: EventEmitter;
  getTransactionStatus?: () => string | null;
}

/** The database a pg client is connected to, or undefined when it is not a client (a Pool, say). */
export function sessionDatabase(client: unknown): string | undefined {
  const c = client as ClientLike;
  if (typeof c.getTransactionStatus !== 'function' || !c.connection) return undefined;
  return `${String(c.host)}:${String(c.port)}/${String(c.database)}`;
}

function key(database: string, schema: string | PgSchema): string {
  return `${database}/${schemaName(schema)}`;
}

function add<K>(map: Map<K, Set<LocalRelay>>, k: K, relay: LocalRelay): () => void {
  const set = map.get(k) ?? new Set();
  set.add(relay);
  map.set(k, set);
  return () => {
    set.delete(relay);
    if (set.size === 0 && map.get(k) === set) map.delete(k);
  };
}

/** Called by a relay when it becomes the active one for `schema`; returns the call that unregisters it. */
export function registerActiveRelay(schema: string | PgSchema, relay: LocalRelay): () => void {
  const removes = [add(active, key(relay.database, schema), relay)];
  if (relay.pool) {
    const schemas = byPool.get(relay.pool) ?? new Map<string, Set<LocalRelay>>();
    byPool.set(relay.pool, schemas);
    removes.push(add(schemas, schemaName(schema), relay));
  }
  return () => {
    for (const remove of removes) remove();
  };
}

/** How one outbox statement wakes its relay. */
export interface RelayWakeup {
  /** Whether the statement must `NOTIFY` the relay's channel. */
  readonly notify: boolean;
  /** To be called once the statement has returned successfully. */
  sent(): void;
}

const NOTIFY: RelayWakeup = { notify: true, sent: () => {} };
const ON_TRANSACTION_END: RelayWakeup = { notify: false, sent: () => {} };

/**
 * To be called by an outbox writer before its statement, with what it sends the statement on. When the schema's active
 * relay runs in this process, the statement must not notify:
 * - on a connection, the relay is woken once that connection's transaction ends;
 * - on the relay's own pool, the statement is a transaction of its own, committed when it returns: `sent()` wakes it.
 * Otherwise the statement must `NOTIFY` the relay's channel.
 */
export function relayWakeup(client: unknown, schema: string | PgSchema): RelayWakeup {
  const database = sessionDatabase(client);
  if (database === undefined) {
    const relays = typeof client === 'object' && client ? byPool.get(client)?.get(schemaName(schema)) : undefined;
    if (!relays || relays.size === 0) return NOTIFY;
    const wake = [...relays];
    return { notify: false, sent: () => wake.forEach((r) => r.poke()) };
  }
  const relays = active.get(key(database, schema));
  if (!relays || relays.size === 0) return NOTIFY;
  const conn = (client as ClientLike).connection!;
  let set = waiting.get(conn);
  if (!set) {
    const pending = new Set<LocalRelay>();
    set = pending;
    waiting.set(conn, pending);
    const onReady = (msg: { status?: string }) => {
      if (msg.status !== 'I') return;
      conn.removeListener('readyForQuery', onReady);
      waiting.delete(conn);
      for (const r of pending) r.poke();
    };
    // After pg's own listener, so the statement's or COMMIT's promise is settled first; the relay polls on another
    // connection, which sees the commit: the server reports idle only once the transaction's end is visible.
    conn.on('readyForQuery', onReady);
  }
  for (const r of relays) set.add(r);
  return ON_TRANSACTION_END;
}
