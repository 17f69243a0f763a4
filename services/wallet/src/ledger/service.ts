/**
 * The double-entry ledger core: accounts and balanced journal entries (holds are in holds.ts, the SQL of both in
 * repository.ts). Every function takes the client of the caller's transaction, so a movement and whatever caused it (a
 * deposit row, an inbox row, an outbox message) commit together or not at all.
 *
 * Concurrency: every function that changes an account first locks the accounts it touches, `ORDER BY id FOR UPDATE`
 * by the bigint id, never its text (one consistent order everywhere, so no deadlocks between movements), then the
 * holds it touches (`ORDER BY id`).
 * Balances are checked in code under those locks (clear error codes) and again by the CHECK constraints (last line
 * of defence).
 */
import { AppError, conflict, notFound } from '@exchange/platform';
import type { PoolClient } from '@exchange/db';
import type { AccountRef, AccountRow, Capture, HoldRow, Leg } from './model.ts';
import * as repo from './repository.ts';

export const insufficientFunds = (asset: string, available: bigint, needed: bigint) =>
  new AppError(400, 'INSUFFICIENT_FUNDS', `insufficient ${asset} available`, {
    details: { asset, available: available.toString(), required: needed.toString() },
  });

const refKey = (r: AccountRef) => (r.kind === 'user' ? `user:${r.userId}:${r.asset}` : `${r.kind}::${r.asset}`);

/**
 * System accounts never change id once created, so their ids are kept per process: the settlement of every trade
 * needs the fee account of both assets, and looking them up each time cost two statements per trade.
 */
const systemAccountIds = new Map<string, string>();

/**
 * Make sure the accounts exist (created on first use with zero balances) and return their ids by ref key.
 * Inserted in a fixed order so two transactions creating the same new accounts cannot deadlock.
 */
export async function ensureAccounts(client: PoolClient, refs: AccountRef[]): Promise<Map<string, string>> {
  const unique = new Map(refs.map((r) => [refKey(r), r]));
  const out = new Map<string, string>();
  // Users' accounts almost always exist: find them all in one plain read first. An INSERT … ON CONFLICT per account
  // (the creation path below) costs a statement each, burns a sequence value and waits on any transaction holding
  // the row locked, even when the row is there.
  const users = [...unique.values()].filter((r): r is Extract<AccountRef, { kind: 'user' }> => r.kind === 'user');
  if (users.length) {
    const found = await repo.findUserAccounts(client, users);
    users.forEach((r, i) => {
      const id = found[i];
      if (id) out.set(refKey(r), id);
    });
  }
  for (const [key, r] of [...unique].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (out.has(key)) continue;
    if (r.kind !== 'user') {
      const known = systemAccountIds.get(key);
      if (known) {
        out.set(key, known);
        continue;
      }
    }
    const rows =
      r.kind === 'user'
        ? await repo.createUserAccount(client, r.userId, r.asset)
        : await repo.createSystemAccount(client, r.kind, r.asset);
    let id = rows[0]?.id;
    if (!id) {
      // Created by a concurrent transaction that committed while we waited on ON CONFLICT: that row is not in
      // this statement's snapshot, but a new statement (READ COMMITTED) sees it.
      const again =
        r.kind === 'user'
          ? await repo.findUserAccount(client, r.userId, r.asset)
          : await repo.findSystemAccount(client, r.kind, r.asset);
      id = again[0]?.id;
    }
    if (!id) throw new Error(`account ${key} could not be created`);
    // Cached only once it is certainly committed by someone: a row this transaction inserted may still roll back.
    if (r.kind !== 'user' && rows.length > 0 && !(await repo.insertedHere(client, id))) systemAccountIds.set(key, id);
    out.set(key, id);
  }
  return out;
}

export interface PostEntryInput {
  /** At-most-once key of the business event, e.g. `trade:<tradeId>`, `deposit:<id>`. */
  idempotencyKey: string;
  reason: string;
  refType: string;
  refId: string;
  causationId?: string;
  legs: Leg[];
  /** Holds whose reserved funds pay (part of) the debits. */
  captures?: Capture[];
}

export type PostEntryResult = { status: 'posted'; entryId: string } | { status: 'duplicate'; entryId: string };

/**
 * Post one balanced journal entry (all legs or none) and capture the named holds.
 * Returns `duplicate` (and changes nothing) when an entry with the same idempotency key exists.
 *
 * A capture takes what it can from its hold's remaining amount. Only a hold that was *released* (a settlement
 * overtaken by its order's release) may be captured beyond that, and only up to what the release gave back: that
 * part comes out of the account's available funds and is recorded as `late_captured` (so captured + late_captured
 * never exceeds the hold). If those funds are gone, the entry fails with INSUFFICIENT_FUNDS; capturing more than a
 * hold ever reserved is 409 HOLD_EXCEEDED. Either way nothing is written: a user balance never goes below zero and
 * `held` never exceeds it.
 */
export async function postEntry(client: PoolClient, input: PostEntryInput): Promise<PostEntryResult> {
  return (await postEntries(client, [input]))[0]!;
}

/** A hold's state while the entries of one call are applied to it in memory. */
interface HoldState {
  row: HoldRow;
  captured: bigint;
  lateCaptured: bigint;
  status: HoldRow['status'];
  closes: boolean;
}

/**
 * `postEntry` for several entries in one transaction, with the outcome of posting them one after the other: an entry
 * sees the balances and holds the earlier ones left, an idempotency key already posted (before, or earlier in the
 * list) is a `duplicate` that changes nothing, and the first entry that cannot be posted throws its error (the
 * caller's transaction then rolls back whole, as it would after posting the earlier ones singly).
 *
 * Statements per call, not per entry: the entries, the accounts (found, then locked in id order), the holds (locked
 * in id order), then one statement that writes the holds, the accounts and the postings. The settlement consumer
 * posts a batch of trades this way; a trade posted singly took about fifteen statements.
 */
export async function postEntries(client: PoolClient, inputs: PostEntryInput[]): Promise<PostEntryResult[]> {
  const { results, writes } = await stageEntries(client, inputs);
  if (writes) await repo.writeLedger(client, writes);
  return results;
}

/**
 * `postEntries` up to its last statement: the entries are inserted and their accounts and holds locked and checked,
 * and what is left to write is returned for the caller to send, in one statement with writes of its own
 * (`repo.LEDGER_WRITES_CTES`), before anything else in its transaction. The settlement does, so its locks are held
 * over one statement fewer per thing it writes. `writes` is absent when every entry was a duplicate.
 */
export async function stageEntries(
  client: PoolClient,
  inputs: PostEntryInput[],
): Promise<{ results: PostEntryResult[]; writes?: repo.LedgerWrites }> {
  for (const input of inputs) checkBalanced(input);
  if (inputs.length === 0) return { results: [] };

  const inserted = await repo.insertEntries(client, inputs);
  // A key repeated in the list is inserted once, for its first occurrence (unnest order); the others are duplicates.
  const fresh = new Map(inserted.map((r) => [r.idempotency_key, r.id]));
  const posted = new Set<number>();
  const seen = new Set<string>();
  inputs.forEach((i, n) => {
    if (fresh.has(i.idempotencyKey) && !seen.has(i.idempotencyKey)) posted.add(n);
    seen.add(i.idempotencyKey);
  });
  const known = new Map(fresh);
  const before = [...new Set(inputs.filter((i) => !fresh.has(i.idempotencyKey)).map((i) => i.idempotencyKey))];
  if (before.length) {
    for (const r of await repo.entriesByKey(client, before)) known.set(r.idempotency_key, r.id);
  }
  const results: PostEntryResult[] = inputs.map((i, n) => ({
    status: posted.has(n) ? 'posted' : 'duplicate',
    entryId: known.get(i.idempotencyKey)!,
  }));
  const todo = inputs.filter((_, n) => posted.has(n));
  if (todo.length === 0) return { results };

  const refs = todo.flatMap((i) => i.legs.map((l) => l.account));
  let ids = await ensureAccounts(client, refs);
  // Accounts first, then holds, each in id order (the order every ledger function locks in). A capture's hold must be
  // of an account the entry debits, so the legs' accounts cover the holds' accounts too.
  const both = await repo.lockAccountsAndHolds(
    client,
    [...ids.values()],
    todo.flatMap((i) => (i.captures ?? []).map((c) => c.holdId)),
  );
  let accounts = both.accounts;
  const locked = both.holds;
  if (!refs.every((r) => isAccountOf(accounts.get(ids.get(refKey(r))!), r))) {
    // A cached system account id that is not that account in this database (it was restored, or the process talks
    // to several): forget the cache and look the accounts up again. Only system accounts are cached, and holds are
    // on users' accounts, which are locked already: a transaction holding one of the system accounts locked here
    // cannot be waiting for these holds, since it would need their users' accounts first.
    systemAccountIds.clear();
    ids = await ensureAccounts(client, refs);
    accounts = await repo.lockAccounts(client, [...ids.values()]);
  }

  const balance = new Map<string, bigint>();
  const held = new Map<string, bigint>();
  for (const a of accounts.values()) {
    balance.set(a.id, BigInt(a.balance));
    held.set(a.id, BigInt(a.held));
  }
  const holds = new Map<string, HoldState>();
  const postings: repo.LedgerWrites['postings'] = [];

  for (const input of todo) {
    const entryId = fresh.get(input.idempotencyKey)!;
    const mine = new Set(input.legs.map((l) => ids.get(refKey(l.account))!));
    const start = new Map([...mine].map((id) => [id, { balance: balance.get(id)!, held: held.get(id)! }]));
    for (const c of input.captures ?? []) {
      const row = locked.get(c.holdId);
      if (!row) throw notFound('HOLD_NOT_FOUND', `hold ${c.holdId} does not exist`);
      let h = holds.get(c.holdId);
      if (!h) {
        h = {
          row,
          captured: BigInt(row.captured),
          lateCaptured: BigInt(row.late_captured),
          status: row.status,
          closes: false,
        };
        holds.set(c.holdId, h);
      }
      if (row.user_id !== c.userId || row.asset !== c.asset || row.ref_type !== c.refType) {
        throw conflict(
          'HOLD_MISMATCH',
          `hold ${c.holdId} is a ${row.ref_type} hold of ${row.user_id}/${row.asset}, not a ${c.refType} hold of ${c.userId}/${c.asset}`,
        );
      }
      if (!input.legs.some((l) => ids.get(refKey(l.account)) === row.account_id && l.amount < 0n)) {
        throw new Error(`capture of hold ${c.holdId} without a debit of its account`);
      }
      const amount = BigInt(row.amount);
      const released = BigInt(row.released);
      const remaining = h.status === 'active' ? amount - h.captured - released : 0n;
      const fromHold = c.amount < remaining ? c.amount : remaining;
      const late = c.amount - fromHold;
      if (late > 0n && late > released - h.lateCaptured) {
        throw conflict(
          'HOLD_EXCEEDED',
          `capture of ${c.amount} exceeds what hold ${row.id} reserved (amount ${row.amount}, captured ${h.captured}, ` +
            `released ${row.released}, captured late ${h.lateCaptured})`,
        );
      }
      held.set(row.account_id, held.get(row.account_id)! - fromHold);
      h.captured += fromHold;
      h.lateCaptured += late;
      if (h.status === 'active' && h.captured + released === amount) {
        h.status = released === 0n ? 'captured' : 'released';
        h.closes = true;
      }
    }
    for (const l of input.legs) {
      const id = ids.get(refKey(l.account))!;
      const after = balance.get(id)! + l.amount;
      balance.set(id, after);
      postings.push({ entryId, accountId: id, asset: l.account.asset, amount: l.amount, after, memo: l.memo });
    }
    for (const id of mine) {
      const a = accounts.get(id)!;
      const b = balance.get(id)!;
      if (a.kind === 'user' && (b < 0n || held.get(id)! > b)) {
        const was = start.get(id)!;
        throw insufficientFunds(a.asset, was.balance - was.held, was.balance - b);
      }
    }
  }

  const changedHolds = [...holds.values()].filter(
    (h) => h.captured !== BigInt(h.row.captured) || h.lateCaptured !== BigInt(h.row.late_captured) || h.closes,
  );
  const changedAccounts = [...accounts.values()].filter(
    (a) => balance.get(a.id) !== BigInt(a.balance) || held.get(a.id) !== BigInt(a.held),
  );
  return {
    results,
    writes: {
      holds: changedHolds.map((h) => ({
        id: h.row.id,
        captured: h.captured,
        lateCaptured: h.lateCaptured,
        status: h.status,
        closes: h.closes,
      })),
      accounts: changedAccounts.map((a) => ({ id: a.id, balance: balance.get(a.id)!, held: held.get(a.id)! })),
      postings,
    },
  };
}

const isAccountOf = (a: AccountRow | undefined, r: AccountRef) =>
  a !== undefined && a.kind === r.kind && a.asset === r.asset && (r.kind !== 'user' || a.user_id === r.userId);

/** Programming errors, not user errors: an entry must balance per asset and have no zero legs. */
function checkBalanced(input: PostEntryInput): void {
  const sums = new Map<string, bigint>();
  for (const l of input.legs) {
    if (l.amount === 0n) throw new Error(`journal entry ${input.idempotencyKey}: zero leg (${l.memo})`);
    sums.set(l.account.asset, (sums.get(l.account.asset) ?? 0n) + l.amount);
  }
  for (const [asset, s] of sums) {
    if (s !== 0n) throw new Error(`journal entry ${input.idempotencyKey} does not balance in ${asset} (${s})`);
  }
  if (input.legs.length === 0) throw new Error(`journal entry ${input.idempotencyKey} has no legs`);
}

export interface Balance {
  asset: string;
  total: bigint;
  held: bigint;
  available: bigint;
}

/** A user's balances per asset (only assets with an account). */
export async function userBalances(client: Pick<PoolClient, 'query'>, userId: string): Promise<Map<string, Balance>> {
  return new Map(
    (await repo.userAccountBalances(client, userId)).map((r) => {
      const total = BigInt(r.balance);
      const held = BigInt(r.held);
      return [r.asset, { asset: r.asset, total, held, available: total - held }];
    }),
  );
}
