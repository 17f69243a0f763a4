// A message id that arrives again with other content is not a redelivery (an id reused, e.g. engine ids after a
// restore): it is dead-lettered and counted (messages_id_conflicts_total, alerted on), never dropped as a duplicate.
// A true redelivery (same content) is still skipped.
import { Registry } from 'prom-client';
import { COMMANDS_EXCHANGE, createMessaging, silentLogger, type Messaging } from './index.ts';
import { SCHEMA, TestItem, count, setupEnv, waitFor, type TestEnv } from '../test/helpers.ts';

let env: TestEnv;
let m: Messaging;
const registry = new Registry();

beforeAll(async () => {
  env = await setupEnv('msg_idconflict');
  m = createMessaging({
    url: env.vhost.url,
    service: 'svc',
    connectionName: 'idconflict',
    pool: env.pool,
    schema: SCHEMA,
    logger: silentLogger,
    registry,
    relay: false,
  });
  await m.start();
});

afterAll(async () => {
  await m?.close();
  await env?.drop();
});

it.each([1, 8])('an id reused with different content is dead-lettered, not dropped (batch %i)', async (batch) => {
  const queue = `svc.idconflict.${batch}`;
  await m.declareQueue({ name: queue, bindings: [{ exchange: COMMANDS_EXCHANGE, routingKey: queue }] });
  const seen: Array<{ id: string; key: string }> = [];
  await m.consume({
    queue,
    batch,
    handler: async (msg, client) => {
      const item = TestItem.validate(msg);
      await client.query('INSERT INTO svc.effects (message_id, seq) VALUES ($1, $2)', [
        `${queue}:${item.payload.key}`,
        item.payload.seq,
      ]);
      seen.push({ id: item.id, key: item.payload.key });
    },
  });
  const send = async (items: ReturnType<typeof TestItem.create>[]) => {
    for (const it of items) {
      await m.publisher.publish(COMMANDS_EXCHANGE, queue, Buffer.from(JSON.stringify(it)), {
        messageId: it.id,
        persistent: true,
      });
    }
  };
  const original = TestItem.create({ seq: 1, key: 'original' }, { producer: 'svc' });
  await send([original]);
  await waitFor(() => seen.length === 1, { what: 'original applied' });

  const reused = { ...original, payload: { seq: 2, key: 'reused' } };
  const others = [2, 3, 4].map((i) => TestItem.create({ seq: 10 + i, key: `other-${i}` }, { producer: 'svc' }));
  // a redelivery of the original (same content), then the id with other content among good messages
  await send([original, others[0]!, reused, others[1]!, others[2]!]);
  const row = await waitFor(
    async () =>
      (
        await env.pool.query('SELECT * FROM svc.dead_letters WHERE queue = $1 AND message_id = $2', [
          queue,
          original.id,
        ])
      ).rows[0],
    { what: 'dead letter of the reused id' },
  );
  expect(row.reason).toMatch(/already applied with different content/);
  expect(row.message.payload).toEqual({ seq: 2, key: 'reused' });
  await waitFor(() => seen.length === 4, { what: 'the other messages applied' });
  expect(seen.map((s) => s.key)).toEqual(['original', 'other-2', 'other-3', 'other-4']);
  expect(await count(env.pool, 'SELECT count(*) FROM svc.effects WHERE message_id LIKE $1', [`${queue}:%`])).toBe(4);
  expect(await registry.getSingleMetricAsString('messages_id_conflicts_total')).toContain(
    `messages_id_conflicts_total{queue="${queue}"} 1`,
  );
  expect(await registry.getSingleMetricAsString('messages_consumed_total')).toContain(
    `messages_consumed_total{queue="${queue}",outcome="duplicate"} 1`,
  );
});
