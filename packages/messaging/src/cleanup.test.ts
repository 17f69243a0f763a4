/**
 * The relay's cleanup of sent outbox rows and old inbox rows must keep up with any sustained rate, not delete a fixed
 * 10k rows a minute (which lets the tables grow without bound above ~167 messages/s).
 */
import { createMessaging, silentLogger, type Messaging } from './index.ts';
import { SCHEMA, count, setupEnv, waitFor, type TestEnv } from '../test/helpers.ts';

let env: TestEnv;
let messaging: Messaging | undefined;
const OLD = 45_000;

beforeAll(async () => {
  env = await setupEnv('msg_cleanup');
});
afterAll(async () => {
  await messaging?.close();
  await env?.drop();
});

it(`a backlog of ${OLD} expired outbox and inbox rows is gone within one cleanup pass; recent rows stay`, async () => {
  await env.pool.query(
    `INSERT INTO ${SCHEMA}.outbox (message_id, type, exchange, routing_key, message, created_at, sent_at)
     SELECT gen_random_uuid()::text, 'test.item', 'x', 'k', '{}'::jsonb, now() - interval '8 days',
            CASE WHEN g <= $1 THEN now() - interval '8 days' ELSE now() END
       FROM generate_series(1, $1 + 10) g`,
    [OLD],
  );
  await env.pool.query(
    `INSERT INTO ${SCHEMA}.inbox (queue, message_id, type, processed_at)
     SELECT 'q', gen_random_uuid()::text, 'test.item',
            CASE WHEN g <= $1 THEN now() - interval '31 days' ELSE now() END
       FROM generate_series(1, $1 + 10) g`,
    [OLD],
  );
  messaging = createMessaging({
    url: env.vhost.url,
    service: 'svc',
    pool: env.pool,
    schema: SCHEMA,
    logger: silentLogger,
    relay: { pollIntervalMs: 100 },
  });
  await messaging.start();
  // The first pass runs as soon as the relay is active; the next regular one would be a minute later.
  await waitFor(
    async () =>
      (await count(env.pool, `SELECT count(*) FROM ${SCHEMA}.outbox`)) === 10 &&
      (await count(env.pool, `SELECT count(*) FROM ${SCHEMA}.inbox`)) === 10,
    { timeoutMs: 30_000, intervalMs: 200, what: 'the expired rows to be deleted' },
  );
  expect(await count(env.pool, `SELECT count(*) FROM ${SCHEMA}.outbox WHERE sent_at > now() - interval '1 hour'`)).toBe(
    10,
  );
  expect(
    await count(env.pool, `SELECT count(*) FROM ${SCHEMA}.inbox WHERE processed_at > now() - interval '1 hour'`),
  ).toBe(10);
}, 60_000);
