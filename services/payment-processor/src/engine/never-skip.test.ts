// A market's commands are never skipped. A transient failure (lock timeout) is waited out; a command that keeps
// failing for another reason (here an injected data_corrupted error) HALTS the market — recorded in engine_state,
// engine_halted = 1, not dead-lettered, the other market trades on — until an admin resumes it, and then it is applied
// in its place. A command whose content is invalid is rejected as an engine outcome (order rejected, hold released),
// not dead-lettered. A cancel sent twice is applied once.
import { ROUTES } from '@exchange/contracts/trading';
import type { Envelope } from '@exchange/contracts';
import { CancelOrderV1, PlaceOrderV1 } from '@exchange/contracts/trading';
import type { Runtime } from '../runtime.ts';
import { generateCommands, orderId, userId } from '../testing/commands.ts';
import { Bus, type Env, journal, lastSeq, sleep, startInProcess, useEngineEnv, waitFor } from '../testing/harness.ts';
import type { JournalCommand } from './core.ts';
import { referenceRun } from '../testing/reference.ts';
import { loadCatalog } from '@exchange/contracts/markets';

const QUEUE = ROUTES.ordersQueue('BTC-USD');
let env: Env;
let bus: Bus;
let rt: Runtime | undefined;

useEngineEnv('pp_neverskip', {
  ready: (e, b) => {
    env = e;
    bus = b;
  },
  runtime: () => rt,
});

async function failOn(messageId: string, sqlstate: string): Promise<void> {
  await env.db.pool.query(`
    CREATE OR REPLACE FUNCTION payment.test_fail() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.message_id = '${messageId}' THEN RAISE EXCEPTION 'injected failure' USING ERRCODE = '${sqlstate}'; END IF;
      RETURN NEW;
    END $$;
    DROP TRIGGER IF EXISTS test_fail ON payment.engine_journal;
    CREATE TRIGGER test_fail BEFORE INSERT ON payment.engine_journal FOR EACH ROW EXECUTE FUNCTION payment.test_fail();`);
}

const stopFailing = () => env.db.pool.query('DROP TRIGGER IF EXISTS test_fail ON payment.engine_journal');
const consumed = async () =>
  Number(
    (await env.db.pool.query<{ n: string }>('SELECT count(*) AS n FROM payment.inbox WHERE queue = $1', [QUEUE]))
      .rows[0]!.n,
  );
const deadLetters = async () =>
  Number((await env.db.pool.query<{ n: string }>('SELECT count(*) AS n FROM payment.dead_letters')).rows[0]!.n);

it('waits out transient failures, halts instead of skipping, resumes in place, rejects invalid content', async () => {
  rt = await startInProcess(env, { MARKETS: 'BTC-USD,ETH-USD', ENGINE_HALT_AFTER_FAILURES: '2' });
  const cmds = generateCommands(12, { seed: 21 });

  // 1. transient: the third command hits a lock timeout for 3 s — one failure would halt if it were counted
  await failOn(cmds[2]!.id, '55P03');
  await bus.publish(QUEUE, cmds.slice(0, 5));
  await waitFor('transient failures seen', async () =>
    /messages_consumed_total\{queue="orders.BTC-USD",outcome="transient"\} [1-9]/.test(await rt!.registry.metrics()),
  );
  await sleep(3_000);
  await stopFailing();
  await waitFor('first five consumed', async () => (await consumed()) === 5);
  expect((await rt.engines.status()).find((s) => s.market === 'BTC-USD')!.halted).toBeNull();

  // 2. a command that keeps failing for a reason that is neither transient nor its content: the market halts
  await failOn(cmds[6]!.id, 'XX001');
  await bus.publish(QUEUE, cmds.slice(5));
  await waitFor('BTC-USD halted', async () => {
    const { rows } = await env.db.pool.query<{ halted_reason: string | null }>(
      `SELECT halted_reason FROM payment.engine_state WHERE market = 'BTC-USD'`,
    );
    return rows[0]!.halted_reason ?? undefined;
  });
  const halted = (await rt.engines.status()).find((s) => s.market === 'BTC-USD')!;
  expect(halted).toMatchObject({ consumer: 'not_consuming', halted: expect.stringContaining(cmds[6]!.id) });
  expect(await rt.registry.metrics()).toMatch(/engine_halted\{market="BTC-USD"\} 1/);
  const seqAtHalt = await lastSeq(env.db);
  await sleep(1_500);
  expect(await lastSeq(env.db)).toBe(seqAtHalt); // nothing behind it overtook it
  expect(await consumed()).toBe(6);
  expect(await deadLetters()).toBe(0);
  // the other market trades on
  const eth = generateCommands(3, { seed: 22, market: 'ETH-USD' });
  await bus.publish(ROUTES.ordersQueue('ETH-USD'), eth);
  const ethApplied = referenceRun(loadCatalog().market('ETH-USD')!, eth).commands.length;
  await waitFor('ETH-USD applied', async () => (await lastSeq(env.db, 'ETH-USD')) === ethApplied);

  // 3. fixed and resumed by an admin: the halted command is applied in its place, then the rest
  expect(await rt.engines.resume('ETH-USD')).toBe('not_halted');
  await stopFailing();
  expect(await rt.engines.resume('BTC-USD')).toBe('resumed');
  await waitFor('all commands consumed', async () => (await consumed()) === cmds.length, 30_000);
  const ids = (await journal(env.db)).map((r) => r.message_id);
  const published = cmds.map((c) => c.id);
  expect(ids).toEqual(published.filter((id) => ids.includes(id)));
  expect(ids).toContain(cmds[6]!.id);
  expect(await deadLetters()).toBe(0);
  expect(await rt.registry.metrics()).toMatch(/engine_halted\{market="BTC-USD"\} 0/);
  expect((await rt.engines.status()).find((s) => s.market === 'BTC-USD')!.halted).toBeNull();

  // 4. invalid content: a place for another market on this queue, and one that fails the contract
  const u = userId(21, 99);
  const wrongMarket = PlaceOrderV1.create(
    {
      orderId: orderId(21, 900),
      userId: u,
      market: 'ETH-USD',
      side: 'buy',
      type: 'limit',
      priceTicks: '100',
      quantityLots: '1',
      timeInForce: 'GTC',
      postOnly: false,
      holdAmount: '100',
      acceptedAt: '2026-01-01T00:00:00.000Z',
    },
    { producer: 'order' },
  );
  const invalid = {
    ...wrongMarket,
    id: '0a6c0b9e-5f1e-4c47-9a51-3c1b1c7e0001',
    payload: { ...wrongMarket.payload, orderId: orderId(21, 901), market: 'BTC-USD', quantityLots: 'lots' },
  } as Envelope;
  const before = await consumed();
  await bus.publish(QUEUE, [wrongMarket, invalid]);
  await waitFor('invalid commands consumed', async () => (await consumed()) === before + 2);
  const rejects = (await journal(env.db)).map((r) => r.command as JournalCommand).filter((c) => c.kind === 'reject');
  expect(rejects.map((c) => c.kind === 'reject' && c.orderId)).toEqual([orderId(21, 900), orderId(21, 901)]);
  for (const id of [orderId(21, 900), orderId(21, 901)]) {
    await waitFor(`${id} rejected and released`, async () => {
      const updated = bus.events.find(
        (e) => e.message.type === 'engine.order-updated' && (e.message.payload as { orderId: string }).orderId === id,
      );
      const release = bus.wallet.find(
        (e) => e.message.type === 'wallet.release-hold' && (e.message.payload as { holdId: string }).holdId === id,
      );
      return updated && release ? true : undefined;
    });
    const updated = bus.events.find((e) => (e.message.payload as { orderId?: string }).orderId === id)!;
    expect(updated.message.payload).toMatchObject({ status: 'rejected', reason: 'invalid_command' });
  }
  expect(await deadLetters()).toBe(0);

  // 5. a cancel re-sent (another message id, same order) is applied once
  const resting = cmds.find((c) => c.type === PlaceOrderV1.type)!.payload as { orderId: string; userId: string };
  const cancel = (n: number) =>
    CancelOrderV1.create(
      {
        orderId: resting.orderId,
        userId: resting.userId,
        market: 'BTC-USD',
        reason: 'user',
        requestedAt: '2026-01-01T00:00:00.000Z',
      },
      { producer: 'order', id: `0a6c0b9e-5f1e-4c47-9a51-3c1b1c7e01${n}0` },
    );
  const n0 = await consumed();
  await bus.publish(QUEUE, [cancel(1), cancel(2)]);
  await waitFor('both cancels consumed', async () => (await consumed()) === n0 + 2);
  const cancels = (await journal(env.db)).filter((r) => {
    const c = r.command as JournalCommand;
    return c.kind === 'cancel' && c.cancel.orderId === resting.orderId && r.message_id.startsWith('0a6c0b9e');
  });
  expect(cancels.length).toBeLessThanOrEqual(1);
  expect(await deadLetters()).toBe(0);
}, 120_000);
