/**
 * Assets and markets: the one definition every service reads (order entry validates against it, the payment-processor
 * converts engine fills to ledger amounts with it, the wallet knows asset precisions from it).
 *
 * Prices and quantities reach the engine as integer ticks and lots. Two rules keep every amount exact:
 *  1. `lotSize` has no more decimals than the base asset, so a lot is a whole number of base minor units.
 *  2. `tickSize × lotSize` is a whole number of quote minor units, so every fill's notional is exact in the ledger:
 *     no rounding, no residue, and a buy hold of `limit × quantity` can never be overdrawn by rounding.
 * Fees are charged on what the user receives (base for the buyer, quote for the seller), rounded up, so holds never
 * need to include fees. A maker rebate (negative maker rate) is paid in what the maker receives, rounded down, and is
 * never worth more than the taker's fee on the same trade (checked for every tier pair at start-up, clamped per fill).
 */
import { readFileSync } from 'node:fs';

export interface AssetConfig {
  symbol: string;
  /** Decimal places of the ledger's minor unit (BTC 8: 1 unit = 1 satoshi). */
  precision: number;
  /** Withdrawal rules (decimal strings). */
  minWithdrawal: string;
  maxWithdrawal: string;
  withdrawalFee: string;
  /** Regex a withdrawal address must match (sandbox rail, but shaped like the real thing). */
  addressPattern: string;
}

export interface MarketConfig {
  symbol: string;
  base: string;
  quote: string;
  tickSize: string;
  lotSize: string;
  minQuantity: string;
  maxQuantity: string;
  /** Minimum price × quantity, in quote. */
  minNotional: string;
  /** Rates of the base tier (30-day volume below the first `feeTiers` threshold). */
  makerFeeBps: number;
  takerFeeBps: number;
  /**
   * Volume tiers above the base one, by ascending `minVolume`: a user whose 30-day traded volume in this market
   * (quote notional of their fills, maker and taker) is at or above `minVolume` (decimal, quote asset) gets the
   * tier's rates. A negative `makerFeeBps` is a rebate; no rebate may exceed the lowest taker rate of the market.
   */
  feeTiers?: FeeTierConfig[];
  /** A limit price more than this many basis points away from the last trade is rejected (PRICE_OUT_OF_BAND). */
  priceBandBps: number;
  /**
   * Volatility guard (absent: none). A trade that would print more than `bandBps` basis points away from the last
   * trade price pauses continuous trading into a call auction of `auctionSeconds`, which the engine then uncrosses at
   * the single price that executes the most volume (docs/runbook.md, "Volatility auctions").
   */
  volatilityGuard?: { bandBps: number; auctionSeconds: number };
}

export interface FeeTierConfig {
  minVolume: string;
  makerFeeBps: number;
  takerFeeBps: number;
}

/** The rates one order trades at: its maker rate when it rests, its taker rate when it takes. */
export interface FeeRates {
  makerFeeBps: number;
  takerFeeBps: number;
}

/** A resolved tier: 0 is the base tier (the market's own rates), 1.. the `feeTiers` entries. */
export interface FeeTier extends FeeRates {
  tier: number;
  /** Quote minor units; 0 for the base tier. */
  minVolume: bigint;
}

/** Bounds of a configured rate: at most 100 %, a rebate at most 100 % too (the taker bound is what limits it). */
const MAX_BPS = 10_000;

export const DEFAULT_ASSETS: AssetConfig[] = [
  {
    symbol: 'BTC',
    precision: 8,
    minWithdrawal: '0.0001',
    maxWithdrawal: '100',
    withdrawalFee: '0.0001',
    addressPattern: '^(bc1|[13])[a-zA-HJ-NP-Z0-9]{25,62}$',
  },
  {
    symbol: 'ETH',
    precision: 18,
    minWithdrawal: '0.001',
    maxWithdrawal: '1000',
    withdrawalFee: '0.001',
    addressPattern: '^0x[0-9a-fA-F]{40}$',
  },
  {
    symbol: 'USD',
    precision: 2,
    minWithdrawal: '10',
    maxWithdrawal: '1000000',
    withdrawalFee: '1',
    addressPattern: '^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$',
  },
  {
    symbol: 'USDT',
    precision: 6,
    minWithdrawal: '10',
    maxWithdrawal: '1000000',
    withdrawalFee: '1',
    addressPattern: '^(0x[0-9a-fA-F]{40}|T[1-9A-HJ-NP-Za-km-z]{33})$',
  },
];

// USD has 2 decimals, so tick × lot must be at least 0.01 USD (rule 2): a $1 tick with a 0.01 BTC lot. USDT's 6
// decimals allow a fine grid (0.01 × 0.0001), which is what BTC-USDT shows.
export const DEFAULT_MARKETS: MarketConfig[] = [
  {
    symbol: 'BTC-USD',
    base: 'BTC',
    quote: 'USD',
    tickSize: '1',
    lotSize: '0.01',
    minQuantity: '0.01',
    maxQuantity: '100',
    minNotional: '10',
    makerFeeBps: 10,
    takerFeeBps: 20,
    feeTiers: [
      { minVolume: '1000000', makerFeeBps: 8, takerFeeBps: 18 },
      { minVolume: '10000000', makerFeeBps: 4, takerFeeBps: 15 },
      { minVolume: '50000000', makerFeeBps: -1, takerFeeBps: 12 },
    ],
    priceBandBps: 1000,
  },
  {
    symbol: 'ETH-USD',
    base: 'ETH',
    quote: 'USD',
    tickSize: '0.1',
    lotSize: '0.1',
    minQuantity: '0.1',
    maxQuantity: '10000',
    minNotional: '10',
    makerFeeBps: 10,
    takerFeeBps: 20,
    feeTiers: [
      { minVolume: '1000000', makerFeeBps: 8, takerFeeBps: 18 },
      { minVolume: '10000000', makerFeeBps: 4, takerFeeBps: 15 },
    ],
    priceBandBps: 1000,
  },
  {
    symbol: 'BTC-USDT',
    base: 'BTC',
    quote: 'USDT',
    tickSize: '0.01',
    lotSize: '0.0001',
    minQuantity: '0.0001',
    maxQuantity: '100',
    minNotional: '5',
    makerFeeBps: 10,
    takerFeeBps: 20,
    feeTiers: [
      { minVolume: '1000000', makerFeeBps: 8, takerFeeBps: 18 },
      { minVolume: '10000000', makerFeeBps: 4, takerFeeBps: 15 },
      { minVolume: '50000000', makerFeeBps: -1, takerFeeBps: 12 },
    ],
    priceBandBps: 1000,
  },
];

/** A fixed-point decimal as (integer, scale): "0.001" → { units: 1n, scale: 3 }. */
export interface Fixed {
  units: bigint;
  scale: number;
}

export function toFixed(dec: string): Fixed {
  const m = /^(\d+)(?:\.(\d+))?$/.exec(dec);
  if (!m) throw new Error(`not a plain non-negative decimal: "${dec}"`);
  const frac = m[2] ?? '';
  return { units: BigInt(m[1]! + frac), scale: frac.length };
}

const P10 = (n: number) => 10n ** BigInt(n);

/** Integer units of a decimal at a scale; undefined when `dec` has more precision than `scale` allows. */
function unitsAt(f: Fixed, scale: number): bigint | undefined {
  if (f.scale <= scale) return f.units * P10(scale - f.scale);
  const d = P10(f.scale - scale);
  return f.units % d === 0n ? f.units / d : undefined;
}

export class Market {
  readonly config: MarketConfig;
  readonly base: AssetConfig;
  readonly quote: AssetConfig;
  readonly tick: Fixed;
  readonly lot: Fixed;
  /** Base minor units in one lot. */
  readonly baseUnitsPerLot: bigint;
  /** Quote minor units of one tick × one lot (the engine's notional unit). */
  readonly quoteUnitsPerTickLot: bigint;
  /** Base tier first, then `feeTiers` by ascending threshold (validated). */
  readonly feeTiers: readonly FeeTier[];

  constructor(config: MarketConfig, assets: Map<string, AssetConfig>) {
    this.config = config;
    const g = config.volatilityGuard;
    if (
      g !== undefined &&
      !(
        Number.isInteger(g.bandBps) &&
        g.bandBps >= 1 &&
        g.bandBps <= 10_000 &&
        Number.isInteger(g.auctionSeconds) &&
        g.auctionSeconds >= 1 &&
        g.auctionSeconds <= 3600
      )
    ) {
      throw new Error(`market ${config.symbol}: volatilityGuard needs bandBps 1..10000 and auctionSeconds 1..3600`);
    }
    const base = assets.get(config.base);
    const quote = assets.get(config.quote);
    if (!base || !quote)
      throw new Error(`market ${config.symbol}: unknown asset ${!base ? config.base : config.quote}`);
    this.base = base;
    this.quote = quote;
    this.tick = toFixed(config.tickSize);
    this.lot = toFixed(config.lotSize);
    if (this.tick.units === 0n || this.lot.units === 0n)
      throw new Error(`market ${config.symbol}: tick and lot must be > 0`);
    const bpl = unitsAt(this.lot, base.precision);
    if (bpl === undefined)
      throw new Error(`market ${config.symbol}: lotSize ${config.lotSize} finer than ${base.symbol} precision`);
    this.baseUnitsPerLot = bpl;
    // tick × lot at scale tick.scale + lot.scale, expressed in quote minor units, must be whole.
    const tl: Fixed = { units: this.tick.units * this.lot.units, scale: this.tick.scale + this.lot.scale };
    const q = unitsAt(tl, quote.precision);
    if (q === undefined || q === 0n) {
      // Allow sub-minor tick×lot only when notionals are computed in a finer unit; we do not: reject the config.
      throw new Error(
        `market ${config.symbol}: tickSize × lotSize (${config.tickSize} × ${config.lotSize}) must be a whole number of ` +
          `${quote.symbol} minor units (${quote.precision} decimals)`,
      );
    }
    this.quoteUnitsPerTickLot = q;
    this.feeTiers = buildFeeTiers(config, quote);
  }

  /** The market's base rates (tier 0). */
  get baseRates(): FeeRates {
    return { makerFeeBps: this.config.makerFeeBps, takerFeeBps: this.config.takerFeeBps };
  }

  /** The tier of a 30-day volume (quote minor units): the highest whose threshold it reaches. */
  feeTierFor(volume: bigint): FeeTier {
    let t = this.feeTiers[0]!;
    for (const x of this.feeTiers) if (volume >= x.minVolume) t = x;
    return t;
  }

  /** The tier after `tier`, if any. */
  nextFeeTier(tier: FeeTier): FeeTier | undefined {
    return this.feeTiers[tier.tier + 1];
  }

  /** Quote minor units of a decimal amount of quote, undefined if finer than the quote asset allows. */
  quoteUnits(dec: string): bigint | undefined {
    return unitsAt(toFixed(dec), this.quote.precision);
  }

  get symbol() {
    return this.config.symbol;
  }

  /** Decimal price → ticks, or undefined if not on the tick grid. */
  priceToTicks(price: string): bigint | undefined {
    const f = toFixed(price);
    const scale = Math.max(f.scale, this.tick.scale);
    const p = unitsAt(f, scale)!;
    const t = unitsAt(this.tick, scale)!;
    return p % t === 0n ? p / t : undefined;
  }

  /** Decimal quantity → lots, or undefined if not a whole number of lots. */
  quantityToLots(qty: string): bigint | undefined {
    const f = toFixed(qty);
    const scale = Math.max(f.scale, this.lot.scale);
    const q = unitsAt(f, scale)!;
    const l = unitsAt(this.lot, scale)!;
    return q % l === 0n ? q / l : undefined;
  }

  ticksToPrice(ticks: bigint): string {
    return formatFixed(ticks * this.tick.units, this.tick.scale);
  }

  lotsToQuantity(lots: bigint): string {
    return formatFixed(lots * this.lot.units, this.lot.scale);
  }

  /** Base minor units for a number of lots. */
  baseUnits(lots: bigint): bigint {
    return lots * this.baseUnitsPerLot;
  }

  /** Quote minor units of price × quantity (exact by construction). */
  notional(ticks: bigint, lots: bigint): bigint {
    return ticks * lots * this.quoteUnitsPerTickLot;
  }

  /**
   * Ledger amounts of one fill. The buyer pays `quoteAmount` out of its quote hold and receives
   * `baseAmount - buyerFee`; the seller delivers `baseAmount` out of its base hold and receives
   * `quoteAmount - sellerFee`. Fees (rounded up, in the received asset) go to the fee accounts. `maker` and `taker`
   * are the rates each order carries (its tier when placed; the market's base rates when absent). A negative maker
   * fee is a rebate paid from the fee account: rounded down, and clamped to the value of the taker's fee on this
   * trade (converted at the trade's own price, rounded down), so the exchange never pays out more than it takes.
   */
  fillAmounts(ticks: bigint, lots: bigint, takerSide: 'buy' | 'sell', maker?: FeeRates, taker?: FeeRates) {
    const baseAmount = this.baseUnits(lots);
    const quoteAmount = this.notional(ticks, lots);
    const takerBps = BigInt((taker ?? this.baseRates).takerFeeBps);
    const makerBps = BigInt((maker ?? this.baseRates).makerFeeBps);
    // what each side receives: the buyer base, the seller quote
    const takerGets = takerSide === 'buy' ? baseAmount : quoteAmount;
    const makerGets = takerSide === 'buy' ? quoteAmount : baseAmount;
    const takerFee = takerBps > 0n ? ceilDiv(takerGets * takerBps, 10_000n) : 0n;
    let makerFee: bigint;
    if (makerBps >= 0n) makerFee = ceilDiv(makerGets * makerBps, 10_000n);
    else {
      const rebate = (makerGets * -makerBps) / 10_000n;
      const cap = (takerFee * makerGets) / takerGets;
      makerFee = -(rebate < cap ? rebate : cap);
    }
    return {
      baseAmount,
      quoteAmount,
      buyerFee: takerSide === 'buy' ? takerFee : makerFee,
      sellerFee: takerSide === 'sell' ? takerFee : makerFee,
    };
  }
}

/**
 * Validates a market's fee schedule: integer rates within ±100 %, taker rates never negative, thresholds strictly
 * ascending whole quote minor units, and no maker rebate larger than the lowest taker rate of any tier (a maker and
 * a taker may be in any two tiers, so that is the pair that could pay out more than it takes).
 */
function buildFeeTiers(config: MarketConfig, quote: AssetConfig): FeeTier[] {
  const fail = (msg: string): never => {
    throw new Error(`market ${config.symbol}: ${msg}`);
  };
  const tiers: FeeTier[] = [
    { tier: 0, minVolume: 0n, makerFeeBps: config.makerFeeBps, takerFeeBps: config.takerFeeBps },
  ];
  for (const [i, t] of (config.feeTiers ?? []).entries()) {
    if (!/^\d+(\.\d+)?$/.test(t.minVolume)) fail(`feeTiers[${i}].minVolume "${t.minVolume}" is not a decimal`);
    const v = unitsAt(toFixed(t.minVolume), quote.precision);
    if (v === undefined) fail(`feeTiers[${i}].minVolume ${t.minVolume} is finer than ${quote.symbol} precision`);
    if (v! <= tiers[tiers.length - 1]!.minVolume)
      fail(`feeTiers[${i}].minVolume ${t.minVolume} must be above the previous tier's threshold (and above 0)`);
    tiers.push({ tier: i + 1, minVolume: v!, makerFeeBps: t.makerFeeBps, takerFeeBps: t.takerFeeBps });
  }
  for (const t of tiers) {
    const where = t.tier === 0 ? 'base tier' : `feeTiers[${t.tier - 1}]`;
    if (!Number.isInteger(t.takerFeeBps) || t.takerFeeBps < 0 || t.takerFeeBps > MAX_BPS)
      fail(`${where}: takerFeeBps must be an integer in 0..${MAX_BPS}`);
    if (!Number.isInteger(t.makerFeeBps) || t.makerFeeBps < -MAX_BPS || t.makerFeeBps > MAX_BPS)
      fail(`${where}: makerFeeBps must be an integer in -${MAX_BPS}..${MAX_BPS}`);
  }
  const minTaker = Math.min(...tiers.map((t) => t.takerFeeBps));
  for (const t of tiers) {
    if (-t.makerFeeBps > minTaker)
      fail(
        `${t.tier === 0 ? 'base tier' : `feeTiers[${t.tier - 1}]`}: a maker rebate of ${-t.makerFeeBps} bps exceeds ` +
          `the lowest taker rate (${minTaker} bps): a trade could pay out more rebate than its taker pays`,
      );
  }
  return tiers;
}

export function ceilDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b === 0n ? q : q + 1n;
}

export function formatFixed(units: bigint, scale: number): string {
  const neg = units < 0n;
  const s = (neg ? -units : units).toString().padStart(scale + 1, '0');
  const out = scale > 0 ? `${s.slice(0, s.length - scale)}.${s.slice(s.length - scale)}` : s;
  return neg ? `-${out}` : out;
}

export interface MarketCatalog {
  assets: Map<string, AssetConfig>;
  markets: Map<string, Market>;
  asset(symbol: string): AssetConfig | undefined;
  market(symbol: string): Market | undefined;
}

/**
 * The catalog: built-in defaults, or the JSON file at `MARKETS_FILE` (`{ "assets": [...], "markets": [...] }`).
 * Invalid configuration throws at start-up with the market named.
 */
export function loadCatalog(path: string | undefined = process.env.MARKETS_FILE): MarketCatalog {
  const raw = path
    ? (JSON.parse(readFileSync(path, 'utf8')) as { assets: AssetConfig[]; markets: MarketConfig[] })
    : undefined;
  return buildCatalog(raw?.assets ?? DEFAULT_ASSETS, raw?.markets ?? DEFAULT_MARKETS);
}

export function buildCatalog(assetList: AssetConfig[], marketList: MarketConfig[]): MarketCatalog {
  const assets = new Map(assetList.map((a) => [a.symbol, a]));
  const markets = new Map(marketList.map((m) => [m.symbol, new Market(m, assets)]));
  return { assets, markets, asset: (s) => assets.get(s), market: (s) => markets.get(s) };
}
