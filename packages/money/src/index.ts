/**
 * Exact money. Amounts travel as decimal strings ("12.3400") and are stored and computed as bigint minor units
 * at a fixed scale (the asset's precision). No function here ever touches a JS number, so no amount can be rounded
 * by IEEE-754 on the way through.
 */

export class MoneyError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'MoneyError';
    this.code = code;
  }
}

/** Plain decimal: optional leading minus, digits, optional fraction. No exponent, no '+', no spaces, no leading '.'. */
const DECIMAL = /^(-)?(\d+)(?:\.(\d+))?$/;

export interface ParseOptions {
  /** Allow a leading minus sign. Default false: API amounts are positive. */
  allowNegative?: boolean;
  /** Allow zero. Default false. */
  allowZero?: boolean;
}

/**
 * Parse a decimal string into integer minor units at `scale` decimals.
 * Rejects (MoneyError with a stable code): non-strings, exponent notation, more decimals than `scale`,
 * negatives and zero unless allowed.
 */
export function parseAmount(value: unknown, scale: number, opts: ParseOptions = {}): bigint {
  if (typeof value !== 'string') throw new MoneyError('INVALID_AMOUNT', 'amount must be a decimal string');
  if (value.length === 0 || value.length > 80)
    throw new MoneyError('INVALID_AMOUNT', 'amount must be a decimal string');
  if (/[eE]/.test(value)) throw new MoneyError('INVALID_AMOUNT', 'amount must not use exponent notation');
  const m = DECIMAL.exec(value);
  if (!m) throw new MoneyError('INVALID_AMOUNT', `amount "${value}" is not a plain decimal number`);
  const [, minus, whole, frac = ''] = m;
  if (frac.length > scale) {
    throw new MoneyError('AMOUNT_PRECISION', `amount "${value}" has more than ${scale} decimal places`);
  }
  const units = BigInt(whole! + frac.padEnd(scale, '0'));
  const signed = minus ? -units : units;
  if (signed < 0n && !opts.allowNegative) throw new MoneyError('AMOUNT_NEGATIVE', 'amount must not be negative');
  if (signed === 0n && !opts.allowZero) throw new MoneyError('AMOUNT_ZERO', 'amount must be greater than zero');
  return signed;
}

/** Format integer minor units as a decimal string with exactly `scale` decimals. */
export function formatAmount(units: bigint | string | number, scale: number): string {
  const v = typeof units === 'bigint' ? units : BigInt(units);
  const neg = v < 0n;
  const digits = (neg ? -v : v).toString().padStart(scale + 1, '0');
  const whole = digits.slice(0, digits.length - scale);
  const frac = digits.slice(digits.length - scale);
  return (neg ? '-' : '') + (scale > 0 ? `${whole}.${frac}` : whole);
}

/** Multiply two fixed-point values and rescale, rounding toward zero (floor for non-negative). */
export function mulDiv(a: bigint, b: bigint, divisor: bigint): bigint {
  if (divisor === 0n) throw new MoneyError('DIVISION_BY_ZERO', 'division by zero');
  return (a * b) / divisor;
}

/** Multiply and divide rounding up (ceil for non-negative): used where the exchange must never under-reserve. */
export function mulDivCeil(a: bigint, b: bigint, divisor: bigint): bigint {
  if (divisor === 0n) throw new MoneyError('DIVISION_BY_ZERO', 'division by zero');
  const p = a * b;
  const q = p / divisor;
  return p % divisor === 0n ? q : q + 1n;
}

export const pow10 = (n: number): bigint => 10n ** BigInt(n);

export function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
export function maxBig(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}
