import { hostname } from 'node:os';
import type { Envelope } from '@exchange/contracts';
import type pg from 'pg';
import type { PgSchema } from 'drizzle-orm/pg-core';
import { RabbitConnection, type MessagingHealth } from './connection.ts';
import { Consumer, type ConsumeOptions } from './consumer.ts';
import { DeadLetterRecorder } from './dead-letter-recorder.ts';
import { stderrLogger, type Logger } from './logger.ts';
import { messagingMetrics, type GaugeSource, type MessagingMetrics, type MetricsRegistry } from './metrics.ts';
import { enqueue, OutboxRelay, type OutboxRelayOptions, type Queryable } from './outbox.ts';
import { ConfirmPublisher } from './publisher.ts';
import { deadLetterQueueName, retryQueueName, Topology, DEFAULT_RETRY, type QueueSpec } from './topology.ts';

export interface MessagingOptions {
  /** AMQP URL including the vhost, e.g. amqp://guest:guest@127.0.0.1:5672/exchange */
  url: string;
  /** Service name: `producer` of its messages, metrics label, connection name prefix. */
  service: string;
  /** The service's Postgres pool (outbox, inbox, dead letters live in its schema). */
  pool: pg.Pool;
  /** The service's Postgres schema (a drizzle PgSchema or its name). */
  schema: string | PgSchema;
  /** Connection name in the management UI; default `<service>@<hostname>:<pid>`. */
  connectionName?: string;
  logger?: Logger;
  /** prom-client registry for jobs_dead_letter_total, jobs_queue_length, outbox_pending, … */
  registry?: MetricsRegistry;
  /** Outbox relay options; `false` to not run a relay in this process. Default: on. */
  relay?:
    false | Partial<Omit<OutboxRelayOptions, 'pool' | 'schema' | 'publisher' | 'service' | 'logger' | 'registry'>>;
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number };
  heartbeatSeconds?: number;
}

export interface MessagingEnqueueOptions {
  exchange: string;
  routingKey: string;
  message: Envelope;
  headers?: Record<string, string>;
  orderingKey?: string;
}

/**
 * Everything a service needs from the bus, over two connections (consume, publish): topology, the outbox relay, inbox consumers,
 * health and metrics. Typical use:
 *
 *   const messaging = createMessaging({ url, service: 'wallet', pool, schema: walletSchema, registry, logger });
 *   await messaging.declareQueue({ name: 'wallet.settlements', bindings: [...], retry: {...} });
 *   await messaging.start();                       // connects (retrying), starts the relay
 *   await messaging.consume({ queue: 'wallet.settlements', handler });
 *   // in a transaction: await messaging.enqueue(client, { exchange: EVENTS_EXCHANGE, routingKey, message });
 */
export class Messaging {
  readonly service: string;
  /** Consumers and topology. Never publishes, so a broker alarm never blocks it and queues keep draining. */
  readonly connection: RabbitConnection;
  /**
   * The outbox relay and the consumers' retry/dead-letter copies. RabbitMQ blocks a publishing connection during a
   * memory or disk alarm; on a shared connection that would also stop acks, and queues could not drain.
   */
  readonly publishConnection: RabbitConnection;
  readonly topology: Topology;
  /** Confirm channel for consumers' retry/DLQ copies and direct publishes. */
  readonly publisher: ConfirmPublisher;
  private readonly relayPublisher: ConfirmPublisher;
  readonly relay: OutboxRelay | undefined;
  readonly metrics: MessagingMetrics;
  private readonly opts: MessagingOptions;
  private readonly logger: Logger;
  private readonly consumers: Consumer[] = [];
  private readonly source: GaugeSource;

  constructor(opts: MessagingOptions) {
    this.opts = opts;
    this.service = opts.service;
    this.logger = opts.logger ?? stderrLogger;
    this.metrics = messagingMetrics(opts.registry);
    this.topology = new Topology((msg) => this.logger.warn({ service: opts.service }, `messaging: ${msg}`));
    const name = opts.connectionName ?? `${opts.service}@${hostname()}:${process.pid}`;
    const connection = (suffix: string) =>
      new RabbitConnection({
        url: opts.url,
        name: `${name}${suffix}`,
        logger: this.logger,
        ...(opts.reconnect ? { reconnect: opts.reconnect } : {}),
        ...(opts.heartbeatSeconds !== undefined ? { heartbeatSeconds: opts.heartbeatSeconds } : {}),
      });
    this.connection = connection('');
    this.publishConnection = connection(':publish');
    // Both declare the topology: a publish must never race ahead of the exchanges it names.
    void this.connection.register(this.topology);
    void this.publishConnection.register(this.topology);
    this.publisher = new ConfirmPublisher(this.publishConnection, this.logger);
    this.relayPublisher = new ConfirmPublisher(this.publishConnection, this.logger);
    this.relay =
      opts.relay === false
        ? undefined
        : new OutboxRelay({
            ...opts.relay,
            pool: opts.pool,
            schema: opts.schema,
            // Its own confirm channel: a row naming a missing exchange closes the channel it is published on, which
            // must not fail the consumers' retry/dead-letter publishes.
            publisher: this.relayPublisher,
            service: opts.service,
            logger: this.logger,
            ...(opts.registry ? { registry: opts.registry } : {}),
          });
    this.source = { queueLengths: () => this.queueLengths() };
    this.metrics.sources.add(this.source);
  }

  /**
   * Connect (retrying with backoff until the broker answers) and start the outbox relay. By default resolves once
   * connected; with `waitForBroker: false` it returns at once and connects in the background (the service can
   * listen and report not-ready meanwhile; consumers start when the connection is up).
   */
  async start(opts: { waitForBroker?: boolean } = {}): Promise<void> {
    this.relay?.start();
    const connecting = Promise.all([this.connection.start(), this.publishConnection.start()]);
    if (opts.waitForBroker === false) {
      connecting.catch(() => {}); // only rejects when closed before connecting
      return;
    }
    await connecting;
  }

  /** Declare a queue (quorum) with its retry queues and DLQ; re-declared after every reconnect. */
  async declareQueue(spec: QueueSpec): Promise<void> {
    this.topology.add(spec);
    const conn = this.connection.current();
    if (conn) await this.topology.declare(conn, spec);
  }

  /** Start an inbox consumer on a declared queue; it resumes by itself after reconnects. */
  async consume(opts: ConsumeOptions): Promise<Consumer> {
    const spec = this.topology.spec(opts.queue);
    const consumer = new Consumer(
      opts,
      {
        connection: this.connection,
        publisher: this.publisher,
        pool: this.opts.pool,
        schema: this.opts.schema,
        metrics: this.metrics,
        logger: this.logger,
      },
      spec
        ? {
            ...(spec.retry ? { retry: spec.retry } : {}),
            ...(spec.deliveryLimit ? { deliveryLimit: spec.deliveryLimit } : {}),
          }
        : undefined,
    );
    this.consumers.push(consumer);
    await this.connection.register(consumer);
    // The owner of a declared queue also watches its DLQ, so broker-side dead letters are listed and counted too.
    if (spec) await this.recordDeadLetters(opts.queue);
    return consumer;
  }

  /** Move whatever lands in `<queue>.dlq` into the dead-letter table (see DeadLetterRecorder); `consume` does it. */
  async recordDeadLetters(queue: string): Promise<void> {
    await this.connection.register(
      new DeadLetterRecorder(queue, {
        pool: this.opts.pool,
        schema: this.opts.schema,
        metrics: this.metrics,
        logger: this.logger,
      }),
    );
  }

  /** Write a message to this service's outbox inside the caller's transaction (see `enqueue`). */
  enqueue(client: Queryable, opts: MessagingEnqueueOptions): Promise<{ sequence: string }> {
    return enqueue(client, { ...opts, schema: this.opts.schema });
  }

  /**
   * For /ready: the consumer connection's round-trip latency, and the publish connection up. The latter gets no
   * round-trip: during a broker alarm it is blocked by design (the outbox keeps what it cannot send), which must not
   * make every replica unready.
   */
  async health(): Promise<MessagingHealth> {
    const consume = await this.connection.health();
    if (consume.ok && !this.publishConnection.connected) {
      return { ok: false, connected: false, error: 'publish connection: not connected' };
    }
    return consume;
  }

  /** Ready-message counts of every declared queue (main, retries, DLQ), for jobs_queue_length. */
  async queueLengths(): Promise<Array<{ queue: string; messages: number }>> {
    const conn = this.connection.current();
    if (!conn) return [];
    const out: Array<{ queue: string; messages: number }> = [];
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    try {
      for (const spec of this.topology.specs) {
        const names = [spec.name, deadLetterQueueName(spec.name)];
        const attempts = (spec.retry ?? DEFAULT_RETRY).attempts;
        for (let i = 1; i <= attempts; i++) names.push(retryQueueName(spec.name, i));
        for (const q of names) {
          const r = await ch.checkQueue(q);
          out.push({ queue: q, messages: r.messageCount });
        }
      }
    } finally {
      await ch.close().catch(() => {});
    }
    return out;
  }

  /** Stop consumers (waiting for running handlers), stop the relay, close the connection. */
  async close(): Promise<void> {
    this.metrics.sources.delete(this.source);
    // Consumers finish their running handler and the relay its batch, unless the broker is unreachable: then the
    // connection is closed after a grace period, which fails their pending broker calls and lets them exit.
    const grace = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
    const consumersStopped = Promise.all(this.consumers.map((c) => c.stop()));
    await Promise.race([consumersStopped, grace(10_000)]);
    const relayStopped = this.relay?.stop() ?? Promise.resolve();
    await Promise.race([relayStopped, grace(5_000)]);
    await this.publisher.close();
    await this.relayPublisher.close();
    await this.connection.close();
    await this.publishConnection.close();
    await Promise.race([Promise.all([consumersStopped, relayStopped]), grace(5_000)]);
  }
}

export function createMessaging(opts: MessagingOptions): Messaging {
  return new Messaging(opts);
}
