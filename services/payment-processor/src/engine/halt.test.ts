// Fail-stop: a market whose journal no longer replays to the events it recorded is halted in the replica (its
// commands wait in the queue, nothing is applied on a wrong book) while the other markets keep trading.
import { ROUTES } from '@exchange/contracts/trading';
import { loadCatalog } from '@exchange/contracts/markets';
import type { Runtime } from '../runtime.ts';
import { referenceRun } from '../testing/reference.ts';
import { generateCommands } from '../testing/commands.ts';
import { Bus, type Env, lastSeq, startInProcess, stopInProcess, useEngineEnv, waitFor } from '../testing/harness.ts';

let env: Env;
let bus: Bus;
let rt: Runtime | undefined;
const catalog = loadCatalog();

useEngineEnv('pp_halt', {
  ready: (e, b) => {
    env = e;
    bus = b;
  },
  runtime: () => rt,
});

it('halts only the market whose journal diverges', async () => {
  const markets = { MARKETS: 'BTC-USD,ETH-USD' };
  rt = await startInProcess(env, markets);
  const btc = generateCommands(20, { seed: 3 });
  await bus.publish(ROUTES.ordersQueue('BTC-USD'), btc);
  const n = referenceRun(catalog.market('BTC-USD')!, btc).commands.length;
  await waitFor('BTC applied', async () => (await lastSeq(env.db)) === n);
  await stopInProcess(rt);
  rt = undefined;
  const seq = await lastSeq(env.db);
  // tamper with the journal (and drop the snapshots so it must be replayed)
  await env.db.pool.query(`UPDATE payment.engine_journal SET events = '[]' WHERE market = 'BTC-USD' AND seq = 5`);
  await env.db.pool.query(`DELETE FROM payment.engine_snapshots`);

  rt = await startInProcess(env, markets);
  const status = await rt.engines.status();
  expect(status.find((s) => s.market === 'BTC-USD')).toMatchObject({
    halted: expect.stringMatching(/replay of journal seq 5 produced different events/),
    consumer: 'not_consuming',
  });
  expect(status.find((s) => s.market === 'ETH-USD')).toMatchObject({ halted: null });
  expect(await rt.registry.metrics()).toMatch(/engine_halted\{market="BTC-USD"\} 1/);

  await bus.publish(ROUTES.ordersQueue('BTC-USD'), generateCommands(3, { seed: 4 }));
  const eth = generateCommands(3, { seed: 4, market: 'ETH-USD', mid: 30_000 });
  await bus.publish(ROUTES.ordersQueue('ETH-USD'), eth);
  const m = referenceRun(catalog.market('ETH-USD')!, eth).commands.length;
  await waitFor('ETH applied', async () => (await lastSeq(env.db, 'ETH-USD')) === m);
  expect(await lastSeq(env.db, 'BTC-USD')).toBe(seq);
});
