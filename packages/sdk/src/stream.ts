/**
 * The WebSocket stream (`/api/v1/stream`, protocol in services/order/src/stream.ts):
 *   → {op:"auth",token} {op:"subscribe",channels:[...]} {op:"unsubscribe",channels} {op:"ping"}
 *   ← {type:"authenticated"|"subscribed"|"unsubscribed"|"snapshot"|"update"|"error"|"pong", ...}
 * Channels: `book:<market>`, `trades:<market>`, `orders` (own order updates and amend outcomes, told apart by
 * `data.kind`: "order" / "amend"; needs the access token). The token travels in the first message, never in the URL.
 * Cancel-on-disconnect: `{op:"cancel_on_disconnect",enabled,market?}` (after auth) makes the server cancel your open
 * orders (of that market, or all) when this socket closes for any reason; confirmed by a `cancel_on_disconnect` frame.
 */
import { EventEmitter, openSocket, type SocketLike } from '#platform';

export interface StreamOptions {
  channels?: string[];
  /** Access token for private channels (the client fills it in from its session). */
  token?: string;
  headers?: Record<string, string>;
  /**
   * Ask the server to cancel your open orders when this socket drops (`true`: every market; `{ market }`: one).
   * Needs the token; sent right after the auth message.
   */
  cancelOnDisconnect?: boolean | { market: string };
}

export interface StreamMessage {
  type: 'authenticated' | 'subscribed' | 'unsubscribed' | 'snapshot' | 'update' | 'error' | 'pong' | string;
  channel?: string;
  channels?: string[];
  data?: unknown;
  code?: string;
  message?: string;
  [k: string]: unknown;
}

/** Events: 'open', 'message' (every frame), 'update' / 'snapshot' (data frames), 'error', 'close'. */
export class ExchangeStream extends EventEmitter {
  readonly socket: SocketLike;
  /** Resolves once connected, authenticated (if a token was given) and subscribed. */
  readonly ready: Promise<void>;

  constructor(baseUrl: string, opts: StreamOptions) {
    super();
    const url = `${baseUrl.replace(/^http/, 'ws')}/api/v1/stream`;
    this.socket = openSocket(url, opts.headers ?? {});
    let opened = false;
    this.ready = new Promise<void>((resolve, reject) => {
      this.socket.addEventListener('error', (e: { message?: string; error?: unknown }) => {
        // Before the socket opened, an error is a refused handshake (ws names the HTTP status in its message).
        if (!opened) reject(e.error instanceof Error ? e.error : new Error(`stream refused: ${e.message ?? 'error'}`));
      });
      this.socket.addEventListener('open', () => {
        opened = true;
        if (opts.token) this.send({ op: 'auth', token: opts.token });
        if (opts.cancelOnDisconnect) this.setCancelOnDisconnect(opts.cancelOnDisconnect);
        if (opts.channels?.length) this.subscribe(opts.channels);
        this.emit('open');
        resolve();
      });
    });
    this.ready.catch(() => undefined);
    this.socket.addEventListener('message', (event: { data: unknown }) => {
      let msg: StreamMessage;
      try {
        msg = JSON.parse(String(event.data)) as StreamMessage;
      } catch {
        return;
      }
      this.emit('message', msg);
      if (msg.type === 'update' || msg.type === 'snapshot') this.emit(msg.type, msg);
      if (msg.type === 'error') this.emit('stream-error', msg);
    });
    this.socket.addEventListener('error', (e: { error?: unknown; message?: string }) => {
      // Node's EventEmitter throws on an unheard 'error'; only re-emit to listeners that asked for it.
      if (this.listenerCount('error') > 0) this.emit('error', e.error ?? new Error(e.message ?? 'stream error'));
    });
    this.socket.addEventListener('close', (e: { code: number; reason: string }) =>
      this.emit('close', e.code, String(e.reason ?? '')),
    );
  }

  send(msg: Record<string, unknown>): void {
    this.socket.send(JSON.stringify(msg));
  }

  subscribe(channels: string[]): void {
    this.send({ op: 'subscribe', channels });
  }

  /** Turn cancel-on-disconnect on (all markets, or one) or off for this socket. */
  setCancelOnDisconnect(on: boolean | { market: string }): void {
    this.send({
      op: 'cancel_on_disconnect',
      enabled: on !== false,
      ...(typeof on === 'object' ? { market: on.market } : {}),
    });
  }

  unsubscribe(channels: string[]): void {
    this.send({ op: 'unsubscribe', channels });
  }

  close(): void {
    this.socket.close();
  }
}
