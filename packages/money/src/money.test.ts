import fc from 'fast-check';
import { formatAmount, MoneyError, mulDiv, mulDivCeil, parseAmount } from './index.ts';

describe('parseAmount', () => {
  it('parses decimals to minor units exactly', () => {
    expect(parseAmount('1', 8)).toBe(100_000_000n);
    expect(parseAmount('0.00000001', 8)).toBe(1n);
    expect(parseAmount('123456789.123456789123456789', 18)).toBe(123456789123456789123456789n);
    expect(parseAmount('10.5', 2)).toBe(1050n);
  });

  it.each([
    ['1e3', 'INVALID_AMOUNT'],
    ['1E-2', 'INVALID_AMOUNT'],
    ['.5', 'INVALID_AMOUNT'],
    ['5.', 'INVALID_AMOUNT'],
    ['+5', 'INVALID_AMOUNT'],
    [' 5', 'INVALID_AMOUNT'],
    ['0x10', 'INVALID_AMOUNT'],
    ['', 'INVALID_AMOUNT'],
    ['1.001', 'AMOUNT_PRECISION'],
    ['-1', 'AMOUNT_NEGATIVE'],
    ['0', 'AMOUNT_ZERO'],
    ['0.00', 'AMOUNT_ZERO'],
  ])('rejects %p with %s', (input, code) => {
    expect(() => parseAmount(input, 2)).toThrow(MoneyError);
    try {
      parseAmount(input, 2);
    } catch (e) {
      expect((e as MoneyError).code).toBe(code);
    }
  });

  it('rejects numbers: amounts on the wire are strings', () => {
    expect(() => parseAmount(1.5, 2)).toThrow(/decimal string/);
  });

  it('allows zero and negatives only when asked', () => {
    expect(parseAmount('0', 2, { allowZero: true })).toBe(0n);
    expect(parseAmount('-1.25', 2, { allowNegative: true })).toBe(-125n);
  });

  it('round-trips format(parse(x)) for any amount', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }),
        fc.integer({ min: 0, max: 18 }),
        (units, scale) => {
          const s = formatAmount(units, scale);
          expect(parseAmount(s, scale, { allowNegative: true, allowZero: true })).toBe(units);
        },
      ),
    );
  });
});

describe('formatAmount', () => {
  it('pads to the scale', () => {
    expect(formatAmount(1n, 8)).toBe('0.00000001');
    expect(formatAmount(-5n, 2)).toBe('-0.05');
    expect(formatAmount(1050n, 2)).toBe('10.50');
    expect(formatAmount(7n, 0)).toBe('7');
  });
});

describe('mulDiv', () => {
  it('floors and ceils', () => {
    expect(mulDiv(10n, 3n, 4n)).toBe(7n);
    expect(mulDivCeil(10n, 3n, 4n)).toBe(8n);
    expect(mulDivCeil(8n, 3n, 4n)).toBe(6n);
  });
});
