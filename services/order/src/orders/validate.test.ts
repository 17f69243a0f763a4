/**
 * `lastTradeRange` is what order entry's one-statement path checks the last trade against in SQL: it must pass
 * exactly the last trades for which `priceBand` (the check `priceChecks` makes) holds the price.
 */
import { buildCatalog, DEFAULT_ASSETS, DEFAULT_MARKETS } from '@exchange/contracts/markets';
import { lastTradeRange, priceBand } from './validate.ts';

const marketWithBand = (priceBandBps: number) =>
  buildCatalog(DEFAULT_ASSETS, [{ ...DEFAULT_MARKETS[0]!, priceBandBps }]).market(DEFAULT_MARKETS[0]!.symbol)!;

const inBand = (m: ReturnType<typeof marketWithBand>, last: bigint, price: bigint) => {
  const { low, high } = priceBand(m, last);
  return low <= price && price <= high;
};

describe('lastTradeRange', () => {
  it.each([0, 1, 7, 333, 1000, 5000, 9999, 10_000, 25_000])(
    'passes exactly the last trades whose band holds the price (band %i bps)',
    (bps) => {
      const m = marketWithBand(bps);
      for (const price of [1n, 2n, 3n, 10n, 97n, 1000n, 65_432n, 6_500_000n]) {
        const { min, max } = lastTradeRange(m, price);
        expect(inBand(m, min, price)).toBe(true);
        if (min > 0n) expect(inBand(m, min - 1n, price)).toBe(false);
        if (max === null) {
          expect(inBand(m, price * 1_000_000n, price)).toBe(true);
        } else {
          expect(inBand(m, max, price)).toBe(true);
          expect(inBand(m, max + 1n, price)).toBe(false);
        }
        // and every last trade in between (sampled), for the band's edges to form one range
        const top = max ?? price * 3n;
        const step = (top - min) / 50n + 1n;
        for (let last = min; last <= top; last += step) expect(inBand(m, last, price)).toBe(true);
      }
    },
  );

  it('a 10 % band around 65,000: last trades from 59,091 to 72,222', () => {
    const m = marketWithBand(1000);
    // 65,000 is within 10 % above 59,091 (high 65,000.1) and within 10 % below 72,222 (low 64,999.8)
    expect(lastTradeRange(m, 65_000n)).toEqual({ min: 59_091n, max: 72_222n });
  });
});
