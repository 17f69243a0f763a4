/**
 * Fee tiers (issue 17). A user's tier in a market follows their 30-day traded volume there: the quote notional of
 * their fills (maker and taker) executed in the current UTC day and the 29 before it, as this service has recorded
 * them. The tier is resolved
 * once, when an order is accepted, and its rates travel in the order's PlaceOrderV1: the engine journals them with
 * the command and charges every fill of that order at them, so replaying the journal charges exactly the same fees
 * whatever the volume has become since. An order resting across a tier change keeps the rates it was accepted with.
 */
import { Type, type Static } from '@sinclair/typebox';
import type pg from 'pg';
import { formatFixed, type FeeTier, type Market, type MarketCatalog } from '@exchange/contracts/markets';
import { FEE_VOLUME_WINDOW_DAYS, volumesByMarket } from './repository.ts';

const TierSchema = Type.Object({
  tier: Type.Integer({ description: '0 is the base tier' }),
  minVolume: Type.String({ description: '30-day volume (quote asset) from which the tier applies' }),
  makerFeeBps: Type.Integer({ description: 'Basis points; negative is a rebate' }),
  takerFeeBps: Type.Integer(),
});

export const AccountFeesSchema = Type.Object(
  {
    windowDays: Type.Integer({
      description: 'Volume window: fills of the current UTC day and the days before it, this many in all',
    }),
    markets: Type.Array(
      Type.Object({
        market: Type.String(),
        volumeAsset: Type.String({ description: "The market's quote asset, in which volume is counted" }),
        volume30d: Type.String({ description: 'Quote notional of your fills (maker and taker) in the window' }),
        tier: TierSchema,
        nextTier: Type.Union([TierSchema, Type.Null()], { description: 'null at the top tier' }),
        volumeToNextTier: Type.Union([Type.String(), Type.Null()], {
          description: 'How much more volume reaches the next tier (null at the top tier)',
        }),
        tiers: Type.Array(TierSchema, { description: "The market's whole schedule" }),
      }),
    ),
  },
  { title: 'AccountFees' },
);
export type AccountFees = Static<typeof AccountFeesSchema>;

function tierDto(m: Market, t: FeeTier): Static<typeof TierSchema> {
  return {
    tier: t.tier,
    minVolume: formatFixed(t.minVolume, m.quote.precision),
    makerFeeBps: t.makerFeeBps,
    takerFeeBps: t.takerFeeBps,
  };
}

/** GET /api/v1/account/fees: the tier an order placed now would get, per market. */
export async function accountFees(
  db: Pick<pg.Pool, 'query'>,
  catalog: MarketCatalog,
  userId: string,
): Promise<AccountFees> {
  const volumes = await volumesByMarket(db, userId);
  const markets = [...catalog.markets.values()].map((m) => {
    const volume = volumes.get(m.symbol) ?? 0n;
    const tier = m.feeTierFor(volume);
    const next = m.nextFeeTier(tier);
    return {
      market: m.symbol,
      volumeAsset: m.quote.symbol,
      volume30d: formatFixed(volume, m.quote.precision),
      tier: tierDto(m, tier),
      nextTier: next ? tierDto(m, next) : null,
      volumeToNextTier: next ? formatFixed(next.minVolume - volume, m.quote.precision) : null,
      tiers: m.feeTiers.map((t) => tierDto(m, t)),
    };
  });
  return { windowDays: FEE_VOLUME_WINDOW_DAYS, markets };
}
