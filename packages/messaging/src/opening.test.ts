/**
 * ConsumeOptions.opening: a statement every transaction of the consumer runs first, sent with `BEGIN` and the inbox
 * insert. Its result reaches the handler (single and batch) from the same transaction the handler writes in.
 */
import { withTransaction } from '@exchange/db';
import { COMMANDS_EXCHANGE, createMessaging, silentLogger, type Messaging } from './index.ts';
import { SCHEMA, TestItem, setupEnv, waitFor, type TestEnv } from '../test/helpers.ts';

let env: TestEnv;
const open: Messaging[] = [];

beforeAll(async () => {
  env = await setupEnv('msg_opening');
});
afterAll(async () => {
  for (const m of open) await m.close().catch(() => {});
  await env?.drop();
});

async function messaging(queue: string): Promise<Messaging> {
  const m = createMessaging({
    url: env.vhost.url,
    service: 'svc',
    connectionName: `opening-${queue}`,
    pool: env.pool,
    schema: SCHEMA,
    logger: silentLogger,
    relay: { pollIntervalMs: 100 },
  });
  await m.declareQueue({ name: queue, bindings: [{ exchange: COMMANDS_EXCHANGE, routingKey: queue }] });
  await m.start();
  open.push(m);
  return m;
}

async function publish(m: Messaging, queue: string, seqs: number[]): Promise<void> {
  await withTransaction(env.pool, async (c) => {
    for (const seq of seqs) {
      await m.enqueue(c, {
        exchange: COMMANDS_EXCHANGE,
        routingKey: queue,
        message: TestItem.create({ seq, key: queue }, { producer: 'svc' }),
      });
    }
  });
}

const OPENING = `SELECT txid_current()::text AS tx, 'it''s' AS quoted`;

it.each([
  ['one message at a time', 1],
  ['a batch', 50],
])('hands %s the result of the opening, run in its own transaction', async (_what, batch) => {
  const queue = `svc.opening-${batch}`;
  const m = await messaging(queue);
  const seen: Array<{ opened: string | undefined; quoted: unknown; inTx: string; n: number }> = [];
  const record = async (n: number, client: { query: (q: string) => Promise<{ rows: unknown[] }> }, ctx: object) => {
    const opening = (ctx as { opening?: { rows: Array<{ tx: string; quoted: string }> } }).opening;
    const { rows } = await client.query('SELECT txid_current()::text AS tx');
    seen.push({
      opened: opening?.rows[0]?.tx,
      quoted: opening?.rows[0]?.quoted,
      inTx: (rows[0] as { tx: string }).tx,
      n,
    });
  };
  await m.consume({
    queue,
    opening: OPENING,
    prefetch: 100,
    ...(batch > 1 ? { batch, batchHandler: (msgs, client, ctx) => record(msgs.length, client, ctx) } : {}),
    handler: (_msg, client, ctx) => record(1, client, ctx),
  });
  await publish(
    m,
    queue,
    Array.from({ length: 20 }, (_, i) => i),
  );
  await waitFor(() => seen.reduce((a, s) => a + s.n, 0) === 20, { what: 'every message handled' });
  if (batch > 1) expect(seen.some((s) => s.n > 1)).toBe(true); // the batch path ran
  for (const s of seen) {
    expect(s.opened).toBeDefined();
    expect(s.opened).toBe(s.inTx);
    expect(s.quoted).toBe("it's");
  }
});
