/**
 * @jest-environment jsdom
 */
// The fees panel shows the API's numbers as they are, names a rebate in words, and says when the top tier is reached.
import { cleanup, render, screen } from '@testing-library/react';
import type { AccountFees } from '@exchange/sdk';
import { bps, FeeTiers } from './fee-tiers.tsx';

afterEach(cleanup);

const tiers = [
  { tier: 0, minVolume: '0.00', makerFeeBps: 10, takerFeeBps: 20 },
  { tier: 1, minVolume: '1000000.00', makerFeeBps: -1, takerFeeBps: 12 },
];

test('current tier, rates, next threshold and what is left to reach it', () => {
  const fees: AccountFees = {
    windowDays: 30,
    markets: [
      {
        market: 'BTC-USD',
        volumeAsset: 'USD',
        volume30d: '250000.50',
        tier: tiers[0]!,
        nextTier: tiers[1]!,
        volumeToNextTier: '749999.50',
        tiers,
      },
      {
        market: 'ETH-USD',
        volumeAsset: 'USD',
        volume30d: '2000000.00',
        tier: tiers[1]!,
        nextTier: null,
        volumeToNextTier: null,
        tiers,
      },
    ],
  };
  render(<FeeTiers fees={fees} />);
  const btc = document.querySelector('[data-fee-market="BTC-USD"]')!;
  expect(btc.textContent).toContain('250000.50 USD');
  expect(btc.textContent).toContain('10 bps');
  expect(btc.textContent).toContain('1000000.00 (rebate 1 bps / 12 bps)');
  expect(btc.textContent).toContain('749999.50');
  expect(screen.getByTestId('tier-ETH-USD').textContent).toBe('1');
  const eth = document.querySelector('[data-fee-market="ETH-USD"]')!;
  expect(eth.textContent).toContain('rebate 1 bps');
  expect(eth.textContent).toContain('top tier');
  expect(screen.getByText(/last 30 days/)).toBeTruthy();
});

test('bps names a rebate', () => {
  expect(bps(0)).toBe('0 bps');
  expect(bps(15)).toBe('15 bps');
  expect(bps(-2)).toBe('rebate 2 bps');
});
