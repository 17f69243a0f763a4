/**
 * Demo market maker for host mode: keeps every market's book, trades, ticker and candles alive so a newcomer sees a
 * working exchange in the first minute. It is an ordinary client: only the public API through @exchange/sdk, two
 * accounts of its own (a maker that quotes, a taker that trades against the quotes now and then, because
 * self-trade prevention stops one account trading with itself), every order's clientOrderId starting with `demo-`.
 *
 * Prices and quantities are integers of ticks and lots (exact, like the engine); a quote is always on the tick grid,
 * a whole number of lots within the market's min/max quantity, at or above its minimum notional and inside the price
 * band around the last trade.
 */
import { randomInt } from 'node:crypto';
import { ExchangeApiError, ExchangeClient, type Market } from '@exchange/sdk';
import { formatAmount, maxBig, minBig, parseAmount } from '@exchange/money';

export const DEMO_ACCOUNTS = {
  maker: 'demo-maker@exchange.local',
  taker: 'demo-taker@exchange.local',
} as const;
/** Every demo order's clientOrderId starts with this. */
export const DEMO_ORDER_PREFIX = 'demo-';

/** Where a market starts when it has never traded (a market not listed here waits for its first trade). */
export const DEFAULT_REFERENCE_PRICES: Record<string, string> = {
  'BTC-USD': '61000',
  'ETH-USD': '3000',
  'BTC-USDT': '61000',
};

/** What each demo account deposits (sandbox rail) and tops up to when an asset runs below a quarter of it. */
const FUNDING: Record<string, string> = { BTC: '200', ETH: '2000', USD: '20000000', USDT: '20000000' };
const DEFAULT_FUNDING = '1000000';

export type DemoLog = (level: 'debug' | 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void;

export interface MarketMakerOptions {
  /** The gateway, e.g. http://localhost:8000. */
  baseUrl: string;
  /** Password of both demo accounts (registered on first run, logged into afterwards). */
  password: string;
  signal: AbortSignal;
  /** Price levels quoted on each side (default 3). */
  levels?: number;
  /** How often each market's quotes are replaced around a moving reference (default 4 s). */
  requoteMs?: number;
  /** Mean time between demo trades on each market (default 8 s; the first comes right after the first quotes). */
  tradeEveryMs?: number;
  references?: Record<string, string>;
  /** Only these markets (default all). */
  markets?: string[];
  log?: DemoLog;
  /** Extra headers on every request (tests: a client IP behind the trusted gateway). */
  headers?: Record<string, string>;
}

/** One market's grid, all in integers: price = ticks × tickSize, quantity = lots × lotSize. */
export class Grid {
  readonly market: Market;
  private readonly priceScale: number;
  private readonly tickUnits: bigint;
  private readonly qtyScale: number;
  private readonly lotUnits: bigint;
  readonly minLots: bigint;
  readonly maxLots: bigint;
  private readonly minNotional: bigint;

  constructor(market: Market) {
    this.market = market;
    this.priceScale = decimals(market.tickSize);
    this.tickUnits = units(market.tickSize, this.priceScale);
    this.qtyScale = decimals(market.lotSize);
    this.lotUnits = units(market.lotSize, this.qtyScale);
    this.minLots = ceilDiv(units(market.minQuantity, this.qtyScale), this.lotUnits);
    this.maxLots = units(market.maxQuantity, this.qtyScale) / this.lotUnits;
    this.minNotional = units(market.minNotional, this.priceScale + this.qtyScale);
  }

  /** Ticks of a price on or off the grid, rounded down (or up) to it. */
  ticks(price: string, round: 'down' | 'up' = 'down'): bigint {
    return onGrid(price, this.priceScale, this.tickUnits, round);
  }

  /** Lots of a quantity, rounded down to the grid. */
  lots(quantity: string): bigint {
    return onGrid(quantity, this.qtyScale, this.lotUnits, 'down');
  }

  price(ticks: bigint): string {
    return trim(formatAmount(ticks * this.tickUnits, this.priceScale));
  }

  quantity(lots: bigint): string {
    return trim(formatAmount(lots * this.lotUnits, this.qtyScale));
  }

  /** Fewest lots at `ticks` that clear both the minimum quantity and the minimum notional. */
  minLotsAt(ticks: bigint): bigint {
    const perLot = ticks * this.tickUnits * this.lotUnits;
    const lots = perLot > 0n ? ceilDiv(this.minNotional, perLot) : this.minLots;
    return lots > this.minLots ? lots : this.minLots;
  }

  /** The price band in ticks [low, high] the server enforces now (none before the first trade). */
  band(): { low: bigint; high: bigint } | undefined {
    const b = this.market.priceBand;
    return b ? { low: this.ticks(b.low, 'up'), high: this.ticks(b.high) } : undefined;
  }
}

interface Book {
  grid: Grid;
  /** The moving mid the quotes sit around, in ticks. */
  ref: bigint;
  nextTradeAt: number;
  nextQuoteAt: number;
}

export interface MarketMakerStats {
  quotes: number;
  trades: number;
  errors: number;
}

/** Runs until `signal` aborts; resolves after cancelling the maker's open orders. */
export async function runMarketMaker(opts: MarketMakerOptions): Promise<MarketMakerStats> {
  const log: DemoLog = opts.log ?? (() => {});
  const levels = opts.levels ?? 3;
  const requoteMs = opts.requoteMs ?? 4_000;
  const tradeEveryMs = opts.tradeEveryMs ?? 8_000;
  const references = { ...DEFAULT_REFERENCE_PRICES, ...opts.references };
  const stats: MarketMakerStats = { quotes: 0, trades: 0, errors: 0 };
  const client = (): ExchangeClient =>
    new ExchangeClient({ baseUrl: opts.baseUrl, retries: 4, ...(opts.headers ? { headers: opts.headers } : {}) });
  const maker = client();
  const taker = client();
  const signal = opts.signal;

  const all = await until(() => maker.markets(), signal, log, 'the markets list');
  const markets = all.filter((m) => !opts.markets || opts.markets.includes(m.symbol));
  await Promise.all([
    until(() => account(maker, DEMO_ACCOUNTS.maker, opts.password, markets), signal, log, 'the maker account'),
    until(() => account(taker, DEMO_ACCOUNTS.taker, opts.password, markets), signal, log, 'the taker account'),
  ]);
  log('debug', 'demo accounts logged in and funded');

  const books = new Map<string, Book>();
  for (const m of markets) {
    const ref = m.lastPrice ?? references[m.symbol];
    if (!ref) {
      log('warn', `demo: ${m.symbol} has no trade and no reference price; not quoting it`, { market: m.symbol });
      continue;
    }
    const grid = new Grid(m);
    books.set(m.symbol, { grid, ref: grid.ticks(ref), nextTradeAt: 0, nextQuoteAt: 0 });
    // Quotes of an earlier run are stale; start from an empty side of the book.
    await maker.cancelAllOrders({ market: m.symbol }).catch(() => undefined);
  }
  log('info', `demo market maker quoting ${[...books.keys()].join(', ')} as ${DEMO_ACCOUNTS.maker}`, {
    markets: [...books.keys()],
    levels,
  });

  let seq = 0;
  const clientOrderId = (kind: string, symbol: string) =>
    `${DEMO_ORDER_PREFIX}${kind}-${symbol}-${Date.now().toString(36)}-${(seq++).toString(36)}`;

  const requote = async (b: Book) => {
    const m = (await maker.markets({ signal })).find((x) => x.symbol === b.grid.market.symbol);
    if (!m || m.halted) return;
    const grid = new Grid(m);
    b.grid = grid;
    const step = maxBig(1n, (b.ref * 5n) / 10_000n); // 5 bps between levels
    // A random walk of at most one step keeps the new best bid below the old best ask (quotes are post-only).
    b.ref += step * BigInt(randomInt(-1, 2));
    const band = grid.band();
    if (band) {
      // Keep every level inside the band: the mid stays `levels` steps away from its edges.
      const lo = band.low + step * BigInt(levels);
      const hi = band.high - step * BigInt(levels);
      if (lo <= hi) b.ref = b.ref < lo ? lo : b.ref > hi ? hi : b.ref;
    }
    await maker.cancelAllOrders({ market: m.symbol }, { signal });
    const quotes: Array<Parameters<ExchangeClient['placeOrder']>[0]> = [];
    for (let i = 1; i <= levels; i++) {
      for (const side of ['buy', 'sell'] as const) {
        const ticks = side === 'buy' ? b.ref - step * BigInt(i) : b.ref + step * BigInt(i);
        if (ticks < 1n || (band && (ticks < band.low || ticks > band.high))) continue;
        const lots = minBig(grid.minLotsAt(ticks) * BigInt(randomInt(2, 6)), grid.maxLots);
        quotes.push({
          market: m.symbol,
          side,
          type: 'limit',
          price: grid.price(ticks),
          quantity: grid.quantity(lots),
          postOnly: true,
          clientOrderId: clientOrderId('mm', m.symbol),
        });
      }
    }
    // Post-only at prices that never cross each other, so the order they reach the engine in does not matter.
    await Promise.all(quotes.map((q) => maker.placeOrder(q, { signal })));
    stats.quotes += quotes.length;
  };

  const trade = async (b: Book) => {
    const symbol = b.grid.market.symbol;
    const book = await taker.book(symbol, { depth: 1 }, { signal });
    const side = randomInt(2) === 0 ? 'buy' : 'sell';
    const level = side === 'buy' ? book.asks[0] : book.bids[0];
    if (!level) return false; // the quotes are not in the public book yet
    const ticks = b.grid.ticks(level[0]);
    const lots = b.grid.minLotsAt(ticks);
    await taker.placeOrder(
      {
        market: symbol,
        side,
        type: 'limit',
        timeInForce: 'IOC',
        price: b.grid.price(ticks),
        quantity: b.grid.quantity(lots),
        clientOrderId: clientOrderId('taker', symbol),
      },
      { signal },
    );
    stats.trades++;
    log('debug', `demo trade ${symbol} ${side} ${b.grid.quantity(lots)} @ ${level[0]}`, { market: symbol });
    return true;
  };

  // Each market on its own loop, so a slow market (or a slow machine) does not hold the others back; a due trade
  // goes before a due requote, so requotes never starve the trades.
  const marketLoop = async (b: Book) => {
    const symbol = b.grid.market.symbol;
    while (!signal.aborted) {
      const now = Date.now();
      try {
        if (b.nextTradeAt && now >= b.nextTradeAt) {
          b.nextTradeAt = (await trade(b)) ? Date.now() + jitter(tradeEveryMs) : Date.now() + 500;
        } else if (now >= b.nextQuoteAt) {
          await requote(b);
          b.nextQuoteAt = Date.now() + jitter(requoteMs);
          if (b.nextTradeAt === 0) {
            log('debug', `demo: first quotes on ${symbol}`);
            b.nextTradeAt = Date.now() + 500;
          }
        }
      } catch (err) {
        if (signal.aborted) break;
        stats.errors++;
        log('warn', `demo: ${symbol}: ${(err as Error).message}`, {
          market: symbol,
          ...(err instanceof ExchangeApiError ? { code: err.code, status: err.status } : {}),
        });
        if (err instanceof ExchangeApiError && err.status === 401) {
          await account(maker, DEMO_ACCOUNTS.maker, opts.password, []).catch(() => undefined);
          await account(taker, DEMO_ACCOUNTS.taker, opts.password, []).catch(() => undefined);
        }
        b.nextQuoteAt = Date.now() + requoteMs; // back off this market instead of hammering a failing call
      }
      await sleep(100, signal);
    }
  };

  const housekeeping = async () => {
    while (!signal.aborted) {
      await sleep(60_000, signal);
      if (signal.aborted) break;
      await Promise.all([topUp(maker, markets), topUp(taker, markets)]).catch((e: Error) =>
        log('warn', `demo: top-up failed: ${e.message}`),
      );
      log('info', `demo market maker: ${stats.quotes} quotes, ${stats.trades} trades so far`, { ...stats });
    }
  };

  await Promise.all([...[...books.values()].map(marketLoop), housekeeping()]);
  // Leave no demo quotes behind when the stack stops (best effort: the gateway may already be going down).
  await Promise.all(
    [...books.keys()].map((market) =>
      maker.cancelAllOrders({ market }, { signal: AbortSignal.timeout(2_000) }).catch(() => undefined),
    ),
  );
  return stats;
}

/** Register (a no-op when the account exists: the API answers 202 either way), log in, fund. */
async function account(client: ExchangeClient, email: string, password: string, markets: Market[]): Promise<void> {
  await client.register({ email, password });
  await client.login({ email, password });
  if (markets.length === 0) return;
  const wanted = await topUp(client, markets);
  // Deposits on the sandbox rail are credited after their confirmation time.
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const balances = await client.balances();
    if (wanted.every((a) => balances.some((b) => b.asset === a && !/^0(\.0+)?$/.test(b.available)))) return;
    await sleep(300);
  }
  throw new Error(`the demo deposits of ${email} were not credited within 120 s`);
}

/** Deposit up to the funding target every asset of `markets` that is below a quarter of it; returns the assets. */
async function topUp(client: ExchangeClient, markets: Market[]): Promise<string[]> {
  const assets = [...new Set(markets.flatMap((m) => [m.base, m.quote]))];
  const balances = await client.balances();
  const pending = await client.deposits({ limit: 50 });
  for (const asset of assets) {
    const target = FUNDING[asset] ?? DEFAULT_FUNDING;
    const scale = Math.max(decimals(target), 18);
    const have = balances.find((b) => b.asset === asset)?.available ?? '0';
    const inFlight = pending.some((d) => d.asset === asset && d.status === 'pending');
    if (!inFlight && units(have, scale) * 4n < units(target, scale)) await client.deposit({ asset, amount: target });
  }
  return assets;
}

async function until<T>(fn: () => Promise<T>, signal: AbortSignal, log: DemoLog, what: string): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (signal.aborted) throw err;
      if (attempt % 5 === 1) log('warn', `demo: waiting for ${what}: ${(err as Error).message}`);
      await sleep(Math.min(5_000, 500 * attempt), signal);
    }
  }
}

/** How many `step`s (integer units at `scale`) `value` holds, rounded down or up. */
function onGrid(value: string, scale: number, step: bigint, round: 'down' | 'up'): bigint {
  const at = Math.max(scale, decimals(value));
  const per = step * 10n ** BigInt(at - scale);
  const u = units(value, at);
  return round === 'down' ? u / per : ceilDiv(u, per);
}

function decimals(value: string): number {
  const frac = value.split('.')[1] ?? '';
  return frac.replace(/0+$/, '').length;
}

/** A decimal string as integer units at `scale` decimals (trailing zeros beyond the scale are fine). */
function units(value: string, scale: number): bigint {
  const [whole, frac = ''] = value.split('.');
  const significant = frac.replace(/0+$/, '');
  return parseAmount(significant ? `${whole}.${significant}` : whole, scale, { allowZero: true });
}

function trim(value: string): string {
  return value.includes('.') ? value.replace(/\.?0+$/, '') : value;
}

const ceilDiv = (a: bigint, b: bigint) => (a + b - 1n) / b;
const jitter = (ms: number) => Math.round(ms / 2) + randomInt(Math.max(1, ms));

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}
