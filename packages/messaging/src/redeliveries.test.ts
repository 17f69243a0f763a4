// Poison detection counts handling attempts, not deliveries: messages that merely sit in the prefetch window while
// the broker connection is lost again and again (each loss returns them with x-delivery-count + 1) are good
// messages, and none of them may be dead-lettered, neither by the consumer nor by the quorum queue's own limit.
import type { Socket } from 'node:net';
import { withTransaction } from '@exchange/db';
import { Registry } from 'prom-client';
import { COMMANDS_EXCHANGE, createMessaging, silentLogger, type Messaging } from './index.ts';
import { SCHEMA, TestItem, count, setupEnv, waitFor, type TestEnv } from '../test/helpers.ts';

let env: TestEnv;
let producer: Messaging;
const consumers: Messaging[] = [];
const N = 40;
const CUTS = 12; // more than the delivery limit (10) and the old broker-side limit (11)

beforeAll(async () => {
  env = await setupEnv('msg_redeliver');
  producer = createMessaging({
    url: env.vhost.url,
    service: 'svc',
    connectionName: 'redeliver-producer',
    pool: env.pool,
    schema: SCHEMA,
    logger: silentLogger,
    relay: { pollIntervalMs: 100 },
  });
  await producer.start();
});

afterAll(async () => {
  for (const c of consumers) await c.close();
  await producer?.close();
  await env?.drop();
});

it.each([1, 8])(
  'a window of good messages survives %#: repeated broker connection losses, none dead-lettered (batch %i)',
  async (batch) => {
    const queue = `svc.redeliver.${batch}`;
    const name = `redeliver-consumer-${batch}`;
    const registry = new Registry();
    const consumer = createMessaging({
      url: env.vhost.url,
      service: 'svc',
      connectionName: name,
      pool: env.pool,
      schema: SCHEMA,
      logger: silentLogger,
      registry,
      relay: false,
    });
    consumers.push(consumer);
    const spec = { name: queue, bindings: [{ exchange: COMMANDS_EXCHANGE, routingKey: queue }] };
    await producer.declareQueue(spec);
    await consumer.declareQueue(spec);
    await consumer.start();

    // The first message's handler is held until the cuts are over: every message behind it stays unacked in the
    // prefetch window through all of them.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let first: string | undefined;
    const seen: string[] = [];
    let maxDeliveryCount = 0;
    await consumer.consume({
      queue,
      prefetch: N,
      batch,
      handler: async (msg, client, ctx) => {
        const m = TestItem.validate(msg);
        maxDeliveryCount = Math.max(maxDeliveryCount, ctx.deliveryCount);
        first ??= m.id;
        if (m.id === first) await gate;
        await client.query('INSERT INTO svc.effects (message_id, seq) VALUES ($1, $2)', [m.id, m.payload.seq]);
        seen.push(m.id);
      },
    });
    const ids: string[] = [];
    await withTransaction(env.pool, async (c) => {
      for (let seq = 0; seq < N; seq++) {
        const msg = TestItem.create({ seq, key: queue }, { producer: 'svc' });
        ids.push(msg.id);
        await producer.enqueue(c, { exchange: COMMANDS_EXCHANGE, routingKey: queue, message: msg });
      }
    });
    await producer.relay!.drained(30_000);
    await waitFor(() => first !== undefined, { what: 'first message in hand' });

    // Each cut drops the consumer's TCP connection under it, as a network fault would: the broker returns the whole
    // window (x-delivery-count + 1) and hands it to the new connection. (Closing it through the management API is the
    // same loss, but the API lists a new connection only after its 5 s statistics interval: 5 s per cut.)
    const probe = await producer.connection.channel();
    for (let cut = 0; cut < CUTS; cut++) {
      const before = consumer.connection.connections;
      const live = await waitFor(() => consumer.connection.current(), { what: `connection ${cut + 1}` });
      (live.connection as unknown as { stream: Socket }).stream.destroy(new Error('network cut'));
      await waitFor(() => consumer.connection.connections > before, {
        timeoutMs: 30_000,
        what: `reconnect ${cut + 1}`,
      });
      // the window is out again (none ready) before the next cut, so every cut returns all of it
      await waitFor(async () => (await probe.checkQueue(queue)).messageCount === 0, { what: `redelivery ${cut + 1}` });
    }
    await probe.close();
    release();

    await waitFor(
      async () => (await count(env.pool, 'SELECT count(*) FROM svc.effects WHERE message_id = ANY($1)', [ids])) === N,
      {
        timeoutMs: 60_000,
        what: `all ${N} applied`,
      },
    );
    await new Promise((r) => setTimeout(r, 500));
    expect(new Set(seen).size).toBe(N);
    expect(await count(env.pool, 'SELECT count(*) FROM svc.dead_letters WHERE queue = $1', [queue])).toBe(0);
    // the broker did count the returns (the window was really redelivered that often) …
    expect(consumer.connection.connections).toBeGreaterThan(CUTS);
    expect(maxDeliveryCount).toBeGreaterThanOrEqual(CUTS - 1);
    // … but what poison detection keeps is gone with the applied messages
    expect(await count(env.pool, 'SELECT count(*) FROM svc.message_attempts WHERE queue = $1', [queue])).toBe(0);
    const ch = await consumer.connection.channel();
    expect((await ch.checkQueue(`${queue}.dlq`)).messageCount).toBe(0);
    await ch.close();
    expect(await registry.getSingleMetricAsString('jobs_dead_letter_total')).not.toContain(`queue="${queue}"`);
  },
  240_000,
);
