// Shared fast-check generators and a command runner for the property tests.
import fc from 'fast-check';
import type { OrderBook } from '../src/order-book.ts';
import type { AmendCommand, BookEvent, PlaceCommand } from '../src/types.ts';
import type { ReferenceBook } from './reference-book.ts';

export type Command =
  | { kind: 'place'; cmd: PlaceCommand }
  | { kind: 'cancel'; id: string; account?: string }
  | { kind: 'amend'; cmd: AmendCommand }
  | { kind: 'endAuction' };

const ids = fc.integer({ min: 0, max: 40 }).map((n) => `o${n}`);
const accounts = fc.constantFrom('A', 'B', 'C');
const prices = fc.integer({ min: 95, max: 105 });
const quantities = fc.integer({ min: 1, max: 12 });
const stps = fc.constantFrom(undefined, 'none', 'cancel_newest', 'cancel_oldest', 'cancel_both', 'decrement');

const limitCmd = fc.record({
  id: ids,
  account: accounts,
  side: fc.constantFrom('buy' as const, 'sell' as const),
  price: prices,
  quantity: quantities,
  tif: fc.constantFrom('GTC', 'GTC', 'GTC', 'IOC', 'FOK') as fc.Arbitrary<'GTC' | 'IOC' | 'FOK'>,
  postOnly: fc.boolean(),
  stp: stps,
});

const marketCmd = fc.record({
  id: ids,
  account: accounts,
  side: fc.constantFrom('buy' as const, 'sell' as const),
  quantity: fc.integer({ min: 1, max: 30 }),
  tif: fc.constantFrom('GTC', 'IOC', 'FOK') as fc.Arbitrary<'GTC' | 'IOC' | 'FOK'>,
  stp: stps,
  maxSlippageTicks: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
  quoteBudget: fc.option(fc.integer({ min: 1, max: 2500 }), { nil: undefined }),
});

// stop-limit and stop-loss (market) orders; sometimes with a bad time in force, post-only or stop price
const stopCmd = fc.record({
  id: ids,
  account: accounts,
  side: fc.constantFrom('buy' as const, 'sell' as const),
  market: fc.boolean(),
  price: prices,
  // mostly above the mid (~100) for buys and below it for sells, where they wait rather than being rejected
  stopPrice: fc.oneof(
    { weight: 12, arbitrary: fc.integer({ min: 0, max: 5 }) },
    { weight: 1, arbitrary: fc.constantFrom(-3, 1.5, Number.NaN) },
  ),
  quantity: quantities,
  tif: fc.constantFrom('GTC', 'GTC', 'IOC', 'FOK') as fc.Arbitrary<'GTC' | 'IOC' | 'FOK'>,
  postOnly: fc.constantFrom(undefined, undefined, undefined, false, true),
  stp: stps,
  maxSlippageTicks: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
});

const stopPriceOf = (c: { side: 'buy' | 'sell'; stopPrice: number }) =>
  Number.isInteger(c.stopPrice) && c.stopPrice >= 0
    ? c.side === 'buy'
      ? 100 + c.stopPrice
      : 100 - c.stopPrice
    : c.stopPrice;

// icebergs: mostly valid GTC limits with a small display; sometimes a display the engine must refuse
const icebergCmd = fc.record({
  id: ids,
  account: accounts,
  side: fc.constantFrom('buy' as const, 'sell' as const),
  price: prices,
  quantity: fc.integer({ min: 1, max: 20 }),
  display: fc.oneof(
    { weight: 10, arbitrary: fc.integer({ min: 1, max: 4 }) },
    { weight: 1, arbitrary: fc.constantFrom(0, 25, 1.5) },
  ),
  tif: fc.constantFrom('GTC', 'GTC', 'GTC', 'GTC', 'IOC') as fc.Arbitrary<'GTC' | 'IOC'>,
  postOnly: fc.constantFrom(undefined, undefined, true),
  stp: stps,
});

const invalidPlace = fc.record({
  id: ids,
  field: fc.constantFrom('price', 'quantity'),
  value: fc.constantFrom(0, -1, 1.5, Number.MAX_SAFE_INTEGER + 1, NaN),
});

export const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 6,
    arbitrary: limitCmd.map((c): Command => ({
      kind: 'place',
      cmd: {
        id: c.id,
        account: c.account,
        side: c.side,
        type: 'limit',
        price: c.price,
        quantity: c.quantity,
        timeInForce: c.tif,
        postOnly: c.tif === 'GTC' ? c.postOnly && c.quantity % 3 === 0 : undefined,
        stp: c.stp,
      },
    })),
  },
  {
    weight: 2,
    arbitrary: marketCmd.map((c): Command => ({
      kind: 'place',
      cmd: {
        id: c.id,
        account: c.account,
        side: c.side,
        type: 'market',
        quantity: c.quantity,
        timeInForce: c.tif,
        stp: c.stp,
        maxSlippageTicks: c.maxSlippageTicks,
        quoteBudget: c.quoteBudget,
      },
    })),
  },
  {
    weight: 3,
    arbitrary: stopCmd.map((c): Command => ({
      kind: 'place',
      cmd: c.market
        ? {
            id: c.id,
            account: c.account,
            side: c.side,
            type: 'market',
            quantity: c.quantity,
            timeInForce: c.tif,
            stp: c.stp,
            stopPrice: stopPriceOf(c),
            maxSlippageTicks: c.maxSlippageTicks,
          }
        : {
            id: c.id,
            account: c.account,
            side: c.side,
            type: 'limit',
            price: c.price,
            quantity: c.quantity,
            timeInForce: c.tif,
            postOnly: c.postOnly,
            stp: c.stp,
            stopPrice: stopPriceOf(c),
          },
    })),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({ id: ids, account: fc.option(accounts, { nil: undefined }) })
      .map((c): Command => ({ kind: 'cancel', id: c.id, ...(c.account ? { account: c.account } : {}) })),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({
        id: ids,
        price: fc.option(prices, { nil: undefined }),
        quantity: fc.option(quantities, { nil: undefined }),
      })
      .map((c): Command => ({ kind: 'amend', cmd: { id: c.id, price: c.price, quantity: c.quantity } })),
  },
  {
    weight: 3,
    arbitrary: icebergCmd.map((c): Command => ({
      kind: 'place',
      cmd: {
        id: c.id,
        account: c.account,
        side: c.side,
        type: 'limit',
        price: c.price,
        quantity: c.quantity,
        timeInForce: c.tif,
        postOnly: c.postOnly,
        stp: c.stp,
        displayQuantity: c.display,
      },
    })),
  },
  // the host's journaled "end auction" (a no-op reject in continuous trading)
  { weight: 1, arbitrary: fc.constant<Command>({ kind: 'endAuction' }) },
  {
    weight: 1,
    arbitrary: invalidPlace.map((c): Command => ({
      kind: 'place',
      cmd: {
        id: c.id,
        account: 'A',
        side: 'buy',
        type: 'limit',
        price: 100,
        quantity: 1,
        timeInForce: 'GTC',
        [c.field]: c.value,
      },
    })),
  },
);

export const commandsArb = fc.array(commandArb, { minLength: 1, maxLength: 120 });

export function runOnEngine(book: OrderBook, c: Command): BookEvent[] {
  if (c.kind === 'place') return book.place(c.cmd).events;
  if (c.kind === 'cancel') return book.cancel(c.id, c.account).events;
  if (c.kind === 'endAuction') return book.endAuction().events;
  return book.amend(c.cmd).events;
}

export function runOnReference(ref: ReferenceBook, c: Command): BookEvent[] {
  if (c.kind === 'place') return ref.place(c.cmd);
  if (c.kind === 'cancel') return ref.cancel(c.id, c.account);
  if (c.kind === 'endAuction') return ref.endAuction();
  return ref.amend(c.cmd);
}

/** Longer sequences, so that prices move and stops trigger (and cascade) often. */
export const longCommandsArb = fc.array(commandArb, { minLength: 60, maxLength: 200 });
