import { context, type Context } from '@opentelemetry/api';
import type { ConfirmChannel, Message, Options } from 'amqplib';
import type { RabbitConnection } from './connection.ts';
import { stderrLogger, type Logger } from './logger.ts';

export interface PublishResult {
  /** The broker returned it as unroutable (`mandatory`): no queue got it. */
  returned: boolean;
  replyText?: string;
}

export interface PublishOptions extends Options.Publish {
  messageId: string;
}

interface Pending {
  returned: boolean;
  replyText?: string;
}

/**
 * A confirm channel that publishes with `mandatory` and resolves once the broker has confirmed the message (or
 * rejects when it nacks or the channel/connection dies before confirming). Re-created on demand after loss.
 */
export class ConfirmPublisher {
  private readonly connection: RabbitConnection;
  private readonly logger: Logger;
  private channel: ConfirmChannel | undefined;
  private opening: Promise<ConfirmChannel> | undefined;
  /** messageId → in-flight entry, to attach `basic.return`s (which arrive before the confirm). */
  private readonly inflight = new Map<string, Pending[]>();
  /** Why a channel was closed by the broker (e.g. 404 NOT_FOUND for a missing exchange), to explain its nacks. */
  private readonly channelErrors = new WeakMap<ConfirmChannel, Error>();

  constructor(connection: RabbitConnection, logger: Logger = stderrLogger) {
    this.connection = connection;
    this.logger = logger;
  }

  private async getChannel(): Promise<ConfirmChannel> {
    if (this.channel) return this.channel;
    this.opening ??= (async () => {
      try {
        // Bounded wait: while the broker is away a publish fails after 30 s instead of hanging (callers retry).
        await this.connection.waitForConnection(30_000);
        const ch = await this.connection.confirmChannel();
        ch.on('error', (err: Error) => {
          this.channelErrors.set(ch, err);
          this.logger.warn({ err }, 'messaging: publisher channel error');
        });
        ch.on('close', () => {
          if (this.channel === ch) this.channel = undefined;
        });
        ch.on('return', (msg: Message) => {
          const id = msg.properties.messageId as string | undefined;
          const entry = id ? this.inflight.get(id)?.[0] : undefined;
          if (entry) {
            entry.returned = true;
            entry.replyText = (msg.fields as { replyText?: string }).replyText;
          }
        });
        this.channel = ch;
        return ch;
      } finally {
        this.opening = undefined;
      }
    })();
    return this.opening;
  }

  /** Publish one message and wait for the broker's confirm. `mandatory` is always set. */
  async publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: PublishOptions,
  ): Promise<PublishResult> {
    const ch = await this.getChannel();
    return this.publishOn(ch, exchange, routingKey, content, options, undefined);
  }

  /**
   * Publish several messages pipelined on one channel (in order) and wait for all confirms. Each result is either a
   * PublishResult or the error for that message.
   */
  async publishMany(
    items: Array<{
      exchange: string;
      routingKey: string;
      content: Buffer;
      options: PublishOptions;
      /**
       * Trace context to publish in (the one the message was enqueued in), so AMQP auto-instrumentation parents its
       * publish span there and re-injects a traceparent of the same trace instead of starting a new one.
       */
      parent?: Context;
    }>,
  ): Promise<Array<PublishResult | Error>> {
    const ch = await this.getChannel();
    const promises = items.map((i) => this.publishOn(ch, i.exchange, i.routingKey, i.content, i.options, i.parent));
    const settled = await Promise.allSettled(promises);
    return settled.map((s) =>
      s.status === 'fulfilled' ? s.value : s.reason instanceof Error ? s.reason : new Error(String(s.reason)),
    );
  }

  private publishOn(
    ch: ConfirmChannel,
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: PublishOptions,
    parent: Context | undefined,
  ): Promise<PublishResult> {
    const entry: Pending = { returned: false };
    const id = options.messageId;
    const list = this.inflight.get(id);
    if (list) list.push(entry);
    else this.inflight.set(id, [entry]);
    const done = () => {
      const l = this.inflight.get(id);
      if (!l) return;
      const i = l.indexOf(entry);
      if (i >= 0) l.splice(i, 1);
      if (l.length === 0) this.inflight.delete(id);
    };
    return new Promise<PublishResult>((resolve, reject) => {
      try {
        const publish = () =>
          ch.publish(exchange, routingKey, content, { ...options, mandatory: true }, (err: unknown) => {
            done();
            if (err) {
              // Let the channel's `error` event (the broker's reason) land first.
              setImmediate(() => {
                const cause = this.channelErrors.get(ch);
                const base = err instanceof Error ? err : new Error(`broker nacked the message: ${String(err)}`);
                reject(cause ? new Error(`${base.message}: ${cause.message}`, { cause: base }) : base);
              });
            } else
              resolve(
                entry.returned ? { returned: true, replyText: entry.replyText ?? 'NO_ROUTE' } : { returned: false },
              );
          });
        if (parent) context.with(parent, publish);
        else publish();
      } catch (err) {
        done();
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  async close(): Promise<void> {
    const ch = this.channel;
    this.channel = undefined;
    if (ch) await ch.close().catch(() => {});
  }
}
