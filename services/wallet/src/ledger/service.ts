/**
 * The double-entry ledger core: accounts, balanced journal entries, holds. Every function takes the client of the
 * caller's transaction, so a movement and whatever caused it (a deposit row, an inbox row, an outbox message) commit
 * together or not at all.
 *
 * Concurrency: every function that changes an account first locks the accounts it touches with
 * `SELECT … ORDER BY id FOR UPDATE` (one consistent order everywhere, so no deadlocks between movements), then the
 * holds it touches (`ORDER BY id`). Balances are checked in code under those locks (clear error codes) and again by
 * the CHECK constraints (last line of defence).
 */
import { AppError, badRequest, conflict, notFound } from '@exchange/platform';
import type { PoolClient } from '@exchange/db';

export const SYSTEM_KINDS = ['fees', 'deposit_rail', 'withdrawal_rail'] as const;
export type SystemKind = (typeof SYSTEM_KINDS)[number];
export type AccountKind = 'user' | SystemKind;

export type AccountRef = { kind: 'user'; userId: string; asset: string } | { kind: SystemKind; asset: string };

export interface Leg {
  account: AccountRef;
  /** Signed minor units: credit > 0, debit < 0. */
  amount: bigint;
  /** What the leg is, shown on statements: deposit, trade_buy, trade_fee, withdrawal, … */
  memo: string;
}

export interface Capture {
  holdId: string;
  /** How much of the movement's debit of the hold's account comes out of the hold. */
  amount: bigint;
  /** The hold must belong to this user and asset (guards against a message naming the wrong hold). */
  userId: string;
  asset: string;
  /** What the hold must be for: `order` for trades, `withdrawal` for payouts. */
  refType: string;
}

export interface AccountRow {
  id: string;
  kind: AccountKind;
  user_id: string | null;
  asset: string;
  balance: string;
  held: string;
}

export interface HoldRow {
  id: string;
  user_id: string;
  account_id: string;
  asset: string;
  amount: string;
  captured: string;
  released: string;
  late_captured: string;
  status: 'active' | 'captured' | 'released';
  reason: string;
  ref_type: string;
  ref_id: string;
  release_reason: string | null;
  created_at: Date;
  closed_at: Date | null;
}

/** The ledger tables, schema-qualified for SQL text. */
const TABLES = {
  accounts: 'wallet.accounts',
  entries: 'wallet.journal_entries',
  postings: 'wallet.postings',
  holds: 'wallet.holds',
};

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

/** The statement that finds a system account by kind with the kind written as a literal (see ensureAccounts). */
function systemAccountSql(kind: SystemKind, withInsert: boolean): string {
  if (!SYSTEM_KINDS.includes(kind)) throw new Error(`unknown system account kind ${String(kind)}`);
  // `kind = $1` cannot use the partial index `WHERE kind <> 'user'` under a generic plan (the planner cannot prove a
  // parameter differs from 'user'), and pg switches to a generic plan after five executions: every lookup then
  // scanned all accounts, O(users) per settlement. A literal kind lets the planner prove the index predicate.
  const select = `SELECT id::text FROM ${TABLES.accounts} WHERE kind = '${kind}' AND asset = $1`;
  if (!withInsert) return select;
  return `WITH ins AS (
            INSERT INTO ${TABLES.accounts} (kind, asset) VALUES ('${kind}', $1)
            ON CONFLICT (kind, asset) WHERE kind <> 'user' DO NOTHING RETURNING id)
          SELECT id::text FROM ins UNION ALL ${select}`;
}

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
    const found = await findUserAccounts(client, users);
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
    const { rows } =
      r.kind === 'user'
        ? await client.query<{ id: string }>(
            `WITH ins AS (
               INSERT INTO ${TABLES.accounts} (kind, user_id, asset) VALUES ('user', $1, $2)
               ON CONFLICT (user_id, asset) WHERE kind = 'user' DO NOTHING RETURNING id)
             SELECT id::text FROM ins UNION ALL
             SELECT id::text FROM ${TABLES.accounts} WHERE kind = 'user' AND user_id = $1 AND asset = $2`,
            [r.userId, r.asset],
          )
        : await client.query<{ id: string }>(systemAccountSql(r.kind, true), [r.asset]);
    let id = rows[0]?.id;
    if (!id) {
      // Created by a concurrent transaction that committed while we waited on ON CONFLICT: that row is not in
      // this statement's snapshot, but a new statement (READ COMMITTED) sees it.
      const again =
        r.kind === 'user'
          ? await client.query<{ id: string }>(
              `SELECT id::text FROM ${TABLES.accounts} WHERE kind = 'user' AND user_id = $1 AND asset = $2`,
              [r.userId, r.asset],
            )
          : await client.query<{ id: string }>(systemAccountSql(r.kind, false), [r.asset]);
      id = again.rows[0]?.id;
    }
    if (!id) throw new Error(`account ${key} could not be created`);
    // Cached only once it is certainly committed by someone: a row this transaction inserted may still roll back.
    if (r.kind !== 'user' && rows.length > 0 && !(await insertedHere(client, id))) systemAccountIds.set(key, id);
    out.set(key, id);
  }
  return out;
}

/** The ids of existing user accounts, one per (userId, asset) in input order (undefined where there is none). */
async function findUserAccounts(
  client: PoolClient,
  refs: Array<{ userId: string; asset: string }>,
): Promise<Array<string | undefined>> {
  const { rows } = await client.query<{ id: string; n: string }>(
    `SELECT a.id::text, p.n::text FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS p(user_id, asset, n)
       JOIN ${TABLES.accounts} a ON a.kind = 'user' AND a.user_id = p.user_id AND a.asset = p.asset`,
    [refs.map((r) => r.userId), refs.map((r) => r.asset)],
  );
  const out: Array<string | undefined> = refs.map(() => undefined);
  for (const r of rows) out[Number(r.n) - 1] = r.id;
  return out;
}

/** Whether the account row `id` was written by the caller's own (uncommitted) transaction. */
async function insertedHere(client: PoolClient, id: string): Promise<boolean> {
  const { rows } = await client.query<{ mine: boolean }>(
    `SELECT xmin::text::bigint = txid_current() % 4294967296 AS mine FROM ${TABLES.accounts} WHERE id = $1`,
    [id],
  );
  return rows[0]?.mine ?? true;
}

/** Lock accounts by id, always in ascending id order. */
export async function lockAccounts(
  client: PoolClient,
  ids: string[],
  skipLocked = false,
): Promise<Map<string, AccountRow>> {
  const { rows } = await client.query<AccountRow>(
    `SELECT id::text, kind, user_id, asset, balance::text, held::text FROM ${TABLES.accounts}
      WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE${skipLocked ? ' SKIP LOCKED' : ''}`,
    [[...new Set(ids)]],
  );
  return new Map(rows.map((r) => [r.id, r]));
}

async function lockHolds(client: PoolClient, ids: string[]): Promise<Map<string, HoldRow>> {
  if (ids.length === 0) return new Map();
  const { rows } = await client.query<HoldRow>(
    `SELECT ${HOLD_COLUMNS} FROM ${TABLES.holds} WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE`,
    [[...new Set(ids)]],
  );
  return new Map(rows.map((r) => [r.id, r]));
}

export const HOLD_COLUMNS = `id::text, user_id::text, account_id::text, asset, amount::text, captured::text,
  released::text, late_captured::text, status, reason, ref_type, ref_id, release_reason, created_at, closed_at`;

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
 * in id order), one update of the holds, one of the accounts, one insert of the postings. The settlement consumer
 * posts a batch of trades this way; a trade posted singly took about fifteen statements.
 */
export async function postEntries(client: PoolClient, inputs: PostEntryInput[]): Promise<PostEntryResult[]> {
  for (const input of inputs) checkBalanced(input);
  if (inputs.length === 0) return [];

  const { rows: inserted } = await client.query<{ id: string; idempotency_key: string }>(
    `INSERT INTO ${TABLES.entries} (idempotency_key, reason, ref_type, ref_id, causation_id)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
     ON CONFLICT (idempotency_key) DO NOTHING RETURNING id::text, idempotency_key`,
    [
      inputs.map((i) => i.idempotencyKey),
      inputs.map((i) => i.reason),
      inputs.map((i) => i.refType),
      inputs.map((i) => i.refId),
      inputs.map((i) => i.causationId ?? null),
    ],
  );
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
    const { rows } = await client.query<{ id: string; idempotency_key: string }>(
      `SELECT id::text, idempotency_key FROM ${TABLES.entries} WHERE idempotency_key = ANY($1::text[])`,
      [before],
    );
    for (const r of rows) known.set(r.idempotency_key, r.id);
  }
  const results: PostEntryResult[] = inputs.map((i, n) => ({
    status: posted.has(n) ? 'posted' : 'duplicate',
    entryId: known.get(i.idempotencyKey)!,
  }));
  const todo = inputs.filter((_, n) => posted.has(n));
  if (todo.length === 0) return results;

  const refs = todo.flatMap((i) => i.legs.map((l) => l.account));
  let ids = await ensureAccounts(client, refs);
  // Accounts first, then holds, each in id order (the order every ledger function locks in). A capture's hold must be
  // of an account the entry debits, so the legs' accounts cover the holds' accounts too.
  let accounts = await lockAccounts(client, [...ids.values()]);
  if (!refs.every((r) => isAccountOf(accounts.get(ids.get(refKey(r))!), r))) {
    // A cached system account id that is not that account in this database (it was restored, or the process talks
    // to several): forget the cache and look the accounts up again.
    systemAccountIds.clear();
    ids = await ensureAccounts(client, refs);
    accounts = await lockAccounts(client, [...ids.values()]);
  }
  const locked = await lockHolds(
    client,
    todo.flatMap((i) => (i.captures ?? []).map((c) => c.holdId)),
  );

  const balance = new Map<string, bigint>();
  const held = new Map<string, bigint>();
  for (const a of accounts.values()) {
    balance.set(a.id, BigInt(a.balance));
    held.set(a.id, BigInt(a.held));
  }
  const holds = new Map<string, HoldState>();
  const postings: Array<{ entryId: string; accountId: string; leg: Leg; after: bigint }> = [];

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
      postings.push({ entryId, accountId: id, leg: l, after });
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
  if (changedHolds.length) {
    await client.query(
      `UPDATE ${TABLES.holds} h SET captured = d.captured, late_captured = d.late_captured, status = d.status,
              closed_at = CASE WHEN d.closes THEN now() ELSE h.closed_at END
         FROM unnest($1::uuid[], $2::numeric[], $3::numeric[], $4::text[], $5::boolean[])
              AS d(id, captured, late_captured, status, closes)
        WHERE h.id = d.id`,
      [
        changedHolds.map((h) => h.row.id),
        changedHolds.map((h) => h.captured.toString()),
        changedHolds.map((h) => h.lateCaptured.toString()),
        changedHolds.map((h) => h.status),
        changedHolds.map((h) => h.closes),
      ],
    );
  }
  const changedAccounts = [...accounts.values()].filter(
    (a) => balance.get(a.id) !== BigInt(a.balance) || held.get(a.id) !== BigInt(a.held),
  );
  if (changedAccounts.length) {
    await client.query(
      `UPDATE ${TABLES.accounts} a SET balance = d.balance, held = d.held, updated_at = now()
         FROM unnest($1::bigint[], $2::numeric[], $3::numeric[]) AS d(id, balance, held) WHERE a.id = d.id`,
      [
        changedAccounts.map((a) => a.id),
        changedAccounts.map((a) => balance.get(a.id)!.toString()),
        changedAccounts.map((a) => held.get(a.id)!.toString()),
      ],
    );
  }
  await client.query(
    `INSERT INTO ${TABLES.postings} (entry_id, account_id, asset, amount, balance_after, memo)
     SELECT e, a, s, m::numeric, b::numeric, t
       FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[]) AS u(e, a, s, m, b, t)`,
    [
      postings.map((p) => p.entryId),
      postings.map((p) => p.accountId),
      postings.map((p) => p.leg.account.asset),
      postings.map((p) => p.leg.amount.toString()),
      postings.map((p) => p.after.toString()),
      postings.map((p) => p.leg.memo),
    ],
  );
  return results;
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
 * Statements per batch, not per hold: find the accounts, lock them, lock existing holds, one insert, one update.
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

  // The users' accounts: found in one statement; the (rare) missing ones created the usual way.
  const key = (userId: string, asset: string) => `${userId}:${asset}`;
  const pairs = [...new Map(live.map(({ input: i }) => [key(i.userId, i.asset), i])).values()];
  const found = await findUserAccounts(client, pairs);
  const accountOf = new Map<string, string>();
  pairs.forEach((p, i) => {
    if (found[i]) accountOf.set(key(p.userId, p.asset), found[i]);
  });
  const missing = pairs.filter((p) => !accountOf.has(key(p.userId, p.asset)));
  if (missing.length) {
    const created = await ensureAccounts(
      client,
      missing.map((p) => ({ kind: 'user' as const, userId: p.userId, asset: p.asset })),
    );
    for (const p of missing) accountOf.set(key(p.userId, p.asset), created.get(`user:${p.userId}:${p.asset}`)!);
  }
  const accounts = await lockAccounts(client, [...accountOf.values()], opts.skipLocked);
  const existing = await lockHolds(
    client,
    live.map(({ input: i }) => i.holdId),
  );

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
    const accountId = accountOf.get(key(i.userId, i.asset))!;
    const account = accounts.get(accountId);
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
    const values: unknown[] = [];
    const tuples = toInsert.map(({ input: i, accountId }) => {
      const b = values.length;
      values.push(i.holdId, i.userId, accountId, i.asset, i.amount.toString(), i.reason, i.refType, i.refId);
      return `($${b + 1}::uuid, $${b + 2}::uuid, $${b + 3}::bigint, $${b + 4}, $${b + 5}::numeric, $${b + 6}, $${b + 7}, $${b + 8})`;
    });
    const { rows: inserted } = await client.query<HoldRow>(
      `INSERT INTO ${TABLES.holds} (id, user_id, account_id, asset, amount, reason, ref_type, ref_id)
       VALUES ${tuples.join(', ')} ON CONFLICT (id) DO NOTHING RETURNING ${HOLD_COLUMNS}`,
      values,
    );
    const byId = new Map(inserted.map((h) => [h.id, h]));
    const held = new Map<string, bigint>();
    for (const { input: i, n, accountId } of toInsert) {
      const h = byId.get(i.holdId);
      if (h) {
        out[n] = { ok: true, value: { hold: h, created: true } };
        held.set(accountId, (held.get(accountId) ?? 0n) + i.amount);
        continue;
      }
      // Created concurrently (committed while we waited on ON CONFLICT): compare with what is there.
      const other = await getHold(client, i.holdId, false);
      out[n] = attempt(() => ({ hold: sameHold(other!, i), created: false }));
    }
    if (held.size) {
      await client.query(
        `UPDATE ${TABLES.accounts} a SET held = a.held + d.amount, updated_at = now()
           FROM unnest($1::bigint[], $2::numeric[]) AS d(id, amount) WHERE a.id = d.id`,
        [[...held.keys()], [...held.values()].map(String)],
      );
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

export async function getHold(client: PoolClient, holdId: string, forUpdate = false): Promise<HoldRow | undefined> {
  const { rows } = await client.query<HoldRow>(
    `SELECT ${HOLD_COLUMNS} FROM ${TABLES.holds} WHERE id = $1${forUpdate ? ' FOR UPDATE' : ''}`,
    [holdId],
  );
  return rows[0];
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
  await client.query(
    `SELECT id FROM ${TABLES.accounts}
      WHERE id IN (SELECT account_id FROM ${TABLES.holds} WHERE id = ANY($1::uuid[])) ORDER BY id FOR UPDATE`,
    [ids],
  );
  const holds = await lockHolds(client, ids);
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
    const { rows: written } = await client.query<HoldRow>(
      `UPDATE ${TABLES.holds} SET released = d.to_released, status = 'released', release_reason = d.why,
              closed_at = now()
         FROM unnest($1::uuid[], $2::numeric[], $3::text[]) AS d(hid, to_released, why)
        WHERE id = d.hid RETURNING ${HOLD_COLUMNS}`,
      [rows.map((h) => h.id), rows.map((h) => h.released), rows.map((h) => h.release_reason)],
    );
    const byId = new Map(written.map((h) => [h.id, h]));
    // a hold named again after its release is that same ended row
    for (const o of out) o.hold = byId.get(o.hold.id) ?? o.hold;
    await client.query(
      `UPDATE ${TABLES.accounts} a SET held = a.held - d.amount, updated_at = now()
         FROM unnest($1::bigint[], $2::numeric[]) AS d(id, amount) WHERE a.id = d.id`,
      [[...heldDown.keys()], [...heldDown.values()].map(String)],
    );
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
  const { rows: peek } = await client.query<{ id: string; account_id: string; user_id: string; asset: string }>(
    `SELECT id::text, account_id::text, user_id::text, asset FROM ${TABLES.holds} WHERE id = ANY($1::uuid[])`,
    [holds],
  );
  const order = peek.find((r) => r.id === input.holdId);
  if (!order) throw notFound('HOLD_NOT_FOUND', `hold ${input.holdId} does not exist`);
  for (const r of peek) {
    if (r.user_id !== input.userId || r.asset !== input.asset) {
      throw conflict('HOLD_MISMATCH', `hold ${r.id} is not a ${input.asset} hold of user ${input.userId}`);
    }
  }
  await lockAccounts(client, [...new Set(peek.map((r) => r.account_id))].sort());
  let toppedUpReleased = 0n;
  if (input.topUpHoldId && peek.some((r) => r.id === input.topUpHoldId)) {
    toppedUpReleased = (await releaseHold(client, input.topUpHoldId, input.reason, 'order_amend')).released;
  }
  const h = (await getHold(client, input.holdId, true))!;
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
    const acc = (await lockAccounts(client, [h.account_id])).get(h.account_id)!;
    const available = BigInt(acc.balance) - BigInt(acc.held);
    if (available < input.delta) throw insufficientFunds(input.asset, available, input.delta);
  }
  await client.query(`UPDATE ${TABLES.holds} SET amount = $2 WHERE id = $1`, [input.holdId, amount.toString()]);
  await client.query(`UPDATE ${TABLES.accounts} SET held = held + $2, updated_at = now() WHERE id = $1`, [
    h.account_id,
    input.delta.toString(),
  ]);
  return { adjusted: input.delta, toppedUpReleased };
}

export interface Balance {
  asset: string;
  total: bigint;
  held: bigint;
  available: bigint;
}

/** A user's balances per asset (only assets with an account). */
export async function userBalances(client: Pick<PoolClient, 'query'>, userId: string): Promise<Map<string, Balance>> {
  const { rows } = await client.query<{ asset: string; balance: string; held: string }>(
    `SELECT asset, balance::text, held::text FROM ${TABLES.accounts} WHERE kind = 'user' AND user_id = $1`,
    [userId],
  );
  return new Map(
    rows.map((r) => {
      const total = BigInt(r.balance);
      const held = BigInt(r.held);
      return [r.asset, { asset: r.asset, total, held, available: total - held }];
    }),
  );
}
