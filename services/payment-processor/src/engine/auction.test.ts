// The volatility guard's call auction through the engine host: the auction starts inside an order command, the host's
// timer journals the end_auction command (kind end_auction, the auction's startSeq), its uncross trades go out as
// settlements, and a restart that must replay the journal from the start reproduces the same events (a mismatch
// would halt the market).
import { writeFileSync } from 'node:fs';
import { DEFAULT_ASSETS, DEFAULT_MARKETS } from '@exchange/contracts/markets';
import { PlaceOrderV1, ROUTES } from '@exchange/contracts/trading';
import type { Runtime } from '../runtime.ts';
import { orderId, userId } from '../testing/commands.ts';
import {
  Bus,
  createEnv,
  journal,
  lastSeq,
  startInProcess,
  stopInProcess,
  waitFor,
  type Env,
} from '../testing/harness.ts';

let env: Env;
let bus: Bus;
let rt: Runtime | undefined;
const marketsFile = `/tmp/pp-auction-markets-${process.pid}.json`;

beforeAll(async () => {
  const markets = DEFAULT_MARKETS.map((m) =>
    m.symbol === 'BTC-USD' ? { ...m, volatilityGuard: { bandBps: 100, auctionSeconds: 1 } } : m,
  );
  writeFileSync(marketsFile, JSON.stringify({ assets: DEFAULT_ASSETS, markets }));
  env = await createEnv('pp_auction');
  bus = await Bus.open(env.vhost.url);
});

afterAll(async () => {
  if (rt) await stopInProcess(rt);
  await bus.close();
  await env.drop();
});

const place = (i: number, u: number, side: 'buy' | 'sell', priceTicks: string, quantityLots: string) =>
  PlaceOrderV1.create(
    {
      orderId: orderId(7, i),
      userId: userId(7, u),
      market: 'BTC-USD',
      side,
      type: 'limit',
      priceTicks,
      quantityLots,
      timeInForce: 'GTC',
      postOnly: false,
      holdAmount: '0',
      acceptedAt: new Date().toISOString(),
    },
    { producer: 'test' },
  );

it('an auction ends by a journaled command from the host timer and replays exactly', async () => {
  const config = { MARKETS: 'BTC-USD', MARKETS_FILE: marketsFile, SNAPSHOT_EVERY: '1000' };
  rt = await startInProcess(env, config);
  await bus.publish(ROUTES.ordersQueue('BTC-USD'), [
    place(1, 1, 'sell', '50000', '10'),
    place(2, 2, 'buy', '50000', '10'), // last price 50000: band 49500–50500
    place(3, 1, 'sell', '51000', '50'),
    place(4, 2, 'buy', '51000', '30'), // would print at 51000: auction
    place(5, 3, 'sell', '50500', '20'), // collected
  ]);
  // the timer (auctionSeconds 1) journals end_auction as the 6th command
  await waitFor('auction ended', async () => (await lastSeq(env.db)) === 6, 30_000);
  const rows = await journal(env.db);
  const events = (i: number) => rows[i]!.events as Array<{ type: string; seq: number }>;
  expect(events(3).map((e) => e.type)).toEqual(['accepted', 'auction_started']);
  const startSeq = events(3)[1]!.seq;
  expect(rows[5]!.command).toMatchObject({ kind: 'end_auction', startSeq });
  const trades = events(5).filter((e) => e.type === 'trade') as unknown as Array<{
    price: number;
    quantity: number;
    auction: boolean;
  }>;
  expect(trades.map((t) => [t.price, t.quantity, t.auction])).toEqual([
    [51000, 20, true],
    [51000, 10, true],
  ]);
  const engine = rt.engines.engines.get('BTC-USD')!;
  expect(engine.loaded?.orderBook.phase).toBe('continuous');
  expect(await engine.endAuction(startSeq)).toBe(false); // a late second timer does nothing
  expect(await lastSeq(env.db)).toBe(6);
  await waitFor(
    'uncross settlements',
    async () => bus.wallet.filter((m) => m.message.type === 'wallet.settle-trade').length === 3,
    30_000,
  );

  // replay from the start (no snapshots): the same events, or the market would halt
  await stopInProcess(rt);
  rt = undefined;
  await env.db.pool.query('DELETE FROM payment.engine_snapshots');
  rt = await startInProcess(env, config);
  const status = (await rt.engines.status()).find((s) => s.market === 'BTC-USD');
  expect(status).toMatchObject({ halted: null, loadedSeq: 6, phase: 'continuous' });
});
