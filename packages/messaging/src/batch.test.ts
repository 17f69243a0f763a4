/**
 * Group commit (ConsumeOptions.batch): messages already waiting are applied in one transaction. A batch that fails
 * half-way is rolled back whole and its messages are applied again one by one — never twice — and the order of a
 * single-active-consumer queue holds across batch boundaries, failures and redeliveries.
 */
import type pg from 'pg';
import { withTransaction } from '@exchange/db';
import { COMMANDS_EXCHANGE, createMessaging, silentLogger, type Logger, type Messaging } from './index.ts';
import { SCHEMA, TestItem, count, setupEnv, waitFor, type TestEnv } from '../test/helpers.ts';

let env: TestEnv;
const open: Messaging[] = [];

beforeAll(async () => {
  env = await setupEnv('msg_batch');
});

afterAll(async () => {
  for (const m of open) await m.close().catch(() => {});
  await env?.drop();
});

/** What the package logged (warnings and errors), shown when a wait times out. */
const logged: string[] = [];
const recordingLogger: Logger = {
  debug() {},
  info: (obj, msg) => void logged.push(`${new Date().toISOString()} info ${msg} ${JSON.stringify(obj)}`),
  warn: (obj, msg) => void logged.push(`${new Date().toISOString()} warn ${msg} ${JSON.stringify(obj)}`),
  error: (obj, msg) => void logged.push(`${new Date().toISOString()} error ${msg} ${JSON.stringify(obj)}`),
};

async function messaging(queue: string, logger: Logger = silentLogger): Promise<Messaging> {
  const m = createMessaging({
    url: env.vhost.url,
    service: 'svc',
    connectionName: `batch-${queue}`,
    pool: env.pool,
    schema: SCHEMA,
    logger,
    relay: { pollIntervalMs: 100, batchSize: 500 },
  });
  await m.declareQueue({
    name: queue,
    bindings: [{ exchange: COMMANDS_EXCHANGE, routingKey: queue }],
    singleActiveConsumer: true,
    retry: { attempts: 3, backoffMs: [50, 50, 50] },
  });
  await m.start();
  open.push(m);
  return m;
}

async function publish(m: Messaging, queue: string, from: number, to: number): Promise<void> {
  await withTransaction(env.pool, async (c) => {
    for (let seq = from; seq < to; seq++) {
      await m.enqueue(c, {
        exchange: COMMANDS_EXCHANGE,
        routingKey: queue,
        message: TestItem.create({ seq, key: queue }, { producer: 'svc' }),
      });
    }
  });
}

/** The effect of a message: counts applications, so a doubled one shows as applied = 2. */
async function effect(client: pg.PoolClient, id: string, seq: number): Promise<string> {
  const { rows } = await client.query<{ tx: string }>(
    `INSERT INTO svc.effects (message_id, seq) VALUES ($1, $2)
     ON CONFLICT (message_id) DO UPDATE SET applied = effects.applied + 1 RETURNING txid_current()::text AS tx`,
    [id, seq],
  );
  return rows[0]!.tx;
}

const effectsOf = async (from: number, to: number) =>
  (
    await env.pool.query<{ seq: number; applied: number }>(
      'SELECT seq, applied FROM svc.effects WHERE seq >= $1 AND seq < $2 ORDER BY seq',
      [from, to],
    )
  ).rows;

it('a batch that fails half-way rolls back whole, then its messages apply one by one, each exactly once', async () => {
  const queue = 'orders.BATCH-FAIL';
  const N = 60;
  const m = await messaging(queue);
  // Everything is in the queue before the consumer starts, so the first deliveries form batches.
  await publish(m, queue, 0, N);
  await m.relay!.drained();

  const calls = new Map<number, number>();
  const committedTx = new Map<number, string>();
  const txOfCall = new Map<number, string>();
  const committedOrder: number[] = [];
  let failed = false;
  await m.consume({
    queue,
    prefetch: 200,
    concurrency: 1,
    batch: 20,
    handler: async (msg, client) => {
      const { seq } = TestItem.validate(msg).payload;
      calls.set(seq, (calls.get(seq) ?? 0) + 1);
      txOfCall.set(seq, await effect(client, msg.id, seq));
      // seq 25 fails once, after earlier messages of its batch already wrote their effects in the transaction
      if (seq === 25 && !failed) {
        failed = true;
        throw new Error('boom half-way through the batch');
      }
    },
    hooks: {
      afterCommit: (msg) => {
        const seq = (msg.payload as { seq: number }).seq;
        committedOrder.push(seq);
        committedTx.set(seq, txOfCall.get(seq)!);
      },
    },
  });
  await waitFor(() => committedOrder.length >= N, { what: `${N} messages committed` });

  // exactly once each, in queue order
  const rows = await effectsOf(0, N);
  expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: N }, (_, i) => i));
  expect(rows.every((r) => r.applied === 1)).toBe(true);
  expect(committedOrder).toEqual(Array.from({ length: N }, (_, i) => i));
  // the failed batch ran its earlier messages once before seq 25 threw, and again after the rollback
  const retried = [...calls].filter(([, n]) => n === 2).map(([seq]) => seq);
  expect(retried).toContain(25);
  expect(retried.length).toBeGreaterThan(1);
  expect(retried.every((seq) => seq <= 25)).toBe(true);
  // batching really happened: far fewer transactions than messages
  expect(new Set(committedTx.values()).size).toBeLessThan(N / 2);
  // and the retried messages were applied one transaction each
  const retriedTx = retried.map((seq) => committedTx.get(seq));
  expect(new Set(retriedTx).size).toBe(retried.length);
  expect(await count(env.pool, 'SELECT count(*) FROM svc.dead_letters')).toBe(0);
});

it('keeps queue order across batch boundaries, a failing batch and a lost connection (redelivery)', async () => {
  const queue = 'orders.BATCH-ORDER';
  const N = 600;
  const base = 1000; // seqs of its own in the shared effects table
  const m = await messaging(queue, recordingLogger);
  const committedOrder: number[] = [];
  const committedAt: number[] = [];
  let failures = 0;
  // the cut comes while the middle message is in hand (its effect written, not yet committed nor acked), so it
  // lands mid-stream whatever the machine's speed: deliveries before and after it are redelivered
  let atGate = false;
  let openGate!: () => void;
  const gate = new Promise<void>((r) => (openGate = r));
  await m.consume({
    queue,
    prefetch: 50,
    concurrency: 1,
    batch: 7, // small: many boundaries
    // as the engine's market queues: a failing command holds the queue instead of going to a retry queue
    retryMode: 'inline',
    handler: async (msg, client) => {
      const { seq } = TestItem.validate(msg).payload;
      await effect(client, msg.id, seq);
      if ((seq - base) % 97 === 50 && failures < 4) {
        failures++;
        throw new Error('transient failure inside a batch');
      }
      // slow enough that deliveries pile up behind the one in hand
      if ((seq - base) % 50 === 0) await new Promise((r) => setTimeout(r, 20));
      if (seq - base === N / 2 && !atGate) {
        atGate = true;
        await gate;
      }
    },
    hooks: {
      afterCommit: (msg) => {
        committedOrder.push((msg.payload as { seq: number }).seq - base);
        committedAt.push(Date.now());
      },
    },
  });
  for (let from = base; from < base + N; from += 100) await publish(m, queue, from, from + 100);
  // the broker drops the connection mid-stream: unacked deliveries (committed or not) come again
  await waitFor(() => atGate, { what: 'the middle message in hand' });
  const cutAt = Date.now();
  await env.vhost.closeConnections({ namePrefix: `batch-${queue}` });
  expect(committedOrder.length).toBeLessThan(N);
  openGate();
  // a bound on a hang, not a speed check (alone this takes 1-5 s); a timeout says where the flow stood
  await waitFor(() => committedOrder.length >= N, { timeoutMs: 90_000, what: `all ${N} messages` }).catch(
    async (err: Error) => {
      const unsent = await count(env.pool, `SELECT count(*) FROM svc.outbox WHERE sent_at IS NULL`);
      const gaps = committedAt.slice(1).map((t, i) => ({ ms: t - committedAt[i]!, after: committedOrder[i] }));
      const longest = gaps.sort((a, b) => b.ms - a.ms).slice(0, 3);
      throw new Error(
        `${err.message}: ${committedOrder.length} committed (last seq ${committedOrder.at(-1)}), ${unsent} outbox ` +
          `rows unsent, cut at +${cutAt - (committedAt[0] ?? cutAt)} ms, longest gaps ${JSON.stringify(longest)}\n` +
          logged.slice(-40).join('\n'),
      );
    },
  );

  expect(committedOrder).toEqual(Array.from({ length: N }, (_, i) => i));
  const rows = await effectsOf(base, base + N);
  expect(rows).toHaveLength(N);
  expect(rows.filter((r) => r.applied !== 1)).toEqual([]);
  expect(failures).toBeGreaterThan(0);
});
