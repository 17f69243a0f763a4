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
});
