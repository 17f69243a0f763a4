/**
 * The demo market maker against the real stack: within 30 s of starting it every market has trades, a two-sided
 * book, a ticker and candles; every order it placed is on the market's grid (tick, lot, min/max quantity, minimum
 * notional, price band) and none was rejected; its orders carry the demo prefix and belong to its own accounts.
 */
import { ExchangeClient, type Market, type Order } from '@exchange/sdk';
import { DEMO_ACCOUNTS, DEMO_ORDER_PREFIX, Grid, runMarketMaker } from '@exchange/stack';
import { eventually, startTestStack, type TestStack } from './harness.ts';

let t: TestStack;
const stop = new AbortController();
let running: ReturnType<typeof runMarketMaker>;
const warnings: string[] = [];
const progress: string[] = [];
const PASSWORD = 'Demo-test-password-42';

beforeAll(async () => {
  t = await startTestStack();
}, 240_000);

afterAll(async () => {
  stop.abort();
  await running?.catch(() => undefined);
  await t?.close();
});

test('trades on every market within 30 s, every order within the market rules', async () => {
  const started = Date.now();
  running = runMarketMaker({
    baseUrl: t.url('gateway'),
    password: PASSWORD,
    signal: stop.signal,
    headers: { 'x-forwarded-for': '198.51.100.77' },
    log: (level, msg) => {
      if (level === 'warn') warnings.push(msg);
      progress.push(`${((Date.now() - started) / 1000).toFixed(1)}s ${level} ${msg}`);
    },
  });
  const publicClient = t.client();
  const markets = await publicClient.markets();
  expect(markets.length).toBeGreaterThan(0);

  let counts: number[] = [];
  await eventually(
    async () => {
      counts = (await Promise.all(markets.map((m) => publicClient.trades(m.symbol, { limit: 5 })))).map(
        (x) => x.length,
      );
      return counts.every((n) => n > 0);
    },
    30_000,
    'a trade on every market',
  ).catch((err: Error) => {
    throw new Error(`${err.message}\ntrades per market: ${counts.join(', ')}\nmarket maker: ${progress.join('\n')}`);
  });
  const elapsed = Date.now() - started;
  expect(elapsed).toBeLessThan(30_000);

  // The market data a newcomer looks at is alive.
  for (const m of markets) {
    // The maker's own crossing order can take one side's quote just before a trade shows; its next quote refills it,
    // and the book snapshot that shows it follows within the engine's book throttle.
    let book = await publicClient.book(m.symbol);
    await eventually(
      async () => {
        book = await publicClient.book(m.symbol);
        return book.bids.length > 0 && book.asks.length > 0;
      },
      10_000,
      `a two-sided book on ${m.symbol}`,
    ).catch(() => undefined);
    const [ticker, candles] = await Promise.all([
      publicClient.ticker(m.symbol),
      publicClient.candles(m.symbol, { interval: '1m' }),
    ]);
    expect(book.bids.length).toBeGreaterThan(0);
    expect(book.asks.length).toBeGreaterThan(0);
    expect(Number(book.bids[0]![0]) < Number(book.asks[0]![0])).toBe(true);
    expect(ticker).toEqual(expect.objectContaining({ market: m.symbol }));
    expect(candles.candles.length).toBeGreaterThan(0);
  }

  stop.abort();
  const stats = await running;
  expect(stats.errors).toBe(0);
  expect(warnings).toEqual([]);
  expect(stats.trades).toBeGreaterThanOrEqual(markets.length);

  // Every order of both demo accounts, read back through the API as those accounts.
  const after = await publicClient.markets();
  for (const email of Object.values(DEMO_ACCOUNTS)) {
    const c = t.client();
    const login = await c.login({ email, password: PASSWORD });
    expect(login.user.email).toBe(email);
    const orders = await allOrders(c);
    expect(orders.length).toBeGreaterThan(0);
    for (const o of orders) {
      const m = after.find((x) => x.symbol === o.market)!;
      // Never rejected (a post-only quote that would have crossed, a rule broken): only these outcomes.
      expect({ id: o.clientOrderId, status: o.status }).toEqual({
        id: expect.stringMatching(new RegExp(`^${DEMO_ORDER_PREFIX}`)),
        status: expect.stringMatching(/^(new|partially_filled|filled|cancelled)$/),
      });
      expectWithinRules(m, o);
    }
  }
}, 120_000);

async function allOrders(c: ExchangeClient): Promise<Order[]> {
  const all: Order[] = [];
  let cursor: string | undefined;
  do {
    const page = await c.orders({ limit: 100, ...(cursor ? { cursor } : {}) });
    all.push(...page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return all;
}

/** The market's static rules, in exact integer arithmetic, plus the price band around the final last price. */
function expectWithinRules(m: Market, o: Order): void {
  const grid = new Grid(m);
  const ticks = grid.ticks(o.price!);
  const what = `${o.market} ${o.side} ${o.quantity} @ ${o.price}`;
  // On the tick grid: the price survives a round trip through ticks unchanged.
  expect({ what, price: grid.price(ticks) }).toEqual({ what, price: trimZeros(o.price!) });
  const lots = grid.lots(o.quantity);
  expect({ what, quantity: grid.quantity(lots) }).toEqual({ what, quantity: trimZeros(o.quantity) });
  expect({ what, aboveMin: lots >= grid.minLots, belowMax: lots <= grid.maxLots }).toEqual({
    what,
    aboveMin: true,
    belowMax: true,
  });
  expect({ what, notionalOk: lots >= grid.minLotsAt(ticks) }).toEqual({ what, notionalOk: true });
  // The band moves with each trade; the demo's prices stay well inside ±band of where the market ended.
  const last = grid.ticks(m.lastPrice!);
  const band = (last * BigInt(m.priceBandBps)) / 10_000n;
  expect({ what, inBand: ticks >= last - band && ticks <= last + band }).toEqual({ what, inBand: true });
}

function trimZeros(v: string): string {
  return v.includes('.') ? v.replace(/\.?0+$/, '') : v;
}
