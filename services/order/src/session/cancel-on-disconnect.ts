/**
 * Cancel-on-disconnect (issue 17). A WebSocket session that asks for it (`{"op":"cancel_on_disconnect",
 * "enabled":true, "market"?}`) is recorded in `orders.cod_sessions`; when its socket closes, for whatever reason
 * (client gone, network cut, pings unanswered, server shutting down), the replica holding it deletes the row and
 * sends cancels for the user's open orders (of that market, or all) in one transaction.
 *
 * Decisions:
 * - Several sessions: each COD session stands alone. When one ends, its scope is cancelled even if the user has
 *   other sessions open (as Deribit does per connection): a trading process that lost its connection must not leave
 *   orders behind because some other process of the same user (a UI, a monitor) is still connected.
 * - The order service restarting or crashing: the replica refreshes `seen_at` of the sessions it holds every
 *   heartbeat; a replica that stops (kill -9, lost host) stops refreshing, and any replica — the restarted one or
 *   another — treats rows older than the grace period as disconnected and cancels them the same way. The sockets
 *   are gone anyway (the clients must reconnect), so their orders are cancelled: later than on a clean close (by
 *   about the grace period), never not at all. A close whose own cancel fails (database down) leaves the row to
 *   that sweep too, because the heartbeat only refreshes sessions whose socket is still open.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { withTransaction } from '@exchange/db';
import type { Logger } from '@exchange/messaging';
import type { OrderService } from '../orders/service.ts';
import {
  deleteCodSession,
  takeStaleCodSession,
  touchCodSessions,
  upsertCodSession,
  type CodRow,
} from './repository.ts';
import { every } from './periodic.ts';

export interface CodEnded {
  sessionId: string;
  userId: string;
  market: string | null;
  cancelled: number;
  /** `closed`: its socket closed on this replica; `stale`: its replica stopped refreshing it. */
  cause: 'closed' | 'stale';
}

export class CancelOnDisconnect {
  /** This process: the rows it holds sockets for. */
  readonly instanceId = randomUUID();
  private readonly open = new Set<string>();
  private readonly pool: pg.Pool;
  private readonly orders: OrderService;
  private readonly staleMs: number;

  constructor(opts: { pool: pg.Pool; orders: OrderService; staleMs?: number }) {
    this.pool = opts.pool;
    this.orders = opts.orders;
    this.staleMs = opts.staleMs ?? 20_000;
  }

  /** Enable (or change the market of) a socket's COD session. */
  async enable(sessionId: string, userId: string, market: string | null): Promise<void> {
    this.open.add(sessionId);
    await upsertCodSession(this.pool, { id: sessionId, userId, market, instanceId: this.instanceId });
  }

  /** Turn it off while connected: nothing is cancelled. */
  async disable(sessionId: string): Promise<void> {
    this.open.delete(sessionId);
    await deleteCodSession(this.pool, sessionId);
  }

  /** The socket closed: end the session and cancel its scope (a no-op if it was never enabled or already ended). */
  async closed(sessionId: string): Promise<CodEnded | undefined> {
    this.open.delete(sessionId);
    return withTransaction(this.pool, async (c) => {
      const row = await deleteCodSession(c, sessionId);
      return row ? this.end(c, row, 'closed') : undefined;
    });
  }

  /** Refresh this replica's open sessions, then end the ones nobody refreshed within the grace period. */
  async tick(limit = 100): Promise<CodEnded[]> {
    await touchCodSessions(this.pool, [...this.open]);
    const ended: CodEnded[] = [];
    for (let i = 0; i < limit; i++) {
      const r = await withTransaction(this.pool, async (c) => {
        const row = await takeStaleCodSession(c, this.staleMs, [...this.open]);
        return row ? this.end(c, row, 'stale') : undefined;
      });
      if (!r) break;
      ended.push(r);
    }
    return ended;
  }

  /** Cancel a removed session's scope, in the transaction that removed it. */
  private async end(c: pg.PoolClient, row: CodRow, cause: CodEnded['cause']): Promise<CodEnded> {
    const cancelled = await this.orders.cancelAllIn(c, row.user_id, row.market, 'disconnect');
    return { sessionId: row.id, userId: row.user_id, market: row.market, cancelled: cancelled.length, cause };
  }
}

/** Heartbeat + stale sweep every `intervalMs`. Returns a stopper. */
export function startCodHeartbeat(
  cod: CancelOnDisconnect,
  intervalMs: number,
  log: Logger,
  onEnded?: (r: CodEnded[]) => void,
): () => Promise<void> {
  return every(
    intervalMs,
    async () => {
      const r = await cod.tick();
      for (const e of r) log.info(e, 'cancel-on-disconnect: stale session ended');
      if (r.length) onEnded?.(r);
    },
    (err) => log.error({ err }, 'cancel-on-disconnect heartbeat failed'),
  );
}
