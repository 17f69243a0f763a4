/**
 * The WebSocket stream (`/api/v1/stream`, protocol in services/order/src/stream.ts):
 *   → {op:"auth",token} {op:"subscribe",channels:[...]} {op:"unsubscribe",channels} {op:"ping"}
 *   ← {type:"authenticated"|"subscribed"|"unsubscribed"|"snapshot"|"update"|"error"|"pong", ...}
 * Channels: `book:<market>`, `trades:<market>`, `orders` (own order updates; needs the access token).
 * The token travels in the first message, never in the URL.
 */
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';

export interface StreamOptions {
  channels?: string[];
  /** Access token for private channels (the client fills it in from its session). */
  token?: string;
  headers?: Record<string, string>;
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
  readonly socket: WebSocket;
  /** Resolves once connected, authenticated (if a token was given) and subscribed. */
  readonly ready: Promise<void>;

  constructor(baseUrl: string, opts: StreamOptions) {
    super();
    const url = `${baseUrl.replace(/^http/, 'ws')}/api/v1/stream`;
    this.socket = new WebSocket(url, { headers: opts.headers ?? {} });
    this.ready = new Promise<void>((resolve, reject) => {
      this.socket.once('error', reject);
      this.socket.once('unexpected-response', (_req, res) =>
        reject(new Error(`stream refused: HTTP ${res.statusCode}`)),
      );
      this.socket.once('open', () => {
        if (opts.token) this.send({ op: 'auth', token: opts.token });
        if (opts.channels?.length) this.subscribe(opts.channels);
        this.emit('open');
        resolve();
      });
    });
    this.ready.catch(() => undefined);
    this.socket.on('message', (raw: WebSocket.RawData) => {
      let msg: StreamMessage;
      try {
        msg = JSON.parse(raw.toString()) as StreamMessage;
      } catch {
        return;
      }
      this.emit('message', msg);
      if (msg.type === 'update' || msg.type === 'snapshot') this.emit(msg.type, msg);
      if (msg.type === 'error') this.emit('stream-error', msg);
    });
    this.socket.on('error', (err) => this.emit('error', err));
    this.socket.on('close', (code, reason) => this.emit('close', code, reason.toString()));
  }

  send(msg: Record<string, unknown>): void {
    this.socket.send(JSON.stringify(msg));
  }

  subscribe(channels: string[]): void {
    this.send({ op: 'subscribe', channels });
  }

  unsubscribe(channels: string[]): void {
    this.send({ op: 'unsubscribe', channels });
  }

  close(): void {
    this.socket.close();
  }
}
