/**
 * Deterministic streams of engine commands (PlaceOrderV1 / CancelOrderV1 / AmendOrderV1 envelopes) for tests and load runs:
 * the same seed always gives the same commands, message ids included.
 */
import type { Envelope } from '@exchange/contracts';
import { AmendOrderV1, CancelOrderV1, PlaceOrderV1 } from '@exchange/contracts/trading';
import { uuidv5 } from '../uuid.ts';

function mulberry32(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface GenerateOptions {
  market?: string;
  seed?: number;
  users?: number;
  /** Mid price in ticks. */
  mid?: number;
  /**
   * Also amend orders (about 12% of commands): price and/or total quantity, sometimes with a top-up too small, an
   * unknown order or another user's order. Off by default, so existing seeds keep their streams.
   */
  amends?: boolean;
  /** Also stop orders (about 10% of commands): stop-limits and stop-losses (the order service's IOC-limit form). */
  stops?: boolean;
  /** Some GTC limit orders are icebergs (displayQuantityLots). Off by default, so existing seeds keep their streams. */
  icebergs?: boolean;
  /**
   * Fee tiers: every place of user k carries `feeRates[k % length]` (as the order service resolves them), so
   * makers and takers of different tiers meet, rebates included. Off by default; it draws no random numbers, so a
   * seed gives the same orders with or without it.
   */
  feeRates?: ReadonlyArray<{ makerFeeBps: number; takerFeeBps: number }>;
}

export const AT = '2026-01-01T00:00:00.000Z';

export function userId(seed: number, i: number): string {
  return uuidv5(`user:${seed}:${i}`);
}

export function orderId(seed: number, i: number): string {
  return uuidv5(`order:${seed}:${i}`);
}

type Side = 'buy' | 'sell';
const STP_MODES = ['cancel_newest', 'cancel_oldest', 'cancel_both', 'decrement'] as const;
type Stp = (typeof STP_MODES)[number];

/** What the order service holds for an order: the quote it may spend (a buy) or the base it may sell. */
const holdAmount = (side: Side, priceTicks: number, qty: number) =>
  String(side === 'buy' ? priceTicks * qty : qty * 1_000_000);

/** A limit order's place-order command. */
function placeLimit(
  o: {
    orderId: string;
    userId: string;
    market: string;
    side: Side;
    price: number;
    qty: number;
    timeInForce: 'GTC' | 'IOC' | 'FOK';
    postOnly: boolean;
    stp?: Stp;
    display?: number;
  },
  meta: { producer: string; id: string; occurredAt: string },
): Envelope {
  return PlaceOrderV1.create(
    {
      orderId: o.orderId,
      userId: o.userId,
      market: o.market,
      side: o.side,
      type: 'limit',
      priceTicks: String(o.price),
      quantityLots: String(o.qty),
      timeInForce: o.timeInForce,
      postOnly: o.postOnly,
      ...(o.stp !== undefined ? { stp: o.stp } : {}),
      ...(o.display !== undefined ? { displayQuantityLots: String(o.display) } : {}),
      holdAmount: holdAmount(o.side, o.price, o.qty),
      acceptedAt: AT,
    },
    meta,
  );
}

export function generateCommands(n: number, opts: GenerateOptions = {}): Envelope[] {
  const market = opts.market ?? 'BTC-USD';
  const seed = opts.seed ?? 1;
  const users = opts.users ?? 6;
  const mid = opts.mid ?? 30_000;
  const rnd = mulberry32(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const placed: Array<{ orderId: string; userId: string }> = [];
  const out: Envelope[] = [];
  let nextOrder = 0;
  for (let i = 0; i < n; i++) {
    const meta = { producer: 'order', id: uuidv5(`cmd:${seed}:${i}`), occurredAt: AT };
    const r = rnd();
    if (opts.amends && r >= 0.88 && placed.length > 0) {
      const o = pick(placed.slice(-30)); // recent orders: more of them still rest
      const k = rnd();
      const price = k < 0.6 ? String(mid + int(-25, 25)) : undefined;
      const quantity = k >= 0.3 || price === undefined ? String(int(1, 45)) : undefined;
      const wrongUser = rnd() < 0.05;
      out.push(
        AmendOrderV1.create(
          {
            amendId: uuidv5(`amend:${seed}:${i}`),
            orderId: o.orderId,
            userId: wrongUser ? userId(seed, users + 1) : o.userId,
            market,
            ...(price !== undefined ? { priceTicks: price } : {}),
            ...(quantity !== undefined ? { quantityLots: quantity } : {}),
            // sometimes no top-up at all, sometimes a generous one
            ...(rnd() < 0.7
              ? { topUpHoldId: uuidv5(`amend:${seed}:${i}`), topUpAmount: String(int(1, 60) * 30_000) }
              : {}),
            requestedAt: AT,
          },
          meta,
        ),
      );
      continue;
    }
    if (opts.stops && r >= 0.78 && r < 0.88) {
      const id = orderId(seed, nextOrder++);
      const u = userId(seed, int(0, users - 1));
      const side = pick(['buy', 'sell'] as const);
      const qty = int(1, 40);
      const stop = side === 'buy' ? mid + int(1, 12) : mid - int(1, 12);
      const loss = rnd() < 0.4;
      // a stop-loss carries its protection price (the order service's band around the stop price)
      const limit = loss
        ? side === 'buy'
          ? stop + 20
          : stop - 20
        : side === 'buy'
          ? stop + int(0, 5)
          : stop - int(0, 5);
      placed.push({ orderId: id, userId: u });
      out.push(
        PlaceOrderV1.create(
          {
            orderId: id,
            userId: u,
            market,
            side,
            type: loss ? 'market' : 'limit',
            ...(loss ? { protectionPriceTicks: String(limit) } : { priceTicks: String(limit) }),
            quantityLots: String(qty),
            timeInForce: loss ? 'IOC' : pick(['GTC', 'GTC', 'IOC'] as const),
            postOnly: false,
            stopPriceTicks: String(stop),
            holdAmount: holdAmount(side, limit, qty),
            acceptedAt: AT,
          },
          meta,
        ),
      );
      continue;
    }
    if (r < 0.18 && placed.length > 0) {
      const o = pick(placed);
      out.push(
        CancelOrderV1.create(
          { orderId: o.orderId, userId: o.userId, market, reason: pick(['user', 'admin'] as const), requestedAt: AT },
          meta,
        ),
      );
      continue;
    }
    if (r < 0.2) {
      // A cancel that overtakes its order (e.g. the place went through a retry queue).
      const id = orderId(seed, nextOrder);
      const u = userId(seed, int(0, users - 1));
      out.push(CancelOrderV1.create({ orderId: id, userId: u, market, reason: 'user', requestedAt: AT }, meta));
      // the order itself follows right away (the same user)
      const side = pick(['buy', 'sell'] as const);
      const price = mid + int(-20, 20);
      const qty = int(1, 40);
      nextOrder++;
      placed.push({ orderId: id, userId: u });
      out.push(
        placeLimit(
          { orderId: id, userId: u, market, side, price, qty, timeInForce: 'GTC', postOnly: false },
          { ...meta, id: uuidv5(`cmd:${seed}:${i}:place`) },
        ),
      );
      continue;
    }
    const id = orderId(seed, nextOrder++);
    const u = userId(seed, int(0, users - 1));
    const side = pick(['buy', 'sell'] as const);
    const qty = int(1, 40);
    placed.push({ orderId: id, userId: u });
    if (r < 0.3) {
      const protection = side === 'buy' ? mid + int(-5, 30) : mid - int(-5, 30);
      out.push(
        PlaceOrderV1.create(
          {
            orderId: id,
            userId: u,
            market,
            side,
            type: 'market',
            quantityLots: String(qty),
            timeInForce: pick(['IOC', 'IOC', 'FOK'] as const),
            postOnly: false,
            protectionPriceTicks: String(protection),
            ...(side === 'buy' ? { quoteBudgetTickLots: String(protection * qty) } : {}),
            stp: pick(STP_MODES),
            holdAmount: holdAmount(side, protection, qty),
            acceptedAt: AT,
          },
          meta,
        ),
      );
      continue;
    }
    const aggressive = rnd() < 0.35;
    const price =
      side === 'buy'
        ? mid + int(aggressive ? 0 : -25, aggressive ? 15 : 0)
        : mid + int(aggressive ? -15 : 0, aggressive ? 0 : 25);
    const tif = pick(['GTC', 'GTC', 'GTC', 'GTC', 'IOC', 'FOK'] as const);
    // drawn only when asked for, so that streams without icebergs stay what they were
    const display = opts.icebergs && tif === 'GTC' && rnd() < 0.35 ? int(1, Math.min(qty, 8)) : undefined;
    const postOnly = tif === 'GTC' && rnd() < 0.1;
    const stp = pick(STP_MODES);
    out.push(
      placeLimit({ orderId: id, userId: u, market, side, price, qty, timeInForce: tif, postOnly, stp, display }, meta),
    );
  }
  const rates = opts.feeRates;
  if (rates?.length) {
    const byUser = new Map(Array.from({ length: users + 1 }, (_, k) => [userId(seed, k), rates[k % rates.length]!]));
    for (const e of out) {
      if (e.type !== PlaceOrderV1.type) continue;
      const p = e.payload as { userId: string; makerFeeBps?: number; takerFeeBps?: number };
      Object.assign(p, byUser.get(p.userId));
    }
  }
  return out;
}
