/**
 * Balances and the ledger statement of one user, as the API shows them. Served to the user themself
 * (`/api/v1/wallet/*`) and to support staff looking at a user's account (`/api/v1/admin/wallet/users/:userId/*`).
 */
import { ROW_ID_PATTERN } from '@exchange/contracts';
import { badRequest, Type, type Static } from '@exchange/platform';
import type { WalletContext } from '../context.ts';
import { userPostings } from '../ledger/repository.ts';
import { userBalances } from '../ledger/service.ts';

const AssetSymbol = Type.String({ pattern: '^[A-Z0-9]{2,10}$', description: 'Asset symbol, e.g. BTC' });

const Balance = Type.Object({
  asset: Type.String(),
  available: Type.String(),
  held: Type.String(),
  total: Type.String(),
});
export const BalancesResponse = Type.Object({ balances: Type.Array(Balance) });

const LedgerLine = Type.Object({
  id: Type.String({ description: 'Posting id' }),
  entryId: Type.String(),
  asset: Type.String(),
  amount: Type.String({ description: 'Signed decimal: credit > 0, debit < 0' }),
  balanceAfter: Type.String(),
  memo: Type.String(),
  reason: Type.String(),
  refType: Type.String(),
  refId: Type.String(),
  createdAt: Type.String(),
});
export const LedgerResponse = Type.Object({
  entries: Type.Array(LedgerLine),
  nextCursor: Type.Union([Type.String(), Type.Null()]),
});

export const LedgerQuery = Type.Object({
  asset: Type.Optional(AssetSymbol),
  limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
  cursor: Type.Optional(Type.String({ maxLength: 200, description: 'nextCursor of the previous page' })),
});

/** Every configured asset, zero where the user has no account yet, formatted at the asset's precision. */
export async function balancesOf(
  ctx: WalletContext,
  userId: string,
): Promise<Static<typeof BalancesResponse>['balances']> {
  const { assets } = ctx;
  const b = await userBalances(ctx.pool, userId);
  return assets.list().map((a) => {
    const x = b.get(a.symbol);
    return {
      asset: a.symbol,
      available: assets.format(a.symbol, x?.available ?? 0n),
      held: assets.format(a.symbol, x?.held ?? 0n),
      total: assets.format(a.symbol, x?.total ?? 0n),
    };
  });
}

const ROW_ID = new RegExp(ROW_ID_PATTERN);

/** Postings on the user's accounts, newest first; the cursor is the last posting id, opaque to clients. */
export async function ledgerPage(
  ctx: WalletContext,
  userId: string,
  q: Static<typeof LedgerQuery>,
): Promise<Static<typeof LedgerResponse>> {
  const { assets } = ctx;
  if (q.asset) assets.get(q.asset);
  let before: string | undefined;
  if (q.cursor) {
    try {
      const c = JSON.parse(Buffer.from(q.cursor, 'base64url').toString('utf8')) as { p?: unknown };
      if (typeof c.p !== 'string' || !ROW_ID.test(c.p)) throw new Error('bad');
      before = c.p;
    } catch {
      throw badRequest('INVALID_CURSOR', 'cursor is not one this API returned');
    }
  }
  // one row more than the page: whether there is a next page
  const rows = await userPostings(ctx.pool, userId, { asset: q.asset, before, limit: q.limit + 1 });
  const page = rows.slice(0, q.limit);
  const last = page[page.length - 1];
  return {
    entries: page.map((r) => ({
      id: r.id,
      entryId: r.entry_id,
      asset: r.asset,
      amount: assets.format(r.asset, r.amount),
      balanceAfter: assets.format(r.asset, r.balance_after),
      memo: r.memo,
      reason: r.reason,
      refType: r.ref_type,
      refId: r.ref_id,
      createdAt: r.created_at.toISOString(),
    })),
    nextCursor:
      rows.length > q.limit && last ? Buffer.from(JSON.stringify({ p: last.id })).toString('base64url') : null,
  };
}
