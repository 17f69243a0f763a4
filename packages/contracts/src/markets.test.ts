import { buildCatalog, DEFAULT_ASSETS, DEFAULT_MARKETS, loadCatalog } from './markets.ts';

const cat = loadCatalog(undefined);

describe('market catalog', () => {
  it('converts decimals to ticks and lots exactly, rejecting off-grid values', () => {
    const m = cat.market('BTC-USD')!;
    expect(m.priceToTicks('65000')).toBe(65000n);
    expect(m.priceToTicks('65000.00')).toBe(65000n);
    expect(m.priceToTicks('65000.5')).toBeUndefined();
    expect(m.quantityToLots('0.25')).toBe(25n);
    expect(m.quantityToLots('0.255')).toBeUndefined();
    expect(m.lotsToQuantity(25n)).toBe('0.25');
    const u = cat.market('BTC-USDT')!;
    expect(u.priceToTicks('65000.12')).toBe(6500012n);
    expect(u.ticksToPrice(6500012n)).toBe('65000.12');
  });

  it('computes exact fill amounts with fees on the received asset, rounded up', () => {
    const m = cat.market('BTC-USD')!;
    // 0.25 BTC at 65000 USD: 16250.00 USD = 1625000 cents; 25000000 sats.
    const f = m.fillAmounts(65000n, 25n, 'buy');
    expect(f.quoteAmount).toBe(1_625_000n);
    expect(f.baseAmount).toBe(25_000_000n);
    expect(f.buyerFee).toBe(50_000n); // taker 20 bps of 0.25 BTC
    expect(f.sellerFee).toBe(1_625n); // maker 10 bps of 16250 USD
    const tiny = cat.market('BTC-USDT')!.fillAmounts(1n, 1n, 'sell'); // 0.01 USDT × 0.0001 BTC
    expect(tiny.quoteAmount).toBe(1n);
    expect(tiny.sellerFee).toBe(1n); // rounded up, never zero for a non-zero trade
  });

  it('rejects a market whose tick × lot is finer than the quote minor unit', () => {
    expect(() =>
      buildCatalog(DEFAULT_ASSETS, [
        { ...DEFAULT_MARKETS[0]!, symbol: 'BAD-USD', tickSize: '0.01', lotSize: '0.00001' },
      ]),
    ).toThrow(/whole number of USD minor units/);
    expect(() => buildCatalog(DEFAULT_ASSETS, [{ ...DEFAULT_MARKETS[0]!, lotSize: '0.000000001' }])).toThrow(
      /finer than BTC precision/,
    );
  });

  describe('fee tiers', () => {
    const tiered = (tiers: NonNullable<(typeof DEFAULT_MARKETS)[0]['feeTiers']>, maker = 10, taker = 20) =>
      buildCatalog(DEFAULT_ASSETS, [
        { ...DEFAULT_MARKETS[0]!, makerFeeBps: maker, takerFeeBps: taker, feeTiers: tiers },
      ]).market('BTC-USD')!;

    it('resolves the tier exactly at its threshold, and names the next one', () => {
      const m = tiered([
        { minVolume: '1000', makerFeeBps: 5, takerFeeBps: 15 },
        { minVolume: '5000.50', makerFeeBps: -2, takerFeeBps: 10 },
      ]);
      expect(m.feeTierFor(99_999n)).toMatchObject({ tier: 0, makerFeeBps: 10, takerFeeBps: 20 });
      expect(m.feeTierFor(100_000n)).toMatchObject({ tier: 1, makerFeeBps: 5, takerFeeBps: 15, minVolume: 100_000n });
      expect(m.feeTierFor(500_049n).tier).toBe(1);
      expect(m.feeTierFor(500_050n)).toMatchObject({ tier: 2, makerFeeBps: -2 });
      expect(m.nextFeeTier(m.feeTierFor(0n))?.minVolume).toBe(100_000n);
      expect(m.nextFeeTier(m.feeTierFor(10n ** 12n))).toBeUndefined();
    });

    it('pays a maker rebate rounded down in the received asset, never more than the taker fee is worth', () => {
      const m = tiered([{ minVolume: '1000', makerFeeBps: -5, takerFeeBps: 5 }]);
      const top = m.feeTierFor(10n ** 9n);
      // 0.25 BTC at 65000: taker (buyer) 20 bps of 25_000_000 sats = 50_000; maker (seller) rebate 5 bps of
      // 1_625_000 cents = 812.5 → 812 cents
      const f = m.fillAmounts(65000n, 25n, 'buy', top, m.baseRates);
      expect(f).toMatchObject({ buyerFee: 50_000n, sellerFee: -812n });
      // both in the top tier: taker 5 bps = 12_500 sats (worth 812.5 cents at 65000), rebate 812 cents: within it
      const g = m.fillAmounts(65000n, 25n, 'buy', top, top);
      expect(g).toMatchObject({ buyerFee: 12_500n, sellerFee: -812n });
      // a sell taker: taker fee in quote, the buying maker's rebate in base
      const h = m.fillAmounts(65000n, 25n, 'sell', top, top);
      expect(h).toMatchObject({ sellerFee: 813n, buyerFee: -12_500n });
      // the per-fill clamp: rates that slipped past validation (e.g. carried by an old command) still cannot pay
      // out more than the taker paid
      const clamped = m.fillAmounts(65000n, 25n, 'buy', { makerFeeBps: -50, takerFeeBps: 0 }, top);
      expect(clamped.sellerFee).toBe(-((12_500n * 1_625_000n) / 25_000_000n));
      const zeroTaker = m.fillAmounts(65000n, 25n, 'buy', top, { makerFeeBps: 0, takerFeeBps: 0 });
      expect(zeroTaker).toMatchObject({ buyerFee: 0n, sellerFee: 0n });
    });

    it('refuses a schedule where a rebate could exceed a taker fee, or thresholds out of order', () => {
      expect(() => tiered([{ minVolume: '1000', makerFeeBps: -6, takerFeeBps: 5 }])).toThrow(
        /rebate of 6 bps exceeds the lowest taker rate \(5 bps\)/,
      );
      // the rebate tier is checked against every tier's taker rate, not just its own
      expect(() =>
        tiered([
          { minVolume: '1000', makerFeeBps: 0, takerFeeBps: 3 },
          { minVolume: '2000', makerFeeBps: -4, takerFeeBps: 10 },
        ]),
      ).toThrow(/exceeds the lowest taker rate \(3 bps\)/);
      expect(() =>
        tiered([
          { minVolume: '2000', makerFeeBps: 5, takerFeeBps: 15 },
          { minVolume: '2000', makerFeeBps: 4, takerFeeBps: 14 },
        ]),
      ).toThrow(/must be above the previous tier/);
      expect(() => tiered([{ minVolume: '0.001', makerFeeBps: 5, takerFeeBps: 15 }])).toThrow(/finer than USD/);
      expect(() => tiered([{ minVolume: '1e6', makerFeeBps: 5, takerFeeBps: 15 }])).toThrow(/not a decimal/);
      expect(() => tiered([{ minVolume: '100', makerFeeBps: 5, takerFeeBps: -1 }])).toThrow(/takerFeeBps/);
      expect(() => tiered([{ minVolume: '100', makerFeeBps: 2.5, takerFeeBps: 5 }])).toThrow(/makerFeeBps/);
      expect(() => tiered([], -1, 20)).not.toThrow();
      expect(() => tiered([], -21, 20)).toThrow(/base tier/);
    });

    it('the default markets validate', () => {
      for (const m of cat.markets.values()) expect(m.feeTiers.length).toBeGreaterThan(1);
    });
  });
});
