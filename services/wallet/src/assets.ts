import { loadCatalog, type AssetConfig, type MarketCatalog } from '@exchange/contracts/markets';
import { formatAmount, MoneyError, parseAmount, type ParseOptions } from '@exchange/money';
import { AppError, badRequest } from '@exchange/platform';

/** Larger than any real amount, far below numeric(38,0): keeps absurd inputs a 400 instead of a database error. */
export const MAX_UNITS = 10n ** 32n;

/** The assets the wallet keeps accounts in, with their precision and withdrawal rules (from the market catalog). */
export class Assets {
  readonly catalog: MarketCatalog;
  constructor(catalog: MarketCatalog = loadCatalog()) {
    this.catalog = catalog;
  }

  list(): AssetConfig[] {
    return [...this.catalog.assets.values()];
  }

  has(symbol: string): boolean {
    return this.catalog.assets.has(symbol);
  }

  /** The asset, or 400 UNKNOWN_ASSET. */
  get(symbol: string): AssetConfig {
    const a = this.catalog.asset(symbol);
    if (!a) throw badRequest('UNKNOWN_ASSET', `unknown asset "${symbol}"`);
    return a;
  }

  /** Decimal string → minor units, or 400 with parseAmount's code (INVALID_AMOUNT, AMOUNT_PRECISION, …). */
  parse(symbol: string, value: unknown, opts: ParseOptions = {}): bigint {
    const a = this.get(symbol);
    let units: bigint;
    try {
      units = parseAmount(value, a.precision, opts);
    } catch (e) {
      if (e instanceof MoneyError) throw badRequest(e.code, e.message);
      throw e;
    }
    if (units >= MAX_UNITS || units <= -MAX_UNITS) throw badRequest('AMOUNT_TOO_LARGE', 'amount is too large');
    return units;
  }

  /** A catalog decimal (e.g. a withdrawal fee) → minor units. */
  units(symbol: string, decimal: string): bigint {
    return parseAmount(decimal, this.get(symbol).precision, { allowZero: true });
  }

  format(symbol: string, units: bigint | string): string {
    return formatAmount(typeof units === 'string' ? BigInt(units) : units, this.get(symbol).precision);
  }
}

/** Minor-units string from the internal API → bigint (> 0), or 400. */
export function parseMinorUnits(value: string): bigint {
  if (!/^(0|[1-9][0-9]*)$/.test(value))
    throw badRequest('INVALID_AMOUNT', 'amount must be an integer string of minor units');
  const v = BigInt(value);
  if (v === 0n) throw badRequest('AMOUNT_ZERO', 'amount must be greater than zero');
  if (v >= MAX_UNITS) throw badRequest('AMOUNT_TOO_LARGE', 'amount is too large');
  return v;
}

export { AppError };
