/**
 * Order entry's group commit: the `pending` → `new` + PlaceOrderV1 statements of one market are batched. Every
 * order is still accepted exactly once, in an order the outbox keeps, and a batch that fails half-way is rolled back
 * whole and retried order by order without doubling a command.
 */
import { waitForLockWait } from '@exchange/db/testing';
import { createHarness, type Harness } from './testing/harness.ts';

let h: Harness;
const batches: string[][] = [];

beforeAll(async () => {
  h = await createHarness({
    beforeFinalize: async (ids) => {
      batches.push(ids);
    },
  });
});
afterAll(async () => {
  await h?.close();
});

const body = (i: number, over: Record<string, unknown> = {}) => ({
  market: 'BTC-USD',
  side: i % 2 ? 'buy' : 'sell',
  type: 'limit',
  price: String(i % 2 ? 50_000 - i : 70_000 + i),
  quantity: '0.01',
  clientOrderId: `batch-${i}-${Math.random()}`,
  ...over,
});
const placeCommands = async () =>
  (
    await h.db.pool.query<{ order_id: string }>(
      `SELECT message->'payload'->>'orderId' AS order_id FROM orders.outbox
        WHERE type = 'engine.place-order' AND routing_key = 'orders.BTC-USD' ORDER BY sequence`,
    )
  ).rows.map((r) => r.order_id);

async function placeConcurrently(n: number, over: (i: number) => Record<string, unknown> = () => ({})) {
  const users = await Promise.all(Array.from({ length: 4 }, () => h.user()));
  const res = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      h.app.inject({ method: 'POST', url: '/api/v1/orders', headers: users[i % 4]!.auth, payload: body(i, over(i)) }),
    ),
  );
  expect(res.map((r) => r.statusCode)).toEqual(Array(n).fill(201));
  return res.map((r) => (r.json() as { id: string }).id);
}

it('concurrent orders of a market share transactions; each is new with one command, in batch order', async () => {
  batches.length = 0;
  const before = await placeCommands();
  const ids = await placeConcurrently(40);
  expect(Math.max(...batches.map((b) => b.length))).toBeGreaterThan(1);
  const commands = (await placeCommands()).slice(before.length);
  // exactly one PlaceOrderV1 per order ...
  expect([...commands].sort()).toEqual([...ids].sort());
  // ... and the outbox (hence the engine) sees them in the order the batches committed them, across batch boundaries
  expect(commands).toEqual(batches.flat());
  const { rows } = await h.db.pool.query(`SELECT DISTINCT status FROM orders.orders WHERE id = ANY($1::uuid[])`, [ids]);
  expect(rows).toEqual([{ status: 'new' }]);
});

it('orders placed one after the other keep their order in the outbox', async () => {
  const u = await h.user();
  const before = (await placeCommands()).length;
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await h.app.inject({ method: 'POST', url: '/api/v1/orders', headers: u.auth, payload: body(i) });
    ids.push((r.json() as { id: string }).id);
  }
  expect((await placeCommands()).slice(before)).toEqual(ids);
});

it('a batch that fails half-way rolls back whole; its orders are retried one by one, none doubled', async () => {
  // A real failure inside the batch's statement, after its UPDATE and its outbox rows: a trigger (this test file's own
  // database) refuses the first insert of more than one command. Sequences, which a rollback does not undo, make it
  // fire once and record how many of the batch's orders the failed statement had already made `new`.
  await h.db.pool.query(`
    CREATE SEQUENCE orders.test_batch_faults;
    CREATE SEQUENCE orders.test_batch_marked MINVALUE 0;
    CREATE FUNCTION orders.test_batch_fault() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF (SELECT count(*) FROM new_rows WHERE type = 'engine.place-order') > 1
         AND nextval('orders.test_batch_faults') = 1 THEN
        PERFORM setval('orders.test_batch_marked', (
          SELECT count(*) FROM orders.orders o JOIN new_rows r ON o.id = (r.message->'payload'->>'orderId')::uuid
           WHERE o.status = 'new'), true);
        RAISE EXCEPTION 'injected fault inside the batch, after its UPDATE';
      END IF;
      RETURN NULL;
    END $$;
    CREATE TRIGGER test_batch_fault AFTER INSERT ON orders.outbox REFERENCING NEW TABLE AS new_rows
      FOR EACH STATEMENT EXECUTE FUNCTION orders.test_batch_fault();`);
  try {
    batches.length = 0;
    const before = await placeCommands();
    const ids = await placeConcurrently(30);
    const seq = async (name: string) =>
      (
        await h.db.pool.query<{ v: string; called: boolean }>(
          `SELECT last_value::text AS v, is_called AS called FROM ${name}`,
        )
      ).rows[0]!;
    expect((await seq('orders.test_batch_faults')).called).toBe(true); // the fault fired
    const failed = batches.find((b) => b.length > 1)!;
    // the failed statement had made all of its orders `new` before it failed: half-way, then rolled back
    expect(Number((await seq('orders.test_batch_marked')).v)).toBe(failed.length);
    // its orders were applied again, each alone
    for (const id of failed) expect(batches.filter((b) => b.length === 1 && b[0] === id)).toHaveLength(1);
    const commands = (await placeCommands()).slice(before.length);
    expect([...commands].sort()).toEqual([...ids].sort());
    const { rows } = await h.db.pool.query(`SELECT DISTINCT status FROM orders.orders WHERE id = ANY($1::uuid[])`, [
      ids,
    ]);
    expect(rows).toEqual([{ status: 'new' }]);
    // one hold per order in the wallet
    const holds = (await h.wallet.holds()).filter((x) => ids.includes(x.holdId));
    expect(holds).toHaveLength(30);
  } finally {
    await h.db.pool.query(`DROP TRIGGER test_batch_fault ON orders.outbox; DROP FUNCTION orders.test_batch_fault();
      DROP SEQUENCE orders.test_batch_faults; DROP SEQUENCE orders.test_batch_marked`);
  }
});

/** Batches and orders of one stage so far, from `orders_entry_batch_size` on /metrics. */
async function entryBatches(stage: 'entry' | 'context' | 'insert' | 'finalize') {
  const text = (await h.app.inject({ method: 'GET', url: '/metrics' })).body;
  const value = (suffix: string) =>
    Number(
      text.match(new RegExp(`^orders_entry_batch_size_${suffix}\\{[^}]*stage="${stage}"[^}]*\\} (\\d+)`, 'm'))?.[1] ??
        0,
    );
  return { batches: value('count'), orders: value('sum') };
}
const STAGES = ['entry', 'context', 'insert'] as const;
const stageCounts = async () =>
  Object.fromEntries(await Promise.all(STAGES.map(async (s) => [s, await entryBatches(s)] as const)));

/** A stop-limit order: not a plain limit order, so its reads and its insert are two statements. */
const stopLimit = (i: number) => {
  const price = String(i % 2 ? 50_000 - i : 70_000 + i);
  return { stopPrice: price, price };
};

it('concurrent plain limit orders share one statement for their reads and their pending insert', async () => {
  const before = await stageCounts();
  await placeConcurrently(40);
  const now = await stageCounts();
  expect(now.entry!.orders - before.entry!.orders).toBe(40);
  // fewer statements than orders: some entries shared one
  expect(now.entry!.batches - before.entry!.batches).toBeLessThan(40);
  // and no separate read or insert
  for (const stage of ['context', 'insert'] as const) expect(now[stage]).toEqual(before[stage]);
});

it('one plain limit order alone: one statement for its reads and insert', async () => {
  const u = await h.user();
  const before = await stageCounts();
  const r = await h.app.inject({ method: 'POST', url: '/api/v1/orders', headers: u.auth, payload: body(1) });
  expect(r.statusCode).toBe(201);
  const now = await stageCounts();
  expect([now.entry!.batches - before.entry!.batches, now.entry!.orders - before.entry!.orders]).toEqual([1, 1]);
  for (const stage of ['context', 'insert'] as const) expect(now[stage]).toEqual(before[stage]);
});

it('concurrent other orders share their context read and their pending insert', async () => {
  const before = await stageCounts();
  await placeConcurrently(40, stopLimit);
  const now = await stageCounts();
  for (const stage of ['context', 'insert'] as const) {
    expect(now[stage]!.orders - before[stage]!.orders).toBe(40);
    expect(now[stage]!.batches - before[stage]!.batches).toBeLessThan(40);
  }
  expect(now.entry).toEqual(before.entry);
});

it('one clientOrderId twice in one batch: one order; the same body is replayed, another body is refused', async () => {
  const u = await h.user();
  const same = body(1, { clientOrderId: `dup-${Math.random()}` });
  const clash = body(3, { clientOrderId: `clash-${Math.random()}` });
  const send = (payload: Record<string, unknown>) =>
    h.app.inject({ method: 'POST', url: '/api/v1/orders', headers: u.auth, payload });
  const res = await Promise.all([
    send(same),
    send(same),
    send(clash),
    send({ ...clash, quantity: '0.02' }),
    ...Array.from({ length: 6 }, (_, i) => send(body(10 + i))),
  ]);
  const [a, b, c, d] = res;
  expect([a!.statusCode, b!.statusCode].sort()).toEqual([200, 201]);
  expect(a!.json().id).toBe(b!.json().id);
  expect([c!.statusCode, d!.statusCode].sort()).toEqual([201, 409]);
  expect([c, d].find((r) => r!.statusCode === 409)!.json().error.code).toBe('CLIENT_ORDER_ID_CONFLICT');
  for (const r of res.slice(4)) expect(r.statusCode).toBe(201);
  const { rows } = await h.db.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM orders.orders WHERE user_id = $1 AND client_order_id = ANY($2::text[])`,
    [u.id, [same.clientOrderId, clash.clientOrderId]],
  );
  expect(rows[0]!.n).toBe(2);
  expect(await h.outboxPayloads('engine.place-order', a!.json().id)).toHaveLength(1);
});

it.each([
  ['a plain limit order', 'entry', () => ({})],
  ['another order', 'insert', stopLimit],
] as const)(
  'a pending-insert batch that fails (%s) is rolled back whole and retried order by order: only the bad one fails',
  async (_kind, stage, over) => {
    // A real failure inside the multi-row INSERT: a trigger (this test file's own database) refuses one row; a
    // sequence, which a rollback does not undo, counts every row the INSERTs attempted.
    await h.db.pool.query(`
    CREATE SEQUENCE orders.test_insert_attempts;
    CREATE FUNCTION orders.test_poison() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM nextval('orders.test_insert_attempts');
      IF NEW.client_order_id LIKE 'poison-%' THEN RAISE EXCEPTION 'injected insert fault'; END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER test_poison BEFORE INSERT ON orders.orders FOR EACH ROW EXECUTE FUNCTION orders.test_poison();`);
    // Hold the inserts back until every request is queued at the insert's stage, so that the poisoned order shares a
    // batch with others: SHARE ROW EXCLUSIVE blocks INSERT but not the reads before it. The stop-limit orders' separate
    // reads all pass it; the plain ones' first statement waits for it, and the others queue behind that one.
    const lock = await h.db.pool.connect();
    try {
      await lock.query('BEGIN');
      await lock.query('LOCK TABLE orders.orders IN SHARE ROW EXCLUSIVE MODE');
      const users = await Promise.all(Array.from({ length: 4 }, () => h.user()));
      const before = await placeCommands();
      const readsBefore = (await entryBatches('context')).orders;
      const pending = Array.from({ length: 20 }, (_, i) =>
        h.app.inject({
          method: 'POST',
          url: '/api/v1/orders',
          headers: users[i % 4]!.auth,
          payload: body(i, { ...over(i), ...(i === 12 ? { clientOrderId: `poison-${Math.random()}` } : {}) }),
        }),
      );
      if (stage === 'entry') {
        // the first statement waits on the lock; the other requests (in this process) queue behind it meanwhile
        expect(await waitForLockWait(h.db.pool, {})).toHaveLength(1);
        await new Promise((r) => setTimeout(r, 300));
      } else {
        for (let i = 0; i < 100 && (await entryBatches('context')).orders - readsBefore < 20; i++) {
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      await lock.query('COMMIT');
      const res = await Promise.all(pending);
      expect(res.map((r) => r.statusCode)).toEqual(res.map((_, i) => (i === 12 ? 500 : 201)));
      const ids = res.filter((r) => r.statusCode === 201).map((r) => (r.json() as { id: string }).id);
      // every good order once, with one command; nothing of the bad one
      const commands = (await placeCommands()).slice(before.length);
      expect([...commands].sort()).toEqual([...ids].sort());
      const { rows } = await h.db.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM orders.orders WHERE client_order_id LIKE 'poison-%'`,
      );
      expect(rows[0]!.n).toBe(0);
      // the failed batch's rows before the bad one were attempted twice: once in the batch, once alone
      const attempts = await h.db.pool.query<{ n: string }>(
        `SELECT last_value::text AS n FROM orders.test_insert_attempts`,
      );
      expect(Number(attempts.rows[0]!.n)).toBeGreaterThan(21);
    } finally {
      lock.release();
      await h.db.pool.query(`DROP TRIGGER test_poison ON orders.orders; DROP FUNCTION orders.test_poison();
      DROP SEQUENCE orders.test_insert_attempts`);
    }
  },
);

it('holds of concurrent entries go to the wallet in one call; a wallet without that route gets them one by one', async () => {
  const paths = (from: number) => h.wallet.calls.slice(from).map((c) => `${c.path} ${c.status}`);
  let from = h.wallet.calls.length;
  await placeConcurrently(20);
  expect(paths(from)).toContain('/internal/holds/batch 200');
  from = h.wallet.calls.length;
  h.wallet.setBatchRoute(false);
  try {
    const ids = await placeConcurrently(20);
    const calls = paths(from);
    expect(calls).toContain('/internal/holds/batch 404');
    // every hold then made alone, once
    expect(calls.filter((c) => c === '/internal/holds 201')).toHaveLength(20);
    const holds = (await h.wallet.holds()).filter((x) => ids.includes(x.holdId));
    expect(holds).toHaveLength(20);
  } finally {
    h.wallet.setBatchRoute(true);
  }
});
