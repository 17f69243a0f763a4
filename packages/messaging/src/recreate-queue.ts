/**
 * Re-create a quorum queue with a new `x-delivery-limit`, keeping every message in order.
 *
 * Queues declared by older versions carry `x-delivery-limit: 11`; the current topology asks for the far backstop
 * (BROKER_DELIVERY_LIMIT). RabbitMQ cannot change a queue's arguments, and a `delivery-limit` policy does not help:
 * where both a policy and the queue argument set it, the broker applies the LOWER of the two (rabbit_quorum_queue:
 * args_policy_lookup with min/2), so a policy can lower a limit but never raise the 11. The queue has to be
 * re-created. This does it through a holding queue `<queue>.recreating`:
 *
 *   1. refuse while the queue has consumers (stop the consuming service first) or messages wait in its retry queues
 *      (they come back to it by name, which a deleted queue would not take);
 *   2. move every message of the queue to the holding queue (publish with confirms, then ack: nothing is lost);
 *   3. bind the holding queue like the queue, move what arrived meanwhile, then delete the queue: from here on every
 *      new message reaches the holding queue, so the queue is empty of anything the holding queue does not have;
 *   4. declare the queue with its old arguments but the new limit, bind it, unbind the holding queue;
 *   5. move the holding queue's messages back behind nothing, delete it.
 *
 * With the publishers stopped too (the services' outbox relays keep unpublished rows, so stopping them loses
 * nothing), the result is the same messages in the same order. With publishers running nothing is lost either, but
 * a message published while both queues are bound arrives twice (same message id: consumers' inboxes drop the copy)
 * and those few can come out of order. Interrupted, it can be run again: it picks up the holding queue it left.
 */
import amqp, { type ConfirmChannel, type ConsumeMessage, type Options } from 'amqplib';
import { BROKER_DELIVERY_LIMIT, DEFAULT_EXCHANGE, retryQueueName } from './topology.ts';

export const holdingQueueName = (queue: string) => `${queue}.recreating`;

export interface RecreateQueueOptions {
  /** amqp URL of the queue's vhost (a user that may configure, read and write it). */
  amqpUrl: string;
  /** RabbitMQ management API base URL with credentials (http://user:pass@host:15672): arguments and bindings. */
  managementUrl: string;
  queue: string;
  /** The new x-delivery-limit (default BROKER_DELIVERY_LIMIT). */
  deliveryLimit?: number;
  log?: (msg: string) => void;
}

export interface RecreateQueueResult {
  queue: string;
  action: 'recreated' | 'unchanged' | 'resumed';
  /** x-delivery-limit before (undefined: none) and after. */
  before: number | undefined;
  after: number;
  /** Messages carried over into the re-created queue. */
  messages: number;
}

interface QueueInfo {
  name: string;
  type?: string;
  arguments: Record<string, unknown>;
  consumers?: number;
}

interface BindingInfo {
  source: string;
  routing_key: string;
  arguments: Record<string, unknown>;
}

function managementClient(managementUrl: string, vhost: string) {
  const u = new URL(managementUrl);
  const auth =
    'Basic ' + Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
  u.username = '';
  u.password = '';
  const base = u.toString().replace(/\/$/, '');
  const v = encodeURIComponent(vhost);
  async function get<T>(path: string): Promise<T | undefined> {
    const res = await fetch(`${base}/api${path}`, { headers: { authorization: auth } });
    if (res.status === 404) return undefined;
    if (!res.ok) throw new Error(`RabbitMQ management GET ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  }
  return {
    queue: (name: string) => get<QueueInfo>(`/queues/${v}/${encodeURIComponent(name)}`),
    queues: async () => (await get<QueueInfo[]>(`/queues/${v}?columns=name,type,arguments,consumers`)) ?? [],
    bindings: async (name: string) =>
      ((await get<BindingInfo[]>(`/queues/${v}/${encodeURIComponent(name)}/bindings`)) ?? []).filter(
        (b) => b.source !== DEFAULT_EXCHANGE, // the default exchange's implicit binding comes with the queue
      ),
  };
}

const vhostOf = (amqpUrl: string) => decodeURIComponent(new URL(amqpUrl).pathname.replace(/^\//, '')) || '/';

const limitOf = (q: QueueInfo): number | undefined => {
  const v = q.arguments['x-delivery-limit'];
  return typeof v === 'number' ? v : undefined;
};

/**
 * The quorum queues of the vhost whose x-delivery-limit differs from `deliveryLimit` (the main queues the topology
 * declares; retry queues, DLQs and holding queues carry none).
 */
export async function queuesWithOtherDeliveryLimit(opts: {
  amqpUrl: string;
  managementUrl: string;
  deliveryLimit?: number;
}): Promise<Array<{ queue: string; deliveryLimit: number }>> {
  const target = opts.deliveryLimit ?? BROKER_DELIVERY_LIMIT;
  const mgmt = managementClient(opts.managementUrl, vhostOf(opts.amqpUrl));
  return (await mgmt.queues())
    .filter((q) => q.type === 'quorum' && limitOf(q) !== undefined && limitOf(q) !== target)
    .map((q) => ({ queue: q.name, deliveryLimit: limitOf(q)! }))
    .sort((a, b) => a.queue.localeCompare(b.queue));
}

/** Properties of a moved message: as published, minus what the broker or the connection sets. */
function republishOptions(msg: ConsumeMessage): Options.Publish {
  // typed `any` by @types/amqplib: these are the AMQP basic properties as strings and numbers
  const p = msg.properties as {
    headers?: Record<string, unknown>;
    contentType?: string;
    contentEncoding?: string;
    correlationId?: string;
    replyTo?: string;
    expiration?: string;
    messageId?: string;
    timestamp?: number;
    type?: string;
    appId?: string;
    priority?: number;
  };
  const headers = { ...(p.headers ?? {}) };
  // the broker's count of returns belongs to the old queue; the new one starts counting again
  delete headers['x-delivery-count'];
  return {
    persistent: true,
    headers,
    ...(p.contentType ? { contentType: p.contentType } : {}),
    ...(p.contentEncoding ? { contentEncoding: p.contentEncoding } : {}),
    ...(p.correlationId ? { correlationId: p.correlationId } : {}),
    ...(p.replyTo ? { replyTo: p.replyTo } : {}),
    ...(p.expiration ? { expiration: p.expiration } : {}),
    ...(p.messageId ? { messageId: p.messageId } : {}),
    ...(p.timestamp ? { timestamp: p.timestamp } : {}),
    ...(p.type ? { type: p.type } : {}),
    ...(p.appId ? { appId: p.appId } : {}),
    ...(p.priority !== undefined ? { priority: p.priority } : {}),
  };
}

/**
 * Move every message of `from` to the end of `to`, in order. Consumed (basic.get is refused on single-active-consumer
 * queues) with a prefetch window; each delivery is published at once, and acked only after the broker confirmed it,
 * so a crash at any point leaves each message in `from`, in `to`, or (at worst) in both. Done when, after the
 * consumer is cancelled (every delivery made before it has been handled by then), nothing is ready in `from`.
 */
async function moveAll(ch: ConfirmChannel, from: string, to: string, prefetch = 200): Promise<number> {
  let moved = 0;
  await ch.prefetch(prefetch);
  for (;;) {
    const pending: ConsumeMessage[] = [];
    const flush = async () => {
      if (pending.length === 0) return;
      const n = pending.length;
      const last = pending[n - 1]!;
      await ch.waitForConfirms();
      ch.ack(last, true); // every delivery up to it: all published and confirmed
      pending.splice(0, n);
      moved += n;
    };
    const { consumerTag } = await ch.consume(
      from,
      (m) => {
        if (!m) return;
        ch.publish(DEFAULT_EXCHANGE, to, m.content, republishOptions(m));
        pending.push(m);
      },
      { noAck: false },
    );
    do {
      await new Promise((r) => setTimeout(r, 20));
      await flush();
    } while ((await ch.checkQueue(from)).messageCount > 0);
    await ch.cancel(consumerTag);
    await flush();
    if ((await ch.checkQueue(from)).messageCount === 0) return moved;
  }
}

/** Re-create `queue` with the new x-delivery-limit (see the module comment for the procedure and its guarantees). */
export async function recreateQueue(opts: RecreateQueueOptions): Promise<RecreateQueueResult> {
  const target = opts.deliveryLimit ?? BROKER_DELIVERY_LIMIT;
  const log = opts.log ?? (() => {});
  const mgmt = managementClient(opts.managementUrl, vhostOf(opts.amqpUrl));
  const holding = holdingQueueName(opts.queue);
  const conn = await amqp.connect(opts.amqpUrl);
  // a refused operation closes the channel with an error event; the awaited call rejects with it anyway
  conn.on('error', () => {});
  try {
    const ch = await conn.createConfirmChannel();
    ch.on('error', () => {});
    const info = await mgmt.queue(opts.queue);
    const held = await mgmt.queue(holding);
    const before = info ? limitOf(info) : undefined;

    if (!info) {
      throw new Error(
        held
          ? `${opts.queue} does not exist but ${holding} holds its messages: start the service once so it declares ` +
              `${opts.queue}, stop its consumers again and run this again`
          : `queue ${opts.queue} does not exist`,
      );
    }
    if (info.type !== 'quorum')
      throw new Error(`${opts.queue} is a ${info.type ?? 'classic'} queue, not a quorum queue`);

    const state = await ch.checkQueue(opts.queue);
    if (state.consumerCount > 0) {
      throw new Error(
        `${opts.queue} has ${state.consumerCount} consumer(s): stop the service consuming it first (its messages ` +
          'would be delivered while they are moved)',
      );
    }

    if (before === target) {
      if (!held) return { queue: opts.queue, action: 'unchanged', before, after: target, messages: 0 };
      // a run stopped after re-creating the queue: finish it (step 4 and 5)
      log(`${opts.queue}: already at x-delivery-limit ${target}; moving back what ${holding} still holds`);
      for (const b of await mgmt.bindings(holding)) await ch.unbindQueue(holding, b.source, b.routing_key, b.arguments);
      const messages = await moveAll(ch, holding, opts.queue);
      await ch.deleteQueue(holding);
      return { queue: opts.queue, action: 'resumed', before, after: target, messages };
    }

    for (let attempt = 1; ; attempt++) {
      const retry = await mgmt.queue(retryQueueName(opts.queue, attempt));
      if (!retry) break;
      const r = await ch.checkQueue(retry.name);
      if (r.messageCount > 0) {
        throw new Error(
          `${retry.name} holds ${r.messageCount} message(s) on their way back to ${opts.queue}: wait until it is ` +
            'empty (at most its TTL) and run this again',
        );
      }
    }

    const bindings = await mgmt.bindings(opts.queue);
    log(`${opts.queue}: x-delivery-limit ${before ?? 'none'} -> ${target}; ${bindings.length} binding(s)`);
    await ch.assertQueue(holding, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    let carried = await moveAll(ch, opts.queue, holding);
    for (const b of bindings) await ch.bindQueue(holding, b.source, b.routing_key, b.arguments);
    // anything that reached the queue before the holding queue was bound; from now on both get every new message
    carried += await moveAll(ch, opts.queue, holding);
    await ch.deleteQueue(opts.queue);
    log(`${opts.queue}: ${carried} message(s) in ${holding}; re-creating the queue`);

    await ch.assertQueue(opts.queue, {
      durable: true,
      arguments: { ...info.arguments, 'x-delivery-limit': target },
    });
    for (const b of bindings) await ch.bindQueue(opts.queue, b.source, b.routing_key, b.arguments);
    for (const b of bindings) await ch.unbindQueue(holding, b.source, b.routing_key, b.arguments);
    const messages = await moveAll(ch, holding, opts.queue);
    await ch.deleteQueue(holding);
    log(`${opts.queue}: re-created with x-delivery-limit ${target}, ${messages} message(s) back in it`);
    await ch.close();
    return { queue: opts.queue, action: 'recreated', before, after: target, messages };
  } finally {
    await conn.close().catch(() => {});
  }
}
