// Your fee tier per market (GET /api/v1/account/fees): 30-day volume, the rates an order placed now gets, and how far
// the next tier is. Rates are basis points as the API gives them; a negative maker rate is a rebate.
import type { AccountFees } from '@exchange/sdk';
import { Empty, Head, Num } from './ui.tsx';

/** "10 bps", "rebate 2 bps": said in words, so a minus sign is never missed. */
export function bps(rate: number): string {
  return rate < 0 ? `rebate ${-rate} bps` : `${rate} bps`;
}

export function FeeTiers({ fees }: { fees: AccountFees }) {
  if (fees.markets.length === 0) return <Empty>No markets.</Empty>;
  return (
    <div className="table-wrap" tabIndex={0}>
      <p className="muted">
        Volume is the total of your fills in each market over the last {fees.windowDays} days. An order is charged the
        rates of your tier when it is accepted.
      </p>
      <table>
        <Head
          cols={[
            'Market',
            ['30-day volume', 'r'],
            ['Tier', 'r'],
            ['Maker', 'r'],
            ['Taker', 'r'],
            ['Next tier at', 'r hide-sm'],
            ['To go', 'r'],
          ]}
        />
        <tbody>
          {fees.markets.map((m) => (
            <tr key={m.market} data-fee-market={m.market}>
              <td>{m.market}</td>
              <td className="r">
                <Num value={m.volume30d} /> <span className="muted">{m.volumeAsset}</span>
              </td>
              <td className="r" data-testid={`tier-${m.market}`}>
                {m.tier.tier}
              </td>
              <td className={`r ${m.tier.makerFeeBps < 0 ? 'up' : ''}`}>{bps(m.tier.makerFeeBps)}</td>
              <td className="r">{bps(m.tier.takerFeeBps)}</td>
              <td className="r hide-sm">
                {m.nextTier ? (
                  <>
                    <Num value={m.nextTier.minVolume} /> ({bps(m.nextTier.makerFeeBps)} / {bps(m.nextTier.takerFeeBps)})
                  </>
                ) : (
                  <span className="muted">top tier</span>
                )}
              </td>
              <td className="r">{m.volumeToNextTier ? <Num value={m.volumeToNextTier} /> : '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
