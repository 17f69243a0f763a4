import type { Channel, ChannelModel } from 'amqplib';
import type { ConnectionResource } from './connection.ts';

/** Durable topic exchange for domain events (`order.placed`, `wallet.hold.captured`, …). */
export const EVENTS_EXCHANGE = 'exchange.events';
/** Durable direct exchange for commands (routing key = target queue, e.g. `orders.BTC-USD`). */
export const COMMANDS_EXCHANGE = 'exchange.commands';
/**
 * Events nobody subscribes to yet (e.g. `wallet.trade-settled` before any consumer binds it) are not an error: the
 * events exchange hands them to this alternate exchange instead of returning them to the publisher, so `mandatory`
 * keeps guarding commands without holding up the outbox behind a fact no one listens to. They are kept for a day in
 * `events.unrouted` for inspection — nothing is silently dropped.
 */
export const EVENTS_UNROUTED_EXCHANGE = 'exchange.events.unrouted';
export const EVENTS_UNROUTED_QUEUE = 'events.unrouted';
/** The AMQP default exchange: routing key = queue name (used for retries and dead-letter replays). */
export const DEFAULT_EXCHANGE = '';

export interface Binding {
  exchange: string;
  /** Topic pattern for the events exchange (`order.*`), exact key for the commands exchange. */
  routingKey: string;
}

export interface RetryPolicy {
  /** How many times a failed message is retried after its first failure (0 = dead-letter on first failure). */
  attempts: number;
  /** Delay before retry n is `backoffMs[n-1]` (the last value repeats), e.g. [1000, 5000, 25000]. */
  backoffMs: number[];
}

export interface QueueSpec {
  name: string;
  bindings?: Binding[];
  /** RabbitMQ picks one consumer at a time (per-market order queues); another takes over when it dies. */
  singleActiveConsumer?: boolean;
  /**
   * How many times a message may be handled again after a redelivery without being applied (consumer crashes mid-
   * handler) before it is treated as poison and dead-lettered. Default 10. Counted by the consumer per message id in
   * the database, not by the broker: see ConsumeOptions.deliveryLimit.
   */
  deliveryLimit?: number;
  /**
   * The quorum queue's own `x-delivery-limit` (default 1000): only a backstop for a consumer that cannot even reach
   * its database. The broker counts every return, also those of messages that merely sat in a prefetch window when
   * a connection was lost, so it is kept far above `deliveryLimit`.
   */
  brokerDeliveryLimit?: number;
  /** Handler failures: retried with backoff through per-attempt TTL queues, then dead-lettered. */
  retry?: RetryPolicy;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, backoffMs: [1_000, 5_000, 30_000, 120_000, 600_000] };
export const DEFAULT_DELIVERY_LIMIT = 10;
export const BROKER_DELIVERY_LIMIT = 1000;

export const retryQueueName = (queue: string, attempt: number) => `${queue}.retry.${attempt}`;
export const deadLetterQueueName = (queue: string) => `${queue}.dlq`;

export function retryDelay(policy: RetryPolicy, attempt: number): number {
  const list = policy.backoffMs.length ? policy.backoffMs : [1_000];
  return list[Math.min(attempt, list.length) - 1] ?? list[list.length - 1]!;
}

export interface QueueDeclaration {
  queue: string;
  arguments: Record<string, unknown>;
}

/** The queues (with arguments) a spec expands to: main, one retry queue per attempt, and the DLQ. */
export function expandQueue(spec: QueueSpec): QueueDeclaration[] {
  const retry = spec.retry ?? DEFAULT_RETRY;
  const brokerLimit = spec.brokerDeliveryLimit ?? BROKER_DELIVERY_LIMIT;
  const out: QueueDeclaration[] = [
    {
      queue: spec.name,
      arguments: {
        'x-queue-type': 'quorum',
        ...(spec.singleActiveConsumer ? { 'x-single-active-consumer': true } : {}),
        'x-delivery-limit': brokerLimit,
        // Broker-side dead letters (delivery limit exceeded) land in the DLQ too; nothing is dropped.
        'x-dead-letter-exchange': DEFAULT_EXCHANGE,
        'x-dead-letter-routing-key': deadLetterQueueName(spec.name),
      },
    },
  ];
  for (let attempt = 1; attempt <= retry.attempts; attempt++) {
    out.push({
      queue: retryQueueName(spec.name, attempt),
      arguments: {
        'x-queue-type': 'quorum',
        'x-message-ttl': retryDelay(retry, attempt),
        // Expired messages go straight back to the main queue, and are only removed here once it has them.
        'x-dead-letter-exchange': DEFAULT_EXCHANGE,
        'x-dead-letter-routing-key': spec.name,
        'x-dead-letter-strategy': 'at-least-once',
        'x-overflow': 'reject-publish',
      },
    });
  }
  out.push({ queue: deadLetterQueueName(spec.name), arguments: { 'x-queue-type': 'quorum' } });
  return out;
}

export async function declareExchanges(ch: Channel): Promise<void> {
  await ch.assertExchange(EVENTS_UNROUTED_EXCHANGE, 'fanout', { durable: true });
  await ch.assertQueue(EVENTS_UNROUTED_QUEUE, {
    durable: true,
    arguments: { 'x-message-ttl': 24 * 3600 * 1000, 'x-max-length': 100_000, 'x-overflow': 'drop-head' },
  });
  await ch.bindQueue(EVENTS_UNROUTED_QUEUE, EVENTS_UNROUTED_EXCHANGE, '');
  await ch.assertExchange(EVENTS_EXCHANGE, 'topic', { durable: true, alternateExchange: EVENTS_UNROUTED_EXCHANGE });
  await ch.assertExchange(COMMANDS_EXCHANGE, 'direct', { durable: true });
}

/**
 * Declare a spec's queues. A main queue that exists with another `x-delivery-limit` (declared by an older version,
 * which used deliveryLimit + 1) is kept as it is (RabbitMQ cannot change a queue's arguments, and a policy can only
 * lower the limit) with a warning: `pnpm queues:recreate` (recreate-queue.ts) moves it to the new backstop. Returns
 * the channel to go on with (a refused declaration closes the one it was made on).
 */
export async function declareQueueOn(
  ch: Channel,
  spec: QueueSpec,
  reopen?: () => Promise<Channel>,
  warn?: (msg: string) => void,
): Promise<Channel> {
  for (const q of expandQueue(spec)) {
    try {
      await ch.assertQueue(q.queue, { durable: true, arguments: q.arguments });
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      if (!reopen || q.queue !== spec.name || !/inequivalent arg 'x-delivery-limit'/.test(msg)) throw err;
      ch = await reopen();
      await ch.checkQueue(q.queue);
      warn?.(
        `queue ${q.queue} keeps its older x-delivery-limit (${msg.replace(/^.*received/, 'wanted')}); ` +
          're-create it to raise the broker backstop: stop its consumers, then `pnpm queues:recreate ' +
          `${q.queue}\` (docs/runbook.md#old-broker-delivery-limit)`,
      );
    }
  }
  for (const b of spec.bindings ?? []) {
    await ch.bindQueue(spec.name, b.exchange, b.routingKey);
  }
  return ch;
}

/**
 * A channel whose server-side close (e.g. 406 on a redeclaration with other arguments) is answered by the caller's
 * rejected promise only: without an 'error' listener amqplib rethrows it and takes the whole connection down.
 */
async function quietChannel(conn: ChannelModel): Promise<Channel> {
  const ch = await conn.createChannel();
  ch.on('error', () => {});
  return ch;
}

/**
 * The topology as code: exchanges plus every declared queue, (re)declared on each (re)connect.
 * Declarations are idempotent; changing a queue's arguments later needs a new queue name (RabbitMQ refuses
 * redeclaring with different arguments: PRECONDITION_FAILED).
 */
export class Topology implements ConnectionResource {
  readonly name = 'topology';
  private readonly queues = new Map<string, QueueSpec>();
  private readonly warn: (msg: string) => void;

  constructor(warn: (msg: string) => void = () => {}) {
    this.warn = warn;
  }

  get specs(): QueueSpec[] {
    return [...this.queues.values()];
  }

  spec(queue: string): QueueSpec | undefined {
    return this.queues.get(queue);
  }

  add(spec: QueueSpec): void {
    this.queues.set(spec.name, spec);
  }

  async open(conn: ChannelModel): Promise<void> {
    let ch = await quietChannel(conn);
    try {
      await declareExchanges(ch);
      for (const spec of this.queues.values()) {
        ch = await declareQueueOn(ch, spec, () => quietChannel(conn), this.warn);
      }
    } finally {
      await ch.close().catch(() => {});
    }
  }

  /** Declare one queue now on `conn` (used when it is added while connected). */
  async declare(conn: ChannelModel, spec: QueueSpec): Promise<void> {
    let ch = await quietChannel(conn);
    try {
      await declareExchanges(ch);
      ch = await declareQueueOn(ch, spec, () => quietChannel(conn), this.warn);
    } finally {
      await ch.close().catch(() => {});
    }
  }
}
