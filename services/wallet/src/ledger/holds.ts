/**
 * Holds: funds reserved for an order or a withdrawal, created idempotently by id, captured by journal entries
 * (service.ts), released or resized here. Accounts are locked before holds, each in id order, as every ledger
 * function does; the SQL is in repository.ts.
 */
import { AppError, badRequest, conflict, notFound } from '@exchange/platform';
import type { PoolClient } from '@exchange/db';
import type { AccountRow, HoldRow } from './model.ts';
import * as repo from './repository.ts';
import { insufficientFunds } from './service.ts';

export interface CreateHoldInput {
  holdId: string;
  userId: string;
  asset: string;
  amount: bigint;
  reason: string;
  refType: string;
  refId: string;
}

/**
 * Reserve funds. Idempotent by hold id: the same hold again returns it (`created: false`); the same id with
 * different terms is 409 HOLD_CONFLICT. 400 INSUFFICIENT_FUNDS when available < amount.
 */
export async function createHold(
  client: PoolClient,
  input: CreateHoldInput,
): Promise<{ hold: HoldRow; created: boolean }> {
  const [outcome] = await createHolds(client, [input]);
  if (outcome!.ok) return outcome!.value;
  if ('busy' in outcome!) throw new Error('unreachable: a hold without skipLocked is never busy');
  throw outcome!.error;
}

export type HoldOutcome = { ok: true; value: { hold: HoldRow; created: boolean } } | { ok: false; error: AppError };
/** `skipLocked`: the hold's account was locked by another transaction; nothing was decided or written for it. */
export type HoldBusy = { ok: false; busy: true };

/**
 * `createHold` for several holds in one transaction (the hold API's group commit), each with its own outcome, in
 * input order, as if they had been created one after the other: a later hold sees the funds the earlier ones of the
 * batch reserved, a hold id repeated in the batch is a replay (or a conflict) of its first occurrence. A refused hold
 * (zero amount, insufficient funds, conflicting reuse of an id) is that item's error and writes nothing; the others
 * go ahead. Accounts are locked in one statement in id order (as every ledger function does), holds after accounts.
 * Statements per batch, not per hold: one that finds and locks the accounts and the existing holds, one that inserts
 * the holds and adds them to the accounts' held amounts.
 *
 * `skipLocked`: accounts another transaction holds locked are skipped (`FOR UPDATE SKIP LOCKED`) and their holds
 * answered `busy`, to be created afterwards on their own. A batch holding many account locks must never *wait* for
 * one: the settlement consumer's batch locks accounts in several steps (a run of trades, a release, the next run; not
 * in one global order), so waiting could deadlock with it.
 */
export async function createHolds(
  client: PoolClient,
  inputs: CreateHoldInput[],
  opts: { skipLocked?: boolean } = {},
): Promise<Array<HoldOutcome | HoldBusy>> {
  const out: Array<HoldOutcome | HoldBusy | undefined> = inputs.map((i) =>
    i.amount <= 0n
      ? { ok: false, error: badRequest('AMOUNT_ZERO', 'hold amount must be greater than zero') }
      : undefined,
  );
  const live = inputs.flatMap((i, n) => (out[n] ? [] : [{ input: i, n }]));
  if (live.length === 0) return out as HoldOutcome[];

  // The users' accounts and the holds that already exist, locked in one statement. A user without an account in the
  // asset has nothing to hold (insufficient funds), so none is created for a hold.
  const key = (userId: string, asset: string) => `${userId}:${asset}`;
  const pairs = [...new Map(live.map(({ input: i }) => [key(i.userId, i.asset), i])).values()];
  const { accounts: found, holds: existing } = await repo.lockForNewHolds(
    client,
    pairs,
    live.map(({ input: i }) => i.holdId),
    opts.skipLocked,
  );
  const accountOf = new Map<string, { id: string; locked: AccountRow | undefined }>();
  pairs.forEach((p, i) => {
    if (found[i]) accountOf.set(key(p.userId, p.asset), found[i]);
  });

  // Decide in input order, with the funds each earlier hold of the batch reserved.
  const reserved = new Map<string, bigint>();
  const firstOf = new Map<string, CreateHoldInput>();
  const toInsert: Array<{ input: CreateHoldInput; n: number; accountId: string }> = [];
  const replays: Array<{ input: CreateHoldInput; n: number }> = [];
  for (const { input: i, n } of live) {
    const known = existing.get(i.holdId);
    if (known) {
      out[n] = attempt(() => ({ hold: sameHold(known, i), created: false }));
      continue;
    }
    const first = firstOf.get(i.holdId);
    if (first) {
      replays.push({ input: i, n }); // answered from the row the first occurrence inserts
      continue;
    }
    const ref = accountOf.get(key(i.userId, i.asset));
    if (!ref) {
      out[n] = { ok: false, error: insufficientFunds(i.asset, 0n, i.amount) };
      continue;
    }
    const { id: accountId, locked: account } = ref;
    if (!account) {
      out[n] = { ok: false, busy: true }; // skipLocked: its account is busy
      continue;
    }
    const available = BigInt(account.balance) - BigInt(account.held) - (reserved.get(accountId) ?? 0n);
    if (available < i.amount) {
      out[n] = { ok: false, error: insufficientFunds(i.asset, available, i.amount) };
      continue;
    }
    reserved.set(accountId, (reserved.get(accountId) ?? 0n) + i.amount);
    firstOf.set(i.holdId, i);
    toInsert.push({ input: i, n, accountId });
  }

  if (toInsert.length) {
    const inserted = await repo.insertHolds(
      client,
      toInsert.map(({ input: i, accountId }) => ({ ...i, accountId })),
    );
    const byId = new Map(inserted.map((h) => [h.id, h]));
    for (const { input: i, n } of toInsert) {
      const h = byId.get(i.holdId);
      if (h) {
        out[n] = { ok: true, value: { hold: h, created: true } };
        continue;
      }
      // Created concurrently (committed while we waited on ON CONFLICT): compare with what is there.
      const other = await repo.getHold(client, i.holdId, false);
      out[n] = attempt(() => ({ hold: sameHold(other!, i), created: false }));
    }
  }
  for (const { input: i, n } of replays) {
    const first = out[inputs.indexOf(firstOf.get(i.holdId)!)]!;
    out[n] = first.ok
      ? attempt(() => ({ hold: sameHold(first.value.hold, i), created: false }))
      : 'busy' in first
        ? first
        : { ok: false, error: first.error };
  }
  return out as Array<HoldOutcome | HoldBusy>;
}

/**
 * `createHolds` for one hold outside a transaction, in one statement that is its own (`repo.holdAlone`): one round
 * trip where `BEGIN`, the lock, the insert and `COMMIT` took four. The same decisions in the same order: a zero
 * amount, a replay or conflicting reuse of the id, no account, a busy account (`skipLocked`), the funds.
 */
export async function createHoldAlone(
  db: Pick<PoolClient, 'query'>,
  i: CreateHoldInput,
  opts: { skipLocked?: boolean } = {},
): Promise<HoldOutcome | HoldBusy> {
  if (i.amount <= 0n) return { ok: false, error: badRequest('AMOUNT_ZERO', 'hold amount must be greater than zero') };
  const { account, existing, inserted } = await repo.holdAlone(db, i, opts.skipLocked ?? false);
  if (existing) return attempt(() => ({ hold: sameHold(existing, i), created: false }));
  if (!account) return { ok: false, error: insufficientFunds(i.asset, 0n, i.amount) };
  if (!account.locked) return { ok: false, busy: true };
  if (inserted) return { ok: true, value: { hold: inserted, created: true } };
  const available = BigInt(account.locked.balance) - BigInt(account.locked.held);
  if (available < i.amount) return { ok: false, error: insufficientFunds(i.asset, available, i.amount) };
  // The funds were there but the insert found the id taken: created concurrently (committed while we waited on it).
  const other = await repo.getHold(db, i.holdId, false);
  return attempt(() => ({ hold: sameHold(other!, i), created: false }));
}

function attempt(fn: () => { hold: HoldRow; created: boolean }): HoldOutcome {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    if (err instanceof AppError) return { ok: false, error: err };
    throw err;
  }
}

function sameHold(h: HoldRow, i: CreateHoldInput): HoldRow {
  const same =
    h.user_id === i.userId &&
    h.asset === i.asset &&
    BigInt(h.amount) === i.amount &&
    h.ref_type === i.refType &&
    h.ref_id === i.refId &&
    h.reason === i.reason;
  if (!same) throw conflict('HOLD_CONFLICT', `hold ${i.holdId} already exists with different terms`);
  return h;
}

/**
 * Release what is left of a hold and end it. Idempotent: releasing an ended hold changes nothing and returns it
 * with `released: 0n`. 404 HOLD_NOT_FOUND for an unknown id; 409 HOLD_MISMATCH when the hold is not of `refType`
 * (an order's release must never hand back a withdrawal's funds, whose payout may already be on its way).
 */
export type HoldRefType = 'order' | 'withdrawal' | 'order_amend';

export async function releaseHold(
  client: PoolClient,
  holdId: string,
  reason: string,
  refType: HoldRefType | readonly HoldRefType[],
): Promise<{ hold: HoldRow; released: bigint }> {
  return (await releaseHolds(client, [{ holdId, reason, refType }]))[0]!;
}

export interface HoldRelease {
  holdId: string;
  reason: string;
  refType: HoldRefType | readonly HoldRefType[];
}

/**
 * `releaseHold` for a list, with the outcome of releasing them one after the other (a hold named twice releases
 * nothing the second time; the first release that fails throws, and the caller's transaction rolls back whole) in
 * four statements whatever its length. `check` sees each hold as it stands at its turn, after the list's earlier
 * releases, before this release's own checks; it throws to refuse (undefined: no such hold).
 */
export async function releaseHolds(
  client: PoolClient,
  list: readonly HoldRelease[],
  check?: (hold: HoldRow | undefined, index: number) => void,
): Promise<Array<{ hold: HoldRow; released: bigint }>> {
  if (list.length === 0) return [];
  const ids = [...new Set(list.map((r) => r.holdId))];
  // accounts first, in id order, like every other path (the holds' owners are never deadlocked against a settlement)
  await repo.lockHoldAccounts(client, ids);
  const holds = await repo.lockHolds(client, ids);
  const out: Array<{ hold: HoldRow; released: bigint }> = [];
  const changed = new Map<string, HoldRow>();
  const heldDown = new Map<string, bigint>();
  list.forEach((r, i) => {
    const h = holds.get(r.holdId);
    check?.(h, i);
    if (!h) throw notFound('HOLD_NOT_FOUND', `hold ${r.holdId} does not exist`);
    // Checked on the locked row: the type never changes, but the check belongs with what it guards.
    const allowed: readonly string[] = typeof r.refType === 'string' ? [r.refType] : r.refType;
    if (!allowed.includes(h.ref_type)) {
      throw conflict('HOLD_MISMATCH', `hold ${r.holdId} is a ${h.ref_type} hold, not a ${allowed.join('/')} hold`);
    }
    if (h.status !== 'active') {
      out.push({ hold: { ...h }, released: 0n });
      return;
    }
    const remaining = BigInt(h.amount) - BigInt(h.captured) - BigInt(h.released);
    const after: HoldRow = {
      ...h,
      released: (BigInt(h.released) + remaining).toString(),
      status: 'released',
      release_reason: r.reason,
    };
    holds.set(h.id, after);
    changed.set(h.id, after);
    heldDown.set(h.account_id, (heldDown.get(h.account_id) ?? 0n) + remaining);
    out.push({ hold: after, released: remaining });
  });
  if (changed.size) {
    const rows = [...changed.values()];
    const written = await repo.markHoldsReleased(client, rows);
    const byId = new Map(written.map((h) => [h.id, h]));
    // a hold named again after its release is that same ended row
    for (const o of out) o.hold = byId.get(o.hold.id) ?? o.hold;
    await repo.subtractHeld(client, heldDown);
  }
  return out;
}

/**
 * An amend changed what an order must reserve: end the amend's top-up hold (if any; its funds become available) and
 * change the order hold's amount by `delta`, in that order, under the account lock. A positive delta needs that much
 * available (the top-up just released covers it). An order hold that already ended is left alone (its funds went back
 * with its release). The hold stays active: its new amount remains above what it has captured and released.
 */
export async function adjustOrderHold(
  client: PoolClient,
  input: { holdId: string; userId: string; asset: string; delta: bigint; topUpHoldId?: string; reason: string },
): Promise<{ adjusted: bigint; toppedUpReleased: bigint }> {
  const holds = [input.holdId, ...(input.topUpHoldId ? [input.topUpHoldId] : [])];
  const peek = await repo.peekHolds(client, holds);
  const order = peek.find((r) => r.id === input.holdId);
  if (!order) throw notFound('HOLD_NOT_FOUND', `hold ${input.holdId} does not exist`);
  for (const r of peek) {
    if (r.user_id !== input.userId || r.asset !== input.asset) {
      throw conflict('HOLD_MISMATCH', `hold ${r.id} is not a ${input.asset} hold of user ${input.userId}`);
    }
  }
  await repo.lockAccounts(client, [...new Set(peek.map((r) => r.account_id))].sort());
  let toppedUpReleased = 0n;
  if (input.topUpHoldId && peek.some((r) => r.id === input.topUpHoldId)) {
    toppedUpReleased = (await releaseHold(client, input.topUpHoldId, input.reason, 'order_amend')).released;
  }
  const h = (await repo.getHold(client, input.holdId, true))!;
  if (h.ref_type !== 'order') throw conflict('HOLD_MISMATCH', `hold ${input.holdId} is not an order hold`);
  if (h.status !== 'active' || input.delta === 0n) return { adjusted: 0n, toppedUpReleased };
  const amount = BigInt(h.amount) + input.delta;
  if (amount <= BigInt(h.captured) + BigInt(h.released)) {
    throw conflict(
      'HOLD_EXCEEDED',
      `hold ${input.holdId}: amount ${amount} would not cover captured ${h.captured} + released ${h.released}`,
    );
  }
  if (input.delta > 0n) {
    const acc = (await repo.lockAccounts(client, [h.account_id])).get(h.account_id)!;
    const available = BigInt(acc.balance) - BigInt(acc.held);
    if (available < input.delta) throw insufficientFunds(input.asset, available, input.delta);
  }
  await repo.setHoldAmount(client, input.holdId, amount);
  await repo.addToHeld(client, h.account_id, input.delta);
  return { adjusted: input.delta, toppedUpReleased };
}
