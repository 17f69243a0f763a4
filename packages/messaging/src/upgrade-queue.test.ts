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
