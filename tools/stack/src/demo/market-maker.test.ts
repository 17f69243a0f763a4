import type { Market } from '@exchange/sdk';
import { Grid } from './market-maker.ts';

const market = (over: Partial<Market>): Market => ({
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
  priceBandBps: 1000,
  priceBand: null,
  lastPrice: null,
  halted: false,
  haltReason: null,
  ...over,
});

test('prices and quantities on the grid, exactly', () => {
  const g = new Grid(market({}));
  expect(g.ticks('2999.9')).toBe(29_999n);
  expect(g.ticks('2999.95')).toBe(29_999n);
  expect(g.ticks('2999.95', 'up')).toBe(30_000n);
  expect(g.ticks('3000.000')).toBe(30_000n);
  expect(g.price(29_999n)).toBe('2999.9');
  expect(g.price(30_000n)).toBe('3000');
  expect(g.lots('0.30')).toBe(3n);
  expect(g.quantity(3n)).toBe('0.3');
  expect([g.minLots, g.maxLots]).toEqual([1n, 100_000n]);
});

test('the fewest lots clearing the minimum notional and the minimum quantity', () => {
  // $1 tick, 0.01 BTC lot, $10 minimum: at $500 one lot is $5, so two lots.
  const btc = new Grid(market({ tickSize: '1', lotSize: '0.01', minQuantity: '0.01', minNotional: '10' }));
  expect(btc.minLotsAt(500n)).toBe(2n);
  expect(btc.minLotsAt(501n)).toBe(2n);
  expect(btc.minLotsAt(1000n)).toBe(1n);
  // minimum quantity above the notional's need
  const big = new Grid(market({ tickSize: '1', lotSize: '0.01', minQuantity: '0.05', minNotional: '10' }));
  expect(big.minLotsAt(61_000n)).toBe(5n);
  // USDT's fine grid: 0.01 tick × 0.0001 lot, 5 USDT minimum at 61000: 0.0001 BTC = 6.1 USDT
  const usdt = new Grid(market({ tickSize: '0.01', lotSize: '0.0001', minQuantity: '0.0001', minNotional: '5' }));
  expect(usdt.minLotsAt(usdt.ticks('61000'))).toBe(1n);
  expect(usdt.minLotsAt(usdt.ticks('40000'))).toBe(2n);
});

test('the band rounds inward, so both edges are valid prices', () => {
  const g = new Grid(market({ priceBand: { low: '2700.05', high: '3299.85' } }));
  expect(g.band()).toEqual({ low: 27_001n, high: 32_998n });
  expect(new Grid(market({})).band()).toBeUndefined();
});
