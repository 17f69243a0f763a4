import amqp from 'amqplib';
import type { Channel, ChannelModel, ConfirmChannel } from 'amqplib';
import { errorMessage, sleep, stderrLogger, type Logger } from './logger.ts';

export interface ConnectionOptions {
  /** amqp(s)://user:pass@host:port/vhost */
  url: string;
  /** Shown in the management UI (`connection_name`), e.g. `wallet-7f9c` ; tests close connections by it. */
  name: string;
  logger?: Logger;
  /**
   * Reconnect backoff: first delay, cap (ms). Default 200 → 2_000, doubled each failure, ±20 % jitter. The cap is
   * also how long a client may stay away after the broker is back (a 10 s cap made every service lag a broker
   * restart by up to 10 s, one after the other along the order → engine → wallet path).
   */
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number };
  /**
   * AMQP heartbeat in seconds (default 5): a silently dead TCP connection is noticed within ~2 intervals. It is also
   * what hands a single-active-consumer queue to a standby when the active process freezes (SIGSTOP, VM pause): the
   * kernel keeps its socket open, so only the missed heartbeats make the broker close the connection.
   */
  heartbeatSeconds?: number;
}

/**
 * Something that lives on the connection and must be (re)built on every connect: topology declarations,
 * publisher channels, consumers. `open` runs after each successful (re)connect, in registration order.
 */
export interface ConnectionResource {
  readonly name: string;
  open(conn: ChannelModel): Promise<void>;
  /** Called when the connection is lost (channels are already dead): drop references, fail in-flight work. */
  lost?(err: Error): void;
}

export interface MessagingHealth {
  ok: boolean;
  /** Round-trip of a passive exchange check, in ms (absent when disconnected). */
  latencyMs?: number;
  connected: boolean;
  error?: string;
}

/**
 * One AMQP connection per process with automatic recovery: on any connection loss (broker restart, connection
 * closed by an operator, network failure, missed heartbeats) it reconnects with exponential backoff and re-runs
 * every registered resource (topology, publisher channels, consumers) in order.
 */
export class RabbitConnection {
  readonly name: string;
  private readonly url: string;
  private readonly logger: Logger;
  private readonly initialDelay: number;
  private readonly maxDelay: number;
  private readonly heartbeat: number;
  private readonly resources: ConnectionResource[] = [];
  private conn: ChannelModel | undefined;
  /** `conn` is set and every registered resource has been opened on it. */
  private ready = false;
  private healthChannel: Channel | undefined;
  private closing = false;
  private connecting: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private waiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private connectCount = 0;
  private lastError: string | undefined;
  private readonly listeners: Array<(event: 'connected' | 'disconnected', err?: Error) => void> = [];

  constructor(opts: ConnectionOptions) {
    this.url = opts.url;
    this.name = opts.name;
    this.logger = opts.logger ?? stderrLogger;
    this.initialDelay = opts.reconnect?.initialDelayMs ?? 200;
    this.maxDelay = opts.reconnect?.maxDelayMs ?? 2_000;
    this.heartbeat = opts.heartbeatSeconds ?? 5;
  }

  get connected(): boolean {
    return this.ready;
  }

  /** The live connection once it is ready (resources open), else undefined. */
  current(): ChannelModel | undefined {
    return this.ready ? this.conn : undefined;
  }

  /** How many times a connection has been established (1 after start, +1 per recovery). */
  get connections(): number {
    return this.connectCount;
  }

  on(listener: (event: 'connected' | 'disconnected', err?: Error) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Connect (retrying with backoff until it works or `close()` is called). Resolves once connected and every
   * registered resource is open.
   */
  async start(): Promise<void> {
    this.ensureConnecting();
    await this.waitForConnection();
  }

  /** Register a resource; opened now if connected, and after every reconnect. */
  async register(resource: ConnectionResource): Promise<void> {
    this.resources.push(resource);
    // Not ready yet: the connect loop opens it (it walks the live list).
    if (this.conn && this.ready) {
      try {
        await resource.open(this.conn);
      } catch (err) {
        this.logger.error({ err, resource: resource.name }, 'messaging: resource failed to open');
        this.resources.splice(this.resources.indexOf(resource), 1);
        throw err;
      }
    }
  }

  unregister(resource: ConnectionResource): void {
    const i = this.resources.indexOf(resource);
    if (i >= 0) this.resources.splice(i, 1);
  }

  /** Resolves when connected (and resources open); rejects after `timeoutMs` or when closed. */
  waitForConnection(timeoutMs = Infinity): Promise<void> {
    if (this.ready) return Promise.resolve();
    if (this.closing) return Promise.reject(new Error('messaging connection closed'));
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        resolve: () => {
          if (timer) clearTimeout(timer);
          resolve();
        },
        reject: (e: Error) => {
          if (timer) clearTimeout(timer);
          reject(e);
        },
      };
      const timer =
        timeoutMs === Infinity
          ? undefined
          : setTimeout(() => {
              this.waiters = this.waiters.filter((w) => w !== waiter);
              reject(new Error(`messaging: not connected after ${timeoutMs} ms (${this.lastError ?? 'connecting'})`));
            }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** A new plain channel on the current connection. */
  async channel(): Promise<Channel> {
    await this.waitForConnection();
    if (!this.conn) throw new Error('messaging: connection lost');
    return this.conn.createChannel();
  }

  /** A new confirm channel on the current connection. */
  async confirmChannel(): Promise<ConfirmChannel> {
    await this.waitForConnection();
    if (!this.conn) throw new Error('messaging: connection lost');
    return this.conn.createConfirmChannel();
  }

  /** For /ready: connected and a broker round-trip (passive exchange check) with its latency. */
  async health(timeoutMs = 2_000): Promise<MessagingHealth> {
    const conn = this.ready ? this.conn : undefined;
    if (!conn) return { ok: false, connected: false, error: this.lastError ?? 'not connected' };
    const started = performance.now();
    try {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        (async () => {
          if (!this.healthChannel) {
            const ch = await conn.createChannel();
            ch.on('error', () => {});
            ch.on('close', () => {
              if (this.healthChannel === ch) this.healthChannel = undefined;
            });
            this.healthChannel = ch;
          }
          await this.healthChannel.checkExchange('amq.direct');
        })(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`broker did not answer within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]).finally(() => clearTimeout(timer));
      return { ok: true, connected: true, latencyMs: Math.round((performance.now() - started) * 10) / 10 };
    } catch (err) {
      return { ok: false, connected: this.ready, error: errorMessage(err) };
    }
  }

  /** Close for good (no reconnect). Resources are not closed individually: the connection takes their channels. */
  async close(): Promise<void> {
    this.closing = true;
    this.abort.abort();
    const conn = this.conn;
    this.conn = undefined;
    this.ready = false;
    for (const w of this.waiters.splice(0)) w.reject(new Error('messaging connection closed'));
    if (conn) await conn.close().catch(() => {});
    await this.connecting?.catch(() => {});
  }

  private ensureConnecting(): void {
    if (this.connecting || this.conn || this.closing) return;
    this.connecting = this.connectLoop().finally(() => {
      this.connecting = undefined;
    });
  }

  private async connectLoop(): Promise<void> {
    let delay = this.initialDelay;
    for (let attempt = 1; !this.closing; attempt++) {
      let conn: ChannelModel | undefined;
      try {
        conn = await amqp.connect(withHeartbeat(this.url, this.heartbeat), {
          clientProperties: { connection_name: this.name },
          timeout: 10_000,
          keepAlive: true,
          keepAliveDelay: 10_000,
          // amqplib leaves Nagle's algorithm on: a small write (a publish) sent while an earlier one (an ack) is not
          // yet ACKed waits for the broker's delayed ACK, 40 ms on Linux, so at low load each hop took ~60 ms.
          noDelay: true,
        } as Parameters<typeof amqp.connect>[1]);
        if (this.closing) {
          await conn.close().catch(() => {});
          return;
        }
        const c = conn;
        c.on('error', (err: Error) => {
          this.lastError = errorMessage(err);
          this.logger.warn({ err, connection: this.name }, 'messaging: connection error');
        });
        c.on('close', (err?: Error) => this.onClose(c, err));
        c.on('blocked', (reason: string) => this.logger.warn({ reason }, 'messaging: connection blocked by broker'));
        this.conn = c;
        this.healthChannel = undefined;
        for (let i = 0; i < this.resources.length; i++) {
          if (this.conn !== c) throw new Error('connection lost while opening resources');
          await this.resources[i]!.open(c);
        }
        if (this.conn !== c) throw new Error('connection lost while opening resources');
        this.ready = true;
        this.connectCount++;
        this.lastError = undefined;
        if (this.connectCount > 1) {
          this.logger.info({ connection: this.name, attempt }, 'messaging: reconnected');
        }
        for (const w of this.waiters.splice(0)) w.resolve();
        for (const l of this.listeners) l('connected');
        return;
      } catch (err) {
        this.lastError = errorMessage(err);
        if (conn) {
          if (this.conn === conn) this.conn = undefined;
          await conn.close().catch(() => {});
        }
        if (this.closing) return;
        const wait = Math.round(delay * (0.8 + Math.random() * 0.4));
        this.logger.warn(
          { err, connection: this.name, attempt, retryInMs: wait },
          'messaging: connect failed, retrying',
        );
        await sleep(wait, this.abort.signal);
        delay = Math.min(delay * 2, this.maxDelay);
      }
    }
  }

  private onClose(c: ChannelModel, err?: Error): void {
    if (this.conn !== c) return; // an aborted attempt or an old connection
    const wasReady = this.ready;
    this.conn = undefined;
    this.ready = false;
    this.healthChannel = undefined;
    if (this.closing) return;
    const e = err ?? new Error('connection closed');
    this.lastError = errorMessage(e);
    this.logger.warn({ err: e, connection: this.name }, 'messaging: connection lost, reconnecting');
    for (const r of this.resources) {
      try {
        r.lost?.(e);
      } catch {
        // a resource failing to clean up must not stop recovery
      }
    }
    if (wasReady) for (const l of this.listeners) l('disconnected', e);
    // While the connect loop is still opening resources it notices the loss itself and retries.
    this.ensureConnecting();
  }

  /**
   * A resource whose channel died on its own (channel error) while the connection lives asks for a reopen;
   * the simplest correct recovery is to recycle the whole connection (every resource re-opens in order).
   */
  recycle(reason: string): void {
    const conn = this.conn;
    if (!conn || this.closing) return;
    this.logger.warn({ reason, connection: this.name }, 'messaging: recycling connection');
    conn.close().catch(() => {});
  }
}

/**
 * amqplib reads the heartbeat only from the URL's query (a `heartbeat` socket option is ignored, leaving the broker's
 * 60 s); an explicit `?heartbeat=` in the configured URL wins.
 */
export function withHeartbeat(url: string, seconds: number): string {
  const u = new URL(url);
  if (!u.searchParams.has('heartbeat')) u.searchParams.set('heartbeat', String(seconds));
  return u.toString();
}
