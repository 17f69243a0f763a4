/**
 * Exact decimal-string arithmetic for the previews the order form shows (hold = price × quantity, fee, notional).
 * Values are bigint units at a scale (@exchange/money parses and formats), never JS numbers.
 */
import { formatAmount, parseAmount } from '@exchange/money';

export interface Fixed {
  units: bigint;
  scale: number;
}

const PLAIN = /^(0|[1-9]\d*)(\.\d+)?$/;

/** A plain non-negative decimal ("0.015"); no sign, exponent or spaces, like the API accepts. */
export function isPlainDecimal(s: string): boolean {
  return PLAIN.test(s) && s.length <= 40;
}

export function scaleOf(s: string): number {
  const dot = s.indexOf('.');
  return dot < 0 ? 0 : s.length - dot - 1;
}

export function toFixed(s: string): Fixed {
  const scale = scaleOf(s);
  return { units: parseAmount(s, scale, { allowZero: true }), scale };
}

function align(a: Fixed, b: Fixed): [bigint, bigint, number] {
  const scale = Math.max(a.scale, b.scale);
  return [a.units * 10n ** BigInt(scale - a.scale), b.units * 10n ** BigInt(scale - b.scale), scale];
}

export function compare(a: string, b: string): number {
  const [x, y] = align(toFixed(a), toFixed(b));
  return x < y ? -1 : x > y ? 1 : 0;
}

/** True when `value` is a whole multiple of `step` (tick or lot size). */
export function isMultipleOf(value: string, step: string): boolean {
  const [x, y] = align(toFixed(value), toFixed(step));
  return y !== 0n && x % y === 0n;
}

/** Drops trailing zeros of the fraction ("1.500" → "1.5", "2.000" → "2"). */
export function trim(s: string): string {
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}

export function multiply(a: string, b: string): string {
  const x = toFixed(a);
  const y = toFixed(b);
  return trim(formatAmount(x.units * y.units, x.scale + y.scale));
}

/** value × bps / 10 000, exact (four more decimals than the value). */
export function bpsOf(value: string, bps: number): string {
  const x = toFixed(value);
  return trim(formatAmount(x.units * BigInt(bps), x.scale + 4));
}

export function isZero(s: string): boolean {
  return toFixed(s).units === 0n;
}

/** Sign of a decimal string that may start with '-' (24 h change). */
export function sign(s: string): -1 | 0 | 1 {
  if (s.startsWith('-')) return isZero(s.slice(1)) ? 0 : -1;
  return isZero(s) ? 0 : 1;
}

/** change / base × 100 with two decimals, rounded toward zero ("12.5" of "250" → "5.00"); null when base is 0. */
export function percentOf(change: string, base: string): string | null {
  const neg = change.startsWith('-');
  const c = toFixed(neg ? change.slice(1) : change);
  const b = toFixed(base);
  if (b.units === 0n) return null;
  const [x, y] = align(c, b);
  const hundredths = (x * 10_000n) / y;
  const s = formatAmount(hundredths, 2);
  return neg && hundredths !== 0n ? `-${s}` : s;
}
