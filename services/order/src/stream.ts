/**
 * WebSocket stream `GET /api/v1/stream`.
 *
 * Client → server (JSON text frames):
 *   { "op": "auth", "token": "<access token>" }             (or Sec-WebSocket-Protocol: bearer, <token>)
 *   { "op": "subscribe", "channels": ["book:BTC-USD", "trades:BTC-USD", "orders"] }
 *   { "op": "unsubscribe", "channels": [...] }      { "op": "ping" }
 *   { "op": "cancel_on_disconnect", "enabled": true, "market"?: "BTC-USD" }  (after auth; see session/cancel-on-disconnect.ts)
 * Server → client:
 *   { "type": "authenticated", "userId" } | { "type": "subscribed", "channels" } | { "type": "unsubscribed", ... }
 *   { "type": "snapshot", "channel": "book:BTC-USD", "data": Book }           (right after subscribing to a book)
 *   { "type": "update", "channel": "...", "data": ... }                      (book snapshot, trade, own order update)
 *     on `orders`, `data.kind` tells an order update ("order") from an amend's outcome ("amend")
 *   { "type": "cancel_on_disconnect", "enabled", "market" }                  (the session's COD setting took effect)
 *   { "type": "error", "code", "message" } | { "type": "pong" }
 * Tokens are never accepted in the URL (a query token is refused and the socket closed: URLs end up in logs).
 *
 * Fan-out: every instance consumes the engine events from its own exclusive, auto-delete queue (no inbox: nothing
 * is persisted), so clients connected to any replica see every update, while the durable `order.events` queue
 * (single active consumer) maintains the read models.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type pg from 'pg';
import type { WebSocket } from '@fastify/websocket';
import type { Envelope } from '@exchange/contracts';
import type { MarketCatalog } from '@exchange/contracts/markets';
import { formatFixed } from '@exchange/contracts/markets';
import type { ConnectionResource } from '@exchange/messaging';
import { EVENTS_EXCHANGE, declareExchanges, envelopesOf } from '@exchange/messaging';
import { randomUUID } from 'node:crypto';
import { BookSnapshotV1, OrderAmendedV1, OrderUpdatedV1, TradeExecutedV1 } from '@exchange/contracts/trading';
import { EVENT_BINDINGS } from './messaging/queues.ts';
import { getBook } from './market-data/service.ts';
import { averagePrice } from './orders/model.ts';
import type { Logger } from '@exchange/messaging';
import type { CancelOnDisconnect, CodEnded } from './session/cancel-on-disconnect.ts';

const MAX_SUBSCRIPTIONS = 50;
type ChannelModel = Parameters<ConnectionResource['open']>[0];

interface Client {
  socket: WebSocket;
  userId: string | undefined;
  /** The access token the user authenticated with, re-checked every `recheckMs` (logout, lock, revocation). */
  token?: string;
  /** Called when a re-check fails: the socket loses the user's private channels. */
  revoke?: (err: { code?: string; message?: string }) => void;
  channels: Set<string>;
  alive: boolean;
}

/** Who is connected and to what. */
export class StreamHub {
  private readonly clients = new Set<Client>();

  add(c: Client): void {
    this.clients.add(c);
  }
  remove(c: Client): void {
    this.clients.delete(c);
  }
  get size(): number {
    return this.clients.size;
  }
  /** Clients signed in as a user (their private channels depend on the token staying valid). */
  authenticated(): Client[] {
    return [...this.clients].filter((c) => c.userId !== undefined && c.token !== undefined);
  }

  /** Send to every client subscribed to `channel` (and, for `orders`, only to the order's owner). */
  publish(channel: string, data: unknown, ownerId?: string): number {
    let n = 0;
    let frame: string | undefined; // serialised for the first subscriber only: most events have none
    for (const c of this.clients) {
      if (!c.channels.has(channel)) continue;
      if (ownerId !== undefined && c.userId !== ownerId) continue;
      if (c.socket.readyState !== 1) continue;
      frame ??= JSON.stringify({ type: 'update', channel, data });
      c.socket.send(frame);
      n++;
    }
    return n;
  }

  /** Terminate sockets that did not answer the previous ping, ping the rest (dead TCP peers are dropped). */
  heartbeat(): void {
    for (const c of this.clients) {
      if (!c.alive) {
        c.socket.terminate();
        this.clients.delete(c);
        continue;
      }
      c.alive = false;
      c.socket.ping();
    }
  }

  closeAll(): void {
    for (const c of this.clients) c.socket.close(1001, 'server shutting down');
    this.clients.clear();
  }

  /** Turn an engine event into stream updates. */
  dispatch(catalog: MarketCatalog, env: Envelope): void {
    if (TradeExecutedV1.is(env)) {
      const p = env.payload;
      this.publish(`trades:${p.market}`, {
        tradeId: p.tradeId,
        market: p.market,
        seq: p.seq,
        price: p.price,
        quantity: p.quantity,
        side: p.takerSide,
        at: p.at,
      });
    } else if (BookSnapshotV1.is(env)) {
      const p = env.payload;
      this.publish(`book:${p.market}`, {
        market: p.market,
        seq: p.seq,
        phase: p.auction ? 'auction' : 'continuous',
        auction: p.auction ?? null,
        bids: p.bids,
        asks: p.asks,
        at: p.at,
      });
    } else if (OrderUpdatedV1.is(env)) {
      const p = env.payload;
      const m = catalog.market(p.market);
      if (!m) return;
      const filled = BigInt(p.filledLots);
      this.publish(
        'orders',
        {
          kind: 'order',
          id: p.orderId,
          market: p.market,
          status: p.status,
          filledQuantity: m.lotsToQuantity(filled),
          remainingQuantity: m.lotsToQuantity(BigInt(p.remainingLots)),
          averagePrice: averagePrice(m, BigInt(p.filledNotional), filled),
          filledNotional: formatFixed(BigInt(p.filledNotional), m.quote.precision),
          reason: p.reason ?? null,
          seq: p.seq,
          at: p.at,
        },
        p.userId,
      );
    } else if (OrderAmendedV1.is(env)) {
      // the engine's answer to a PATCH: applied (new price / quantity, priority kept or not) or rejected with a reason
      const p = env.payload;
      const m = catalog.market(p.market);
      if (!m) return;
      const total = p.quantityLots !== undefined ? BigInt(p.quantityLots) : undefined;
      const remaining = p.remainingLots !== undefined ? BigInt(p.remainingLots) : undefined;
      this.publish(
        'orders',
        {
          kind: 'amend',
          id: p.orderId,
          amendId: p.amendId,
          market: p.market,
          ok: p.ok,
          reason: p.reason ?? null,
          price: p.priceTicks !== undefined ? m.ticksToPrice(BigInt(p.priceTicks)) : null,
          quantity: total !== undefined ? m.lotsToQuantity(total) : null,
          remainingQuantity: remaining !== undefined ? m.lotsToQuantity(remaining) : null,
          priorityKept: p.priorityKept,
          seq: p.seq,
          at: p.at,
        },
        p.userId,
      );
    }
  }
}

/** Per-instance exclusive queue feeding the hub; re-opened by the messaging connection after every reconnect. */
export class StreamFeed implements ConnectionResource {
  readonly name = 'order-stream-feed';
  private readonly hub: StreamHub;
  private readonly catalog: MarketCatalog;
  private readonly log: Logger;
  constructor(hub: StreamHub, catalog: MarketCatalog, log: Logger) {
    this.hub = hub;
    this.catalog = catalog;
    this.log = log;
  }
  async open(conn: ChannelModel): Promise<void> {
    const ch = await conn.createChannel();
    ch.on('error', (err: Error) => this.log.warn({ err }, 'stream feed channel error'));
    await declareExchanges(ch);
    const q = await ch.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
    for (const key of EVENT_BINDINGS) await ch.bindQueue(q.queue, EVENTS_EXCHANGE, key);
    await ch.consume(
      q.queue,
      (msg) => {
        // Every engine event reaches every instance; with no socket connected there is no one to tell, and unpacking
        // a batch's events for nobody cost about a twentieth of the order service's CPU under load.
        if (!msg || this.hub.size === 0) return;
        try {
          for (const e of envelopesOf(msg)) this.hub.dispatch(this.catalog, e);
        } catch (err) {
          this.log.warn({ err }, 'stream feed: unreadable message skipped');
        }
      },
      { noAck: true },
    );
  }
}

export interface StreamOptions {
  hub: StreamHub;
  catalog: MarketCatalog;
  pool: pg.Pool;
  /** Verify an access token; resolves the user id or rejects with an AppError-like { code, message }. */
  authenticate(token: string): Promise<string>;
  /** Ping interval; a socket that misses one pong is terminated (default 30 s). */
  heartbeatMs?: number;
  /**
   * How often every authenticated socket's token is verified again (default 5 s, the revocation list's refresh
   * interval): a logout, an account lock or a revoked session closes its private channels within about twice this.
   */
  recheckMs?: number;
  /** Cancel-on-disconnect sessions (absent: the op is refused with COD_UNAVAILABLE). */
  cod?: CancelOnDisconnect;
  /** Called after a COD session ended by its socket closing (metrics, logs). */
  onCodEnded?: (e: CodEnded) => void;
  log?: Pick<Logger, 'error' | 'info'>;
}

const TOKEN_PARAMS = ['token', 'access_token', 'accessToken', 'jwt', 'auth'];

export function registerStream(app: FastifyInstance<any, any, any, any, any>, opts: StreamOptions): void {
  const { hub, catalog } = opts;
  const heartbeat = setInterval(() => hub.heartbeat(), opts.heartbeatMs ?? 30_000);
  heartbeat.unref();
  const recheck = setInterval(() => {
    for (const c of hub.authenticated()) {
      const token = c.token!;
      opts.authenticate(token).then(
        (userId) => {
          if (c.token === token && userId !== c.userId)
            c.revoke?.({ code: 'UNAUTHENTICATED', message: 'user changed' });
        },
        (err: { code?: string; message?: string }) => {
          if (c.token === token) c.revoke?.(err);
        },
      );
    }
  }, opts.recheckMs ?? 5_000);
  recheck.unref();
  app.addHook('onClose', async () => {
    clearInterval(heartbeat);
    clearInterval(recheck);
  });
  app.get(
    '/api/v1/stream',
    { websocket: true, schema: { tags: ['market-data'], summary: 'WebSocket stream (book, trades, own orders)' } },
    (socket: WebSocket, req: FastifyRequest) => {
      const client: Client = { socket, userId: undefined, channels: new Set(), alive: true };
      socket.on('pong', () => {
        client.alive = true;
      });
      const send = (o: unknown) => {
        if (socket.readyState === 1) socket.send(JSON.stringify(o));
      };
      const error = (code: string, message: string, extra: Record<string, unknown> = {}) =>
        send({ type: 'error', code, message, ...extra });

      const url = new URL(req.url, 'http://x');
      if (TOKEN_PARAMS.some((p) => url.searchParams.has(p))) {
        error('TOKEN_IN_URL', 'send the access token in the first message or Sec-WebSocket-Protocol, never in the URL');
        socket.close(1008, 'token in URL');
        return;
      }
      hub.add(client);
      socket.on('close', () => hub.remove(client));
      socket.on('error', () => hub.remove(client));
      let authing: Promise<void> = Promise.resolve();
      let expiry: NodeJS.Timeout | undefined;
      socket.on('close', () => clearTimeout(expiry));
      const authenticate = (token: string) => {
        authing = opts.authenticate(token).then(
          (userId) => {
            client.userId = userId;
            client.token = token;
            client.revoke = (err) => {
              client.userId = undefined;
              client.token = undefined;
              client.channels.delete('orders');
              clearTimeout(expiry);
              error(err.code ?? 'SESSION_REVOKED', err.message ?? 'the session was revoked');
            };
            clearTimeout(expiry);
            // The token was verified; when it expires the socket loses the user's channel until it re-authenticates.
            const exp = expiryOf(token);
            if (exp !== undefined) {
              expiry = setTimeout(
                () => {
                  client.userId = undefined;
                  client.channels.delete('orders');
                  error('TOKEN_EXPIRED', 'the access token expired; send {"op":"auth"} with a fresh one');
                },
                Math.max(0, exp * 1000 - Date.now()),
              );
              expiry.unref();
            }
            send({
              type: 'authenticated',
              userId,
              ...(exp !== undefined ? { expiresAt: new Date(exp * 1000).toISOString() } : {}),
            });
          },
          (err: { code?: string; message?: string }) => {
            client.userId = undefined;
            client.token = undefined;
            client.channels.delete('orders');
            error(err.code ?? 'UNAUTHENTICATED', err.message ?? 'invalid token');
          },
        );
        return authing;
      };

      const protocols = String(req.headers['sec-websocket-protocol'] ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      if (protocols[0] === 'bearer' && protocols[1]) void authenticate(protocols[1]);

      let queue: Promise<void> = Promise.resolve();
      socket.on('message', (raw: Buffer, isBinary: boolean) => {
        // Handle messages strictly in order (an auth must complete before the subscribe that follows it).
        queue = queue.then(() => onMessage(raw, isBinary)).catch(() => {});
      });

      // cancel-on-disconnect: one id per socket; the session row is keyed by it
      const sessionId = randomUUID();
      let codEnabled = false;
      socket.on('close', () => {
        // after the messages already received (an enable in flight must land before its close is handled)
        void queue.then(async () => {
          if (!codEnabled || !opts.cod) return;
          try {
            const ended = await opts.cod.closed(sessionId);
            if (ended) opts.onCodEnded?.(ended);
          } catch (err) {
            // the row stays; the stale sweep (any replica) cancels it after the grace period
            opts.log?.error({ err, sessionId }, 'cancel-on-disconnect: cancel on close failed; left to the sweep');
          }
        });
      });

      async function onMessage(raw: Buffer, isBinary: boolean): Promise<void> {
        await authing;
        let msg: { op?: unknown; token?: unknown; channels?: unknown; enabled?: unknown; market?: unknown };
        try {
          if (isBinary) throw new Error('binary');
          msg = JSON.parse(raw.toString('utf8')) as typeof msg;
          if (!msg || typeof msg !== 'object') throw new Error('not an object');
        } catch {
          return error('BAD_MESSAGE', 'messages are JSON objects: {"op":"subscribe","channels":["trades:BTC-USD"]}');
        }
        switch (msg.op) {
          case 'ping':
            return send({ type: 'pong' });
          case 'auth':
            if (typeof msg.token !== 'string' || msg.token.length === 0 || msg.token.length > 8192) {
              return error('BAD_MESSAGE', 'auth needs a "token" string');
            }
            return authenticate(msg.token);
          case 'subscribe':
          case 'unsubscribe': {
            const channels = msg.channels;
            if (!Array.isArray(channels) || channels.length === 0 || channels.length > MAX_SUBSCRIPTIONS) {
              return error('BAD_MESSAGE', `"channels" must be a non-empty array (at most ${MAX_SUBSCRIPTIONS})`);
            }
            if (msg.op === 'unsubscribe') {
              for (const ch of channels) if (typeof ch === 'string') client.channels.delete(ch);
              return send({ type: 'unsubscribed', channels });
            }
            const ok: string[] = [];
            for (const ch of channels) {
              if (typeof ch !== 'string') {
                error('INVALID_CHANNEL', 'channel names are strings');
                continue;
              }
              if (ch === 'orders') {
                if (!client.userId) {
                  error('UNAUTHENTICATED', 'the orders channel needs an access token (op "auth")', { channel: ch });
                  continue;
                }
              } else {
                const m = /^(book|trades):(.+)$/.exec(ch);
                if (!m || !catalog.market(m[2]!)) {
                  error('INVALID_CHANNEL', `unknown channel "${ch.slice(0, 60)}"`, { channel: ch.slice(0, 60) });
                  continue;
                }
              }
              if (client.channels.size >= MAX_SUBSCRIPTIONS && !client.channels.has(ch)) {
                error('TOO_MANY_SUBSCRIPTIONS', `at most ${MAX_SUBSCRIPTIONS} channels`);
                continue;
              }
              client.channels.add(ch);
              ok.push(ch);
            }
            if (ok.length) send({ type: 'subscribed', channels: ok });
            for (const ch of ok) {
              if (ch.startsWith('book:')) {
                const market = catalog.market(ch.slice(5))!;
                send({ type: 'snapshot', channel: ch, data: await getBook(opts.pool, market, 50) });
              }
            }
            return;
          }
          case 'cancel_on_disconnect': {
            if (!client.userId)
              return error('UNAUTHENTICATED', 'cancel_on_disconnect needs an access token (op "auth")');
            if (!opts.cod) return error('COD_UNAVAILABLE', 'cancel-on-disconnect is not available');
            if (typeof msg.enabled !== 'boolean') return error('BAD_MESSAGE', 'cancel_on_disconnect needs "enabled"');
            if (msg.market !== undefined && (typeof msg.market !== 'string' || !catalog.market(msg.market))) {
              return error('INVALID_MARKET', 'unknown "market"');
            }
            const market = typeof msg.market === 'string' ? msg.market : null;
            try {
              if (msg.enabled) await opts.cod.enable(sessionId, client.userId, market);
              else await opts.cod.disable(sessionId);
            } catch (err) {
              opts.log?.error({ err, sessionId }, 'cancel-on-disconnect: could not record the session');
              return error('COD_UNAVAILABLE', 'cancel-on-disconnect could not be set; retry');
            }
            codEnabled = msg.enabled;
            return send({ type: 'cancel_on_disconnect', enabled: msg.enabled, market: msg.enabled ? market : null });
          }
          default:
            return error('BAD_MESSAGE', 'unknown op (auth, subscribe, unsubscribe, ping, cancel_on_disconnect)');
        }
      }
    },
  );
}

/** `exp` of an already verified JWT (seconds), read without verifying again. */
function expiryOf(token: string): number | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
      exp?: unknown;
    };
    return typeof payload.exp === 'number' ? payload.exp : undefined;
  } catch {
    return undefined;
  }
}
