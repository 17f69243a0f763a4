// After a broker connection loss, consumption resumes at once. A handler of the lost channel that was waiting out a
// long inline-retry backoff used to keep running until its backoff ended, and with concurrency 1 it held back every
// delivery of the new channel meanwhile: the queue looked stalled for up to a minute after each reconnect.
import { COMMANDS_EXCHANGE, createMessaging, silentLogger, type Messaging } from './index.ts';
import { SCHEMA, TestItem, count, setupEnv, waitFor, type TestEnv } from '../test/helpers.ts';

let env: TestEnv;
let m: Messaging;
const QUEUE = 'svc.stall';
const NAME = 'stall-consumer';

beforeAll(async () => {
  env = await setupEnv('msg_stall');
  m = createMessaging({
    url: env.vhost.url,
    service: 'svc',
    connectionName: NAME,
    pool: env.pool,
    schema: SCHEMA,
    logger: silentLogger,
    relay: false,
  });
  await m.declareQueue({ name: QUEUE, bindings: [{ exchange: COMMANDS_EXCHANGE, routingKey: QUEUE }] });
  await m.start();
});

afterAll(async () => {
  await m?.close();
  await env?.drop();
});

it('a handler waiting out a retry backoff does not hold the queue after the connection is lost', async () => {
  const items = [1, 2, 3].map((seq) => TestItem.create({ seq, key: 'stall' }, { producer: 'svc' }));
  let calls = 0;
  await m.consume({
    queue: QUEUE,
    retryMode: 'inline',
    retry: { attempts: 3, backoffMs: [30_000] },
    handler: async (msg, client) => {
      const item = TestItem.validate(msg);
      if (item.payload.seq === 1 && ++calls === 1) throw new Error('fails once');
      await client.query('INSERT INTO svc.effects (message_id, seq) VALUES ($1, $2)', [item.id, item.payload.seq]);
    },
  });
  for (const it of items) {
    await m.publisher.publish(COMMANDS_EXCHANGE, QUEUE, Buffer.from(JSON.stringify(it)), {
      messageId: it.id,
      persistent: true,
    });
  }
  await waitFor(() => calls === 1, { what: 'first failure' }); // now in a 30 s backoff, holding the queue
  const before = m.connection.connections;
  expect(await env.vhost.closeConnections({ namePrefix: NAME })).toBeGreaterThan(0);
  const cutAt = Date.now();
  await waitFor(() => m.connection.connections > before, { what: 'reconnected' });
  await waitFor(
    async () =>
      (await count(env.pool, 'SELECT count(*) FROM svc.effects WHERE message_id = ANY($1)', [
        items.map((i) => i.id),
      ])) === 3,
    { timeoutMs: 15_000, what: 'all applied soon after the reconnect' },
  );
  expect(Date.now() - cutAt).toBeLessThan(15_000); // not the rest of the 30 s backoff
  expect(await count(env.pool, 'SELECT count(*) FROM svc.dead_letters')).toBe(0);
}, 60_000);
