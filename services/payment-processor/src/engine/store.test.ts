// The engine's write of a batch (journal rows, position, outbox messages) in one statement whose text does not depend
// on the batch: every row as given, the outbox rows in the order given, the relay woken only when there is a message
// (NOTIFY), or, when the relay runs in this process, by the writer once the transaction has committed.
import pg from 'pg';
import type { Envelope } from '@exchange/contracts';
import { createTestDatabase, recordStatements, type TestDatabase } from '@exchange/db/testing';
import { outboxChannel } from '@exchange/messaging';
import { registerActiveRelay, sessionDatabase } from '@exchange/messaging/testing';
import { runMigrations } from '../migrate.ts';
import { PAYMENT_SCHEMA } from '../db/schema.ts';
import type { OutgoingMessage } from './messages.ts';
import { PostgresEngineStore, type AppliedCommand } from './store.ts';
import type { JournalCommand } from './core.ts';

let db: TestDatabase;
let store: PostgresEngineStore;
let listener: pg.Client;
const notified: string[] = [];

beforeAll(async () => {
  db = await createTestDatabase('pp_store');
  await runMigrations(db.pool);
  store = new PostgresEngineStore(db.pool);
  listener = new pg.Client({ connectionString: db.url });
  await listener.connect();
  listener.on('notification', (n) => notified.push(n.channel));
  await listener.query(`LISTEN "${outboxChannel(PAYMENT_SCHEMA)}"`);
  await store.transaction((tx) => store.init(tx, 'BTC-USD'));
});

afterAll(async () => {
  await listener.end();
  await db.drop();
});

const AT = new Date('2026-12-05T10:00:00.123Z');
const applied = (seq: number): AppliedCommand => ({
  seq,
  messageId: `cmd-${seq}`,
  // quotes, backslashes and non-ASCII survive the trip as JSON
  command: { kind: 'cancel', orderId: `o-${seq}`, note: 'a "quoted" \\ value ü' } as unknown as JournalCommand,
  events: [{ type: 'cancelled', seq }],
  bookSeq: seq * 10,
  appliedBy: 'replica-a',
  at: new Date(AT.getTime() + seq),
  epoch: 'epoch-1',
});
const message = (i: number): OutgoingMessage => ({
  exchange: 'market.events',
  routingKey: `order.cancelled.BTC-USD`,
  message: { id: `msg-${i}`, type: 'order.cancelled', version: 1, payload: { i } } as unknown as Envelope,
});

/** Runs `fn` in a transaction, returning the texts of the statements it sent. */
const recorded = (fn: (tx: pg.PoolClient) => Promise<void>) =>
  store.transaction((tx) => recordStatements(tx, () => fn(tx)));

const waitForNotifications = () => new Promise((r) => setTimeout(r, 300));

it('writes a batch of any size with one text: every journal row, the position, the messages in order', async () => {
  const one = await recorded((tx) => store.append(tx, 'BTC-USD', [applied(1)], [message(1)]));
  const three = await recorded((tx) =>
    store.append(tx, 'BTC-USD', [applied(2), applied(3), applied(4)], [2, 3, 4, 5, 6, 7, 8].map(message)),
  );
  expect(one).toHaveLength(1);
  expect(three).toEqual(one);

  const { rows: journal } = await db.pool.query(
    `SELECT seq::int, message_id, command, events, book_seq::int, applied_by, applied_at
       FROM payment.engine_journal WHERE market = 'BTC-USD' ORDER BY seq`,
  );
  expect(journal).toEqual(
    [1, 2, 3, 4].map((seq) => {
      const a = applied(seq);
      return {
        seq,
        message_id: a.messageId,
        command: a.command,
        events: a.events,
        book_seq: a.bookSeq,
        applied_by: 'replica-a',
        applied_at: a.at,
      };
    }),
  );
  const { rows: state } = await db.pool.query(
    `SELECT last_seq::int, book_seq::int, epoch FROM payment.engine_state WHERE market = 'BTC-USD'`,
  );
  expect(state).toEqual([{ last_seq: 4, book_seq: 40, epoch: 'epoch-1' }]);
  const { rows: outbox } = await db.pool.query(
    `SELECT message_id, type, exchange, routing_key, message FROM payment.outbox ORDER BY sequence`,
  );
  expect(outbox).toEqual(
    [1, 2, 3, 4, 5, 6, 7, 8].map((i) => {
      const m = message(i);
      return {
        message_id: m.message.id,
        type: m.message.type,
        exchange: m.exchange,
        routing_key: m.routingKey,
        message: m.message,
      };
    }),
  );
  await waitForNotifications();
  expect(notified).toHaveLength(2);
});

it('wakes the relay only when the batch has messages, and enqueues with one text too', async () => {
  notified.length = 0;
  const before = (await db.pool.query('SELECT count(*)::int AS n FROM payment.outbox')).rows[0].n as number;
  const silent = await recorded((tx) => store.append(tx, 'BTC-USD', [applied(5)], []));
  await waitForNotifications();
  expect(notified).toEqual([]);
  expect((await db.pool.query('SELECT count(*)::int AS n FROM payment.outbox')).rows[0].n).toBe(before);
  expect(
    (await db.pool.query(`SELECT last_seq::int FROM payment.engine_state WHERE market = 'BTC-USD'`)).rows[0].last_seq,
  ).toBe(5);

  const withMessages = await recorded((tx) => store.append(tx, 'BTC-USD', [applied(6)], [message(9)]));
  expect(silent).toEqual(withMessages);

  const enqueued = await Promise.all(
    [[10], [11, 12, 13]].map((ids) => recorded((tx) => store.enqueue(tx, ids.map(message)))),
  );
  expect(enqueued[0]).toEqual(enqueued[1]);
  const { rows } = await db.pool.query<{ message_id: string }>(
    `SELECT message_id FROM payment.outbox WHERE message_id = ANY($1::text[]) ORDER BY sequence`,
    [['msg-11', 'msg-12', 'msg-13']],
  );
  expect(rows.map((r) => r.message_id)).toEqual(['msg-11', 'msg-12', 'msg-13']);
  await waitForNotifications();
  expect(notified).toHaveLength(3);
});

it('sends no NOTIFY when the relay runs in this process, and wakes it once the transaction has ended', async () => {
  notified.length = 0;
  const c = await db.pool.connect();
  const database = sessionDatabase(c)!;
  c.release();
  const pokes: string[] = [];
  const unregister = registerActiveRelay(PAYMENT_SCHEMA, { database, poke: () => pokes.push('poke') });
  try {
    const texts = await recorded(async (tx) => {
      await store.append(tx, 'BTC-USD', [applied(7)], [message(14)]);
      await store.enqueue(tx, [message(15)]);
      expect(pokes).toEqual([]); // not before the commit
    });
    expect(pokes).toEqual(['poke']);
    expect(texts.join('\n')).not.toMatch(/pg_notify/);
    const { rows } = await db.pool.query<{ message_id: string }>(
      `SELECT message_id FROM payment.outbox WHERE message_id = ANY($1::text[]) ORDER BY sequence`,
      [['msg-14', 'msg-15']],
    );
    expect(rows.map((r) => r.message_id)).toEqual(['msg-14', 'msg-15']);
  } finally {
    unregister();
  }
  await waitForNotifications();
  expect(notified).toEqual([]);
});
