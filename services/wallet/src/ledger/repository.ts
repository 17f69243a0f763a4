/**
 * The SQL of the ledger: accounts, journal entries, postings and holds. The transactions, the locking order and the
 * rules around these statements are in service.ts (accounts, entries) and holds.ts (holds). Each function sends one
 * statement, its text unchanged from where it was written (the prepared-statement cache keys on the text).
 */
import type { PoolClient } from '@exchange/db';
import { SYSTEM_KINDS, type AccountRow, type HoldRow, type SystemKind } from './model.ts';

type Db = Pick<PoolClient, 'query'>;

/** The ledger tables, schema-qualified for SQL text. */
const TABLES = {
  accounts: 'wallet.accounts',
  entries: 'wallet.journal_entries',
  postings: 'wallet.postings',
  holds: 'wallet.holds',
};

export const HOLD_COLUMNS = `id::text, user_id::text, account_id::text, asset, amount::text, captured::text,
  released::text, late_captured::text, status, reason, ref_type, ref_id, release_reason, created_at, closed_at`;

// ------------------------------------------------------------------------------------------------------------
// Accounts
// ------------------------------------------------------------------------------------------------------------

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

/** The ids of existing user accounts, one per (userId, asset) in input order (undefined where there is none). */
export async function findUserAccounts(
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

/** Create a user's account unless it exists: its id, or no row when a concurrent transaction is creating it. */
export async function createUserAccount(
  client: PoolClient,
  userId: string,
  asset: string,
): Promise<Array<{ id: string }>> {
  const { rows } = await client.query<{ id: string }>(
    `WITH ins AS (
               INSERT INTO ${TABLES.accounts} (kind, user_id, asset) VALUES ('user', $1, $2)
               ON CONFLICT (user_id, asset) WHERE kind = 'user' DO NOTHING RETURNING id)
             SELECT id::text FROM ins UNION ALL
             SELECT id::text FROM ${TABLES.accounts} WHERE kind = 'user' AND user_id = $1 AND asset = $2`,
    [userId, asset],
  );
  return rows;
}

/** Create a system account unless it exists: its id, or no row when a concurrent transaction is creating it. */
export async function createSystemAccount(
  client: PoolClient,
  kind: SystemKind,
  asset: string,
): Promise<Array<{ id: string }>> {
  const { rows } = await client.query<{ id: string }>(systemAccountSql(kind, true), [asset]);
  return rows;
}

/** A user's account (a new statement: it sees a row committed while an insert waited on ON CONFLICT). */
export async function findUserAccount(
  client: PoolClient,
  userId: string,
  asset: string,
): Promise<Array<{ id: string }>> {
  const { rows } = await client.query<{ id: string }>(
    `SELECT id::text FROM ${TABLES.accounts} WHERE kind = 'user' AND user_id = $1 AND asset = $2`,
    [userId, asset],
  );
  return rows;
}

/** A system account (a new statement: it sees a row committed while an insert waited on ON CONFLICT). */
export async function findSystemAccount(
  client: PoolClient,
  kind: SystemKind,
  asset: string,
): Promise<Array<{ id: string }>> {
  const { rows } = await client.query<{ id: string }>(systemAccountSql(kind, false), [asset]);
  return rows;
}

/** Whether the account row `id` was written by the caller's own (uncommitted) transaction. */
export async function insertedHere(client: PoolClient, id: string): Promise<boolean> {
  const { rows } = await client.query<{ mine: boolean }>(
    `SELECT xmin::text::bigint = txid_current() % 4294967296 AS mine FROM ${TABLES.accounts} WHERE id = $1`,
    [id],
  );
  return rows[0]?.mine ?? true;
}

/**
 * `lockForNewHolds` and `holdAlone` answer accounts and holds in one result: a `UNION ALL` of account rows (as found,
 * with their balances when this statement locked them) and hold rows, told apart by `row_kind`. These are its columns
 * after `row_kind` (and the caller's own), in order, and the parsing of its rows.
 */
const accountUnionColumns = (found: string, locked: string) =>
  `${found}.id::text AS id, ${locked}.id IS NOT NULL AS locked, ${locked}.kind, ${locked}.user_id::text AS user_id,
   ${locked}.asset, ${locked}.balance::text AS balance, ${locked}.held::text AS held,
   NULL AS account_id, NULL AS amount, NULL AS captured, NULL AS released, NULL AS late_captured,
   NULL AS status, NULL AS reason, NULL AS ref_type, NULL AS ref_id, NULL AS release_reason,
   NULL::timestamptz AS created_at, NULL::timestamptz AS closed_at`;
const holdUnionColumns = (h: string) =>
  `${h}.id, NULL, NULL, ${h}.user_id, ${h}.asset, NULL, NULL, ${h}.account_id, ${h}.amount, ${h}.captured,
   ${h}.released, ${h}.late_captured, ${h}.status, ${h}.reason, ${h}.ref_type, ${h}.ref_id, ${h}.release_reason,
   ${h}.created_at, ${h}.closed_at`;
type AccountOrHoldRow = Omit<AccountRow, 'user_id'> & Omit<HoldRow, 'id' | 'asset'> & { locked: boolean };

function accountOfRow(r: AccountOrHoldRow): { id: string; locked: AccountRow | undefined } {
  const locked: AccountRow | undefined = r.locked
    ? { id: r.id, kind: r.kind, user_id: r.user_id, asset: r.asset, balance: r.balance, held: r.held }
    : undefined;
  return { id: r.id, locked };
}

/** What is left after the account columns (and the union's own, removed by the caller) is the hold row. */
function holdOfRow(r: AccountOrHoldRow): HoldRow {
  const { locked: _locked, kind: _k, balance: _b, held: _h, ...hold } = r;
  return hold;
}

/**
 * What a batch of new holds needs, in one statement (one round trip instead of three): the users' accounts, found by
 * (user, asset) and locked in id order (`skipLocked`: those another transaction holds are found but not locked), then
 * the holds of `holdIds` that already exist, locked in id order. Accounts before holds, as every ledger function does:
 * the holds' lock waits behind the accounts' (`locked` is read by the holds' gating condition, so it is complete
 * before the first hold row is fetched).
 */
export async function lockForNewHolds(
  client: PoolClient,
  refs: Array<{ userId: string; asset: string }>,
  holdIds: string[],
  skipLocked = false,
): Promise<{
  accounts: Array<{ id: string; locked: AccountRow | undefined } | undefined>;
  holds: Map<string, HoldRow>;
}> {
  type Row = AccountOrHoldRow & { row_kind: 'account' | 'hold'; n: string };
  const { rows } = await client.query<Row>(
    `WITH p AS (SELECT * FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS p(user_id, asset, n)),
          found AS MATERIALIZED (
            SELECT a.id, p.n FROM p JOIN ${TABLES.accounts} a
                ON a.kind = 'user' AND a.user_id = p.user_id AND a.asset = p.asset),
          locked AS MATERIALIZED (
            SELECT id, kind, user_id, asset, balance, held FROM ${TABLES.accounts}
             WHERE id IN (SELECT id FROM found) ORDER BY id FOR UPDATE${skipLocked ? ' SKIP LOCKED' : ''}),
          h AS MATERIALIZED (
            SELECT ${HOLD_COLUMNS} FROM ${TABLES.holds}
             WHERE id = ANY($3::uuid[]) AND (SELECT count(*) FROM locked) >= 0 ORDER BY id FOR UPDATE)
     SELECT 'account' AS row_kind, f.n::text AS n, ${accountUnionColumns('f', 'l')}
       FROM found f LEFT JOIN locked l ON l.id = f.id
     UNION ALL
     SELECT 'hold', NULL, ${holdUnionColumns('h')} FROM h`,
    [refs.map((r) => r.userId), refs.map((r) => r.asset), [...new Set(holdIds)]],
  );
  const accounts: Array<{ id: string; locked: AccountRow | undefined } | undefined> = refs.map(() => undefined);
  const holds = new Map<string, HoldRow>();
  for (const r of rows) {
    const { row_kind: kind, n, ...row } = r;
    if (kind === 'account') accounts[Number(n) - 1] = accountOfRow(row);
    else holds.set(r.id, holdOfRow(row));
  }
  return { accounts, holds };
}

/**
 * One hold, decided and written in one statement (its own transaction when `db` is outside one): the user's account
 * in the asset locked (`SKIP LOCKED` if asked), then the hold with this id if it exists, locked (after the account, as
 * in `lockForNewHolds`: the hold's gating condition reads `locked`); the new hold is
 * inserted and added to the account's held amount only if none exists and the locked account has the funds. Returns
 * what was found (the account with its balances as locked, before this hold; an existing hold) and what was written.
 */
export async function holdAlone(
  db: Pick<PoolClient, 'query'>,
  i: { holdId: string; userId: string; asset: string; amount: bigint; reason: string; refType: string; refId: string },
  skipLocked: boolean,
): Promise<{
  account: { id: string; locked: AccountRow | undefined } | undefined;
  existing: HoldRow | undefined;
  inserted: HoldRow | undefined;
}> {
  type Row = AccountOrHoldRow & { row_kind: 'account' | 'hold' | 'new' };
  const { rows } = await db.query<Row>(
    `WITH acct AS MATERIALIZED (
            SELECT id FROM ${TABLES.accounts} WHERE kind = 'user' AND user_id = $2 AND asset = $3),
          locked AS MATERIALIZED (
            SELECT id, kind, user_id, asset, balance, held FROM ${TABLES.accounts}
             WHERE id IN (SELECT id FROM acct) FOR UPDATE${skipLocked ? ' SKIP LOCKED' : ''}),
          h AS MATERIALIZED (
            SELECT ${HOLD_COLUMNS} FROM ${TABLES.holds}
             WHERE id = $1 AND (SELECT count(*) FROM locked) >= 0 FOR UPDATE),
          ins AS (
            INSERT INTO ${TABLES.holds} (id, user_id, account_id, asset, amount, reason, ref_type, ref_id)
            SELECT $1::uuid, $2::uuid, l.id, $3, $4::numeric, $5, $6, $7 FROM locked l
             WHERE NOT EXISTS (SELECT 1 FROM h) AND l.balance - l.held >= $4::numeric
            ON CONFLICT (id) DO NOTHING
            RETURNING ${HOLD_COLUMNS}),
          held AS (
            UPDATE ${TABLES.accounts} a SET held = a.held + $4::numeric, updated_at = now()
              FROM ins WHERE a.id = ins.account_id::bigint)
     SELECT 'account' AS row_kind, ${accountUnionColumns('a', 'l')}
       FROM acct a LEFT JOIN locked l ON l.id = a.id
     UNION ALL
     SELECT 'hold', ${holdUnionColumns('h')} FROM h
     UNION ALL
     SELECT 'new', ${holdUnionColumns('n')} FROM ins n`,
    [i.holdId, i.userId, i.asset, i.amount.toString(), i.reason, i.refType, i.refId],
  );
  const out: Awaited<ReturnType<typeof holdAlone>> = { account: undefined, existing: undefined, inserted: undefined };
  for (const { row_kind: kind, ...row } of rows) {
    if (kind === 'account') out.account = accountOfRow(row);
    else if (kind === 'hold') out.existing = holdOfRow(row);
    else out.inserted = holdOfRow(row);
  }
  return out;
}

/** Lock accounts by id, always in ascending id order. */
export async function lockAccounts(
  client: PoolClient,
  ids: string[],
  skipLocked = false,
): Promise<Map<string, AccountRow>> {
  const { rows } = await client.query<AccountRow>(
    // `a.id`, the bigint: a bare `id` would name the output column, the text, and lock 10 before 9
    `SELECT a.id::text AS id, a.kind, a.user_id, a.asset, a.balance::text AS balance, a.held::text AS held
       FROM ${TABLES.accounts} a WHERE a.id = ANY($1::bigint[]) ORDER BY a.id FOR UPDATE${skipLocked ? ' SKIP LOCKED' : ''}`,
    [[...new Set(ids)]],
  );
  return new Map(rows.map((r) => [r.id, r]));
}

/** Lock the accounts of the given holds, in id order (their rows are not returned). */
export async function lockHoldAccounts(client: PoolClient, holdIds: string[]): Promise<void> {
  await client.query(
    `SELECT id FROM ${TABLES.accounts}
      WHERE id IN (SELECT account_id FROM ${TABLES.holds} WHERE id = ANY($1::uuid[])) ORDER BY id FOR UPDATE`,
    [holdIds],
  );
}

/** Take from the held amount of accounts (account id → amount). */
export async function subtractHeld(client: PoolClient, heldDown: Map<string, bigint>): Promise<void> {
  await client.query(
    `UPDATE ${TABLES.accounts} a SET held = a.held - d.amount, updated_at = now()
         FROM unnest($1::bigint[], $2::numeric[]) AS d(id, amount) WHERE a.id = d.id`,
    [[...heldDown.keys()], [...heldDown.values()].map(String)],
  );
}

/** Change one account's held amount by a signed delta. */
export async function addToHeld(client: PoolClient, accountId: string, delta: bigint): Promise<void> {
  await client.query(`UPDATE ${TABLES.accounts} SET held = held + $2, updated_at = now() WHERE id = $1`, [
    accountId,
    delta.toString(),
  ]);
}

/** A user's accounts (only assets with an account). */
export async function userAccountBalances(
  db: Db,
  userId: string,
): Promise<Array<{ asset: string; balance: string; held: string }>> {
  const { rows } = await db.query<{ asset: string; balance: string; held: string }>(
    `SELECT asset, balance::text, held::text FROM ${TABLES.accounts} WHERE kind = 'user' AND user_id = $1`,
    [userId],
  );
  return rows;
}

// ------------------------------------------------------------------------------------------------------------
// Journal entries and postings
// ------------------------------------------------------------------------------------------------------------

/**
 * Insert journal entries; a key already posted (or repeated in the list, after its first occurrence) is skipped.
 * Returns the rows inserted.
 */
export async function insertEntries(
  client: PoolClient,
  entries: Array<{ idempotencyKey: string; reason: string; refType: string; refId: string; causationId?: string }>,
): Promise<Array<{ id: string; idempotency_key: string }>> {
  const { rows } = await client.query<{ id: string; idempotency_key: string }>(
    `INSERT INTO ${TABLES.entries} (idempotency_key, reason, ref_type, ref_id, causation_id)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
     ON CONFLICT (idempotency_key) DO NOTHING RETURNING id::text, idempotency_key`,
    [
      entries.map((i) => i.idempotencyKey),
      entries.map((i) => i.reason),
      entries.map((i) => i.refType),
      entries.map((i) => i.refId),
      entries.map((i) => i.causationId ?? null),
    ],
  );
  return rows;
}

/** The journal entries with these idempotency keys. */
export async function entriesByKey(
  client: PoolClient,
  keys: string[],
): Promise<Array<{ id: string; idempotency_key: string }>> {
  const { rows } = await client.query<{ id: string; idempotency_key: string }>(
    `SELECT id::text, idempotency_key FROM ${TABLES.entries} WHERE idempotency_key = ANY($1::text[])`,
    [keys],
  );
  return rows;
}

export interface PostingRow {
  id: string;
  entry_id: string;
  asset: string;
  amount: string;
  balance_after: string;
  memo: string;
  reason: string;
  ref_type: string;
  ref_id: string;
  created_at: Date;
}

/**
 * Postings on a user's accounts with their entries, newest first: of one asset if given, below posting id `before` if
 * given, at most `limit` rows.
 */
export async function userPostings(
  db: Db,
  userId: string,
  q: { asset?: string | undefined; before?: string | undefined; limit: number },
): Promise<PostingRow[]> {
  const values: unknown[] = [userId];
  let where = `a.kind = 'user' AND a.user_id = $1`;
  if (q.asset) {
    values.push(q.asset);
    where += ` AND a.asset = $${values.length}`;
  }
  if (q.before) {
    values.push(q.before);
    where += ` AND p.id < $${values.length}::bigint`;
  }
  values.push(q.limit);
  const { rows } = await db.query<PostingRow>(
    `SELECT p.id::text, p.entry_id::text, p.asset, p.amount::text, p.balance_after::text, p.memo, e.reason,
            e.ref_type, e.ref_id, p.created_at
       FROM wallet.postings p
       JOIN wallet.accounts a ON a.id = p.account_id
       JOIN wallet.journal_entries e ON e.id = p.entry_id
      WHERE ${where}
      ORDER BY p.id DESC LIMIT $${values.length}`,
    values,
  );
  return rows;
}

// ------------------------------------------------------------------------------------------------------------
// Holds
// ------------------------------------------------------------------------------------------------------------

export async function getHold(
  client: Pick<PoolClient, 'query'>,
  holdId: string,
  forUpdate = false,
): Promise<HoldRow | undefined> {
  const { rows } = await client.query<HoldRow>(
    `SELECT ${HOLD_COLUMNS} FROM ${TABLES.holds} WHERE id = $1${forUpdate ? ' FOR UPDATE' : ''}`,
    [holdId],
  );
  return rows[0];
}

/** Lock holds by id, in id order (no statement for none). */
export async function lockHolds(client: PoolClient, ids: string[]): Promise<Map<string, HoldRow>> {
  if (ids.length === 0) return new Map();
  const { rows } = await client.query<HoldRow>(
    `SELECT ${HOLD_COLUMNS} FROM ${TABLES.holds} WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE`,
    [[...new Set(ids)]],
  );
  return new Map(rows.map((r) => [r.id, r]));
}

/**
 * `lockAccounts` then `lockHolds` in one statement: a settlement holds its accounts' locks from this statement to its
 * commit, and each round trip in between is time another transaction's hold on the same account waits, mostly for
 * this process to get a core back (docs/benchmarks.md, twenty-first round). Accounts before holds, each in id order, as
 * in `lockForNewHolds`: the holds' gating condition reads `locked`, so it is complete before the first hold is fetched.
 */
export async function lockAccountsAndHolds(
  client: PoolClient,
  accountIds: string[],
  holdIds: string[],
): Promise<{ accounts: Map<string, AccountRow>; holds: Map<string, HoldRow> }> {
  type Row = AccountOrHoldRow & { row_kind: 'account' | 'hold' };
  const { rows } = await client.query<Row>(
    `WITH locked AS MATERIALIZED (
            SELECT id, kind, user_id, asset, balance, held FROM ${TABLES.accounts}
             WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE),
          h AS MATERIALIZED (
            SELECT ${HOLD_COLUMNS} FROM ${TABLES.holds}
             WHERE id = ANY($2::uuid[]) AND (SELECT count(*) FROM locked) >= 0 ORDER BY id FOR UPDATE)
     SELECT 'account' AS row_kind, ${accountUnionColumns('l', 'l')} FROM locked l
     UNION ALL
     SELECT 'hold', ${holdUnionColumns('h')} FROM h`,
    [[...new Set(accountIds)], [...new Set(holdIds)]],
  );
  const accounts = new Map<string, AccountRow>();
  const holds = new Map<string, HoldRow>();
  for (const r of rows) {
    const { row_kind: kind, ...row } = r;
    if (kind === 'account') accounts.set(row.id, accountOfRow(row).locked!);
    else holds.set(row.id, holdOfRow(row));
  }
  return { accounts, holds };
}

/** The owner, account and asset of holds, unlocked. */
export async function peekHolds(
  client: PoolClient,
  ids: string[],
): Promise<Array<{ id: string; account_id: string; user_id: string; asset: string }>> {
  const { rows } = await client.query<{ id: string; account_id: string; user_id: string; asset: string }>(
    `SELECT id::text, account_id::text, user_id::text, asset FROM ${TABLES.holds} WHERE id = ANY($1::uuid[])`,
    [ids],
  );
  return rows;
}

/** Insert holds and add them to their accounts' held; an id that exists is skipped. Returns the rows inserted. */
export async function insertHolds(
  client: PoolClient,
  holds: Array<{
    holdId: string;
    userId: string;
    accountId: string;
    asset: string;
    amount: bigint;
    reason: string;
    refType: string;
    refId: string;
  }>,
): Promise<HoldRow[]> {
  // The rows come from arrays, so the text is the same for every batch size: prepared and planned once per
  // connection. The held amounts follow from the rows actually inserted (RETURNING), so an id skipped adds nothing.
  const { rows } = await client.query<HoldRow>(
    `WITH ins AS (
       INSERT INTO ${TABLES.holds} (id, user_id, account_id, asset, amount, reason, ref_type, ref_id)
       SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::numeric[], $6::text[], $7::text[],
                            $8::text[])
       ON CONFLICT (id) DO NOTHING
       RETURNING ${HOLD_COLUMNS}),
     held AS (
       UPDATE ${TABLES.accounts} a SET held = a.held + d.held, updated_at = now()
         FROM (SELECT account_id::bigint AS account, sum(amount::numeric) AS held FROM ins GROUP BY 1) d
        WHERE a.id = d.account)
     SELECT * FROM ins`,
    [
      holds.map((h) => h.holdId),
      holds.map((h) => h.userId),
      holds.map((h) => h.accountId),
      holds.map((h) => h.asset),
      holds.map((h) => h.amount.toString()),
      holds.map((h) => h.reason),
      holds.map((h) => h.refType),
      holds.map((h) => h.refId),
    ],
  );
  return rows;
}

/** What posting entries writes once their accounts and holds are locked and the new values are known. */
export interface LedgerWrites {
  /** What captures left of holds: captured, captured late, status, and closed_at for those that end. */
  holds: Array<{ id: string; captured: bigint; lateCaptured: bigint; status: string; closes: boolean }>;
  /** The balance and the held amount of accounts. */
  accounts: Array<{ id: string; balance: bigint; held: bigint }>;
  /** One row per leg, with the account's balance after it. */
  postings: Array<{ entryId: string; accountId: string; asset: string; amount: bigint; after: bigint; memo: string }>;
}

/**
 * `LedgerWrites` as the common table expressions of one statement (`ledger_holds`, `ledger_accounts`,
 * `ledger_postings`, parameters `$1…$14`), so that they take one round trip, and a caller can add its own writes to
 * the same statement (`writeLedger` sends them alone). Every data-modifying CTE runs whether or not the query reads
 * it; an empty array writes nothing. The three touch different tables, so the one snapshot they share changes no
 * outcome. The text is the same for any number of rows: prepared and planned once per connection.
 */
export const LEDGER_WRITES_CTES = `ledger_holds AS (
    UPDATE ${TABLES.holds} h SET captured = d.captured, late_captured = d.late_captured, status = d.status,
           closed_at = CASE WHEN d.closes THEN now() ELSE h.closed_at END
      FROM unnest($1::uuid[], $2::numeric[], $3::numeric[], $4::text[], $5::boolean[])
           AS d(id, captured, late_captured, status, closes)
     WHERE h.id = d.id
  ), ledger_accounts AS (
    UPDATE ${TABLES.accounts} a SET balance = d.balance, held = d.held, updated_at = now()
      FROM unnest($6::bigint[], $7::numeric[], $8::numeric[]) AS d(id, balance, held) WHERE a.id = d.id
  ), ledger_postings AS (
    INSERT INTO ${TABLES.postings} (entry_id, account_id, asset, amount, balance_after, memo)
    SELECT e, a, s, m::numeric, b::numeric, t
      FROM unnest($9::bigint[], $10::bigint[], $11::text[], $12::text[], $13::text[], $14::text[]) AS u(e, a, s, m, b, t)
  )`;

/** The parameters of `LEDGER_WRITES_CTES`. */
export function ledgerWritesValues(w: LedgerWrites): unknown[] {
  return [
    w.holds.map((h) => h.id),
    w.holds.map((h) => h.captured.toString()),
    w.holds.map((h) => h.lateCaptured.toString()),
    w.holds.map((h) => h.status),
    w.holds.map((h) => h.closes),
    w.accounts.map((a) => a.id),
    w.accounts.map((a) => a.balance.toString()),
    w.accounts.map((a) => a.held.toString()),
    w.postings.map((p) => p.entryId),
    w.postings.map((p) => p.accountId),
    w.postings.map((p) => p.asset),
    w.postings.map((p) => p.amount.toString()),
    w.postings.map((p) => p.after.toString()),
    w.postings.map((p) => p.memo),
  ];
}

/** Send `LedgerWrites` in one statement. */
export async function writeLedger(client: PoolClient, w: LedgerWrites): Promise<void> {
  await client.query(`WITH ${LEDGER_WRITES_CTES} SELECT 1`, ledgerWritesValues(w));
}

/** End holds as released (`released` and `release_reason` as given); returns the rows written. */
export async function markHoldsReleased(client: PoolClient, holds: HoldRow[]): Promise<HoldRow[]> {
  const { rows } = await client.query<HoldRow>(
    `UPDATE ${TABLES.holds} SET released = d.to_released, status = 'released', release_reason = d.why,
              closed_at = now()
         FROM unnest($1::uuid[], $2::numeric[], $3::text[]) AS d(hid, to_released, why)
        WHERE id = d.hid RETURNING ${HOLD_COLUMNS}`,
    [holds.map((h) => h.id), holds.map((h) => h.released), holds.map((h) => h.release_reason)],
  );
  return rows;
}

/** Set a hold's amount. */
export async function setHoldAmount(client: PoolClient, holdId: string, amount: bigint): Promise<void> {
  await client.query(`UPDATE ${TABLES.holds} SET amount = $2 WHERE id = $1`, [holdId, amount.toString()]);
}
