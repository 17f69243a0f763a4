// Upgrading over queues an older version declared: their x-delivery-limit was deliveryLimit + 1 (11), the current
// version asks for the broker backstop (1000). RabbitMQ refuses the redeclaration (406 PRECONDITION_FAILED, which
// closes the channel); the service must keep the queue as it is, warn, and go on starting, not loop on reconnects.
import amqp from 'amqplib';
import { COMMANDS_EXCHANGE, createMessaging, deadLetterQueueName, silentLogger, type Messaging } from './index.ts';
import { SCHEMA, setupEnv, waitFor, type TestEnv } from '../test/helpers.ts';

let env: TestEnv;
let svc: Messaging | undefined;

beforeAll(async () => {
  env = await setupEnv('msg_upgrade');
});

afterAll(async () => {
  await svc?.close();
  await env?.drop();
});

it('starts over a queue declared by the older version with x-delivery-limit 11, keeping it and warning', async () => {
  const queue = 'svc.legacy';
  const conn = await amqp.connect(env.vhost.url);
  const ch = await conn.createChannel();
  await ch.assertQueue(queue, {
    durable: true,
    arguments: {
      'x-queue-type': 'quorum',
      'x-delivery-limit': 11,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': deadLetterQueueName(queue),
    },
  });
  await conn.close();

  const warnings: string[] = [];
  const logger = { ...silentLogger, warn: (_o: unknown, msg?: string) => void warnings.push(String(msg ?? _o)) };
  svc = createMessaging({
    url: env.vhost.url,
    service: 'svc',
    connectionName: 'upgrade',
    pool: env.pool,
    schema: SCHEMA,
    logger,
    relay: { pollIntervalMs: 100 },
  });
  const spec = { name: queue, bindings: [{ exchange: COMMANDS_EXCHANGE, routingKey: queue }] };
  await svc.declareQueue(spec);
  await svc.start();
  // both connections (consume and publish) up and staying up: a refused declaration must not tear one down
  await waitFor(async () => (await svc!.health()).ok, { timeoutMs: 15_000, what: 'messaging healthy' });
  await new Promise((r) => setTimeout(r, 1_000));
  expect(await svc.health()).toMatchObject({ ok: true });
  expect(svc.connection.connections).toBe(1);
  expect(warnings.join('\n')).toMatch(/keeps its older x-delivery-limit/);
});

it('queues:recreate moves such a queue to the new limit: every message kept, in order, arguments and bindings too', async () => {
  const { recreateQueue, queuesWithOtherDeliveryLimit, holdingQueueName, expandQueue, BROKER_DELIVERY_LIMIT } =
    await import('./index.ts');
  const { managementApi } = await import('./testing.ts');
  const queue = 'svc.recreate';
  const spec = {
    name: queue,
    singleActiveConsumer: true,
    bindings: [{ exchange: COMMANDS_EXCHANGE, routingKey: queue }],
    retry: { attempts: 1, backoffMs: [1_000] },
  };
  const [main, retry] = expandQueue(spec);
  const conn = await amqp.connect(env.vhost.url);
  const ch = await conn.createConfirmChannel();
  await ch.assertExchange(COMMANDS_EXCHANGE, 'direct', { durable: true });
  // as the older version declared it: the same arguments but x-delivery-limit 11
  await ch.assertQueue(queue, { durable: true, arguments: { ...main!.arguments, 'x-delivery-limit': 11 } });
  await ch.assertQueue(retry!.queue, { durable: true, arguments: retry!.arguments });
  await ch.bindQueue(queue, COMMANDS_EXCHANGE, queue);
  const publish = (i: number) =>
    ch.publish(COMMANDS_EXCHANGE, queue, Buffer.from(JSON.stringify({ i })), {
      messageId: `m-${i}`,
      type: 'test.item',
      headers: { n: i },
      persistent: true,
      mandatory: true,
    });
  let returned = 0;
  ch.on('return', () => returned++);
  for (let i = 0; i < 300; i++) publish(i);
  await ch.waitForConfirms();
  const mgmtUrl = process.env.TEST_RABBITMQ_MANAGEMENT_URL ?? 'http://guest:guest@127.0.0.1:15672';
  const opts = { amqpUrl: env.vhost.url, managementUrl: mgmtUrl, queue };
  expect(await queuesWithOtherDeliveryLimit(opts)).toContainEqual({ queue, deliveryLimit: 11 });

  // a consumer still attached: refused, nothing touched
  const consumerCh = await conn.createChannel();
  await consumerCh.prefetch(1);
  const { consumerTag } = await consumerCh.consume(queue, () => {}, { noAck: false });
  await expect(recreateQueue(opts)).rejects.toThrow(/consumer/);
  await consumerCh.cancel(consumerTag);
  await consumerCh.close(); // its unacked message (if any) goes back to the head of the queue

  // publishers keep running meanwhile: 100 more messages while the queue is re-created
  let publishing = true;
  const during = (async () => {
    let i = 300;
    while (publishing || i < 400) {
      if (i < 400) publish(i++);
      await ch.waitForConfirms();
      await new Promise((r) => setTimeout(r, 2));
      if (i >= 400) break;
    }
  })();
  const result = await recreateQueue(opts);
  publishing = false;
  await during;
  expect(result).toMatchObject({ queue, action: 'recreated', before: 11, after: BROKER_DELIVERY_LIMIT });
  expect(returned).toBe(0);

  const v = encodeURIComponent(env.vhost.name);
  const info = await managementApi<{ arguments: Record<string, unknown> }>('GET', `/queues/${v}/${queue}`);
  expect(info.arguments).toEqual(main!.arguments); // the limit of the current topology, everything else as it was
  const bindings = await managementApi<Array<{ source: string; routing_key: string }>>(
    'GET',
    `/queues/${v}/${queue}/bindings`,
  );
  expect(bindings.filter((b) => b.source === COMMANDS_EXCHANGE).map((b) => b.routing_key)).toEqual([queue]);
  const queues = await managementApi<Array<{ name: string }>>('GET', `/queues/${v}`);
  expect(queues.map((q) => q.name)).not.toContain(holdingQueueName(queue));
  expect((await queuesWithOtherDeliveryLimit(opts)).map((q) => q.queue)).not.toContain(queue);
  // the current topology declares it without a 406 now
  await ch.assertQueue(queue, { durable: true, arguments: main!.arguments });

  // every message is there; the 300 published before are first and in order, with their properties
  const got: Array<{ id: string; n: unknown; type: string | undefined }> = [];
  const drain = await conn.createChannel(); // consumed: basic.get is refused on single-active-consumer queues
  const { consumerTag: drainTag } = await drain.consume(
    queue,
    (m) => {
      if (m) got.push({ id: String(m.properties.messageId), n: m.properties.headers?.n, type: m.properties.type });
    },
    { noAck: true },
  );
  await waitFor(
    async () => new Set(got.map((g) => g.id)).size >= 400 && (await ch.checkQueue(queue)).messageCount === 0,
    {
      what: 'every message consumed',
    },
  );
  await drain.cancel(drainTag);
  expect(got.slice(0, 300)).toEqual(Array.from({ length: 300 }, (_, i) => ({ id: `m-${i}`, n: i, type: 'test.item' })));
  expect(new Set(got.map((g) => g.id))).toEqual(new Set(Array.from({ length: 400 }, (_, i) => `m-${i}`)));
  // run again: nothing to do
  expect(await recreateQueue(opts)).toMatchObject({ action: 'unchanged', messages: 0 });
  await conn.close();
}, 60_000);
