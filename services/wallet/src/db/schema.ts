/**
 * The wallet's Postgres schema. Money columns are numeric(38,0) minor units (read back as strings, converted with
 * BigInt). CHECK constraints here are the last line of defence for invariant 2; the append-only triggers and the
 * "every journal entry balances per asset" trigger live in the custom migrations
 * (drizzle/0001_ledger_triggers.sql, drizzle/0006_ledger_balance_per_statement.sql).
 */
import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  check,
  index,
  integer,
  jsonb,
  numeric,
  pgSchema,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import { featureFlagsTable, idempotencyKeysTable } from '@exchange/platform';
import { deadLetterTable, inboxTable, messageAttemptsTable, outboxTable } from '@exchange/messaging';

// Not exported under its own name: drizzle-kit would emit CREATE SCHEMA, which `migrate()` from @exchange/db already does.
const walletSchema = pgSchema('wallet');
export const WALLET_SCHEMA = 'wallet';

const money = (name: string) => numeric(name, { precision: 38, scale: 0 });
const ts = (name: string) => timestamp(name, { withTimezone: true });

export const idempotencyKeys = idempotencyKeysTable(walletSchema);
export const featureFlags = featureFlagsTable(walletSchema);
export const outbox = outboxTable(walletSchema);
export const inbox = inboxTable(walletSchema);
export const deadLetters = deadLetterTable(walletSchema);
export const messageAttempts = messageAttemptsTable(walletSchema);

/**
 * Chart of accounts: one row per (user, asset) and one per (system kind, asset).
 *  - user:            a customer's funds; balance = total, held = reserved for open orders and pending withdrawals.
 *  - fees:            trading and withdrawal fees earned by the exchange (grows positive).
 *  - deposit_rail:    the outside world's side of deposits (grows negative: it "owes" what came in).
 *  - withdrawal_rail: the outside world's side of withdrawals (grows positive: what went out).
 * Every journal entry sums to zero per asset, so the per-asset sum over all accounts is always zero.
 */
export const accounts = walletSchema.table(
  'accounts',
  {
    id: bigserial('id', { mode: 'bigint' }).primaryKey(),
    kind: text('kind').notNull(),
    userId: uuid('user_id'),
    asset: text('asset').notNull(),
    balance: money('balance').notNull().default('0'),
    held: money('held').notNull().default('0'),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('accounts_user_asset_idx')
      .on(t.userId, t.asset)
      .where(sql`${t.kind} = 'user'`),
    uniqueIndex('accounts_system_asset_idx')
      .on(t.kind, t.asset)
      .where(sql`${t.kind} <> 'user'`),
    check('accounts_kind_check', sql`${t.kind} IN ('user', 'fees', 'deposit_rail', 'withdrawal_rail')`),
    check('accounts_owner_check', sql`(${t.kind} = 'user') = (${t.userId} IS NOT NULL)`),
    check('accounts_user_balance_nonnegative', sql`${t.kind} <> 'user' OR ${t.balance} >= 0`),
    check('accounts_held_nonnegative', sql`${t.held} >= 0`),
    check('accounts_held_within_total', sql`${t.kind} <> 'user' OR ${t.held} <= ${t.balance}`),
    check('accounts_system_never_held', sql`${t.kind} = 'user' OR ${t.held} = 0`),
  ],
);

/** One balanced movement. `idempotency_key` (e.g. `trade:<id>`) makes every business event post at most once. */
export const journalEntries = walletSchema.table(
  'journal_entries',
  {
    id: bigserial('id', { mode: 'bigint' }).primaryKey(),
    idempotencyKey: text('idempotency_key').notNull().unique('journal_entries_idempotency_key_unique'),
    reason: text('reason').notNull(),
    refType: text('ref_type').notNull(),
    refId: text('ref_id').notNull(),
    /** Message id or request id that caused it (audit trail). */
    causationId: text('causation_id'),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [index('journal_entries_ref_idx').on(t.refType, t.refId)],
);

/** The legs of a journal entry: signed amounts per account (credit > 0, debit < 0). */
export const postings = walletSchema.table(
  'postings',
  {
    id: bigserial('id', { mode: 'bigint' }).primaryKey(),
    entryId: bigint('entry_id', { mode: 'bigint' })
      .notNull()
      .references(() => journalEntries.id),
    accountId: bigint('account_id', { mode: 'bigint' })
      .notNull()
      .references(() => accounts.id),
    asset: text('asset').notNull(),
    amount: money('amount').notNull(),
    /** The account's balance right after this posting (statement column). */
    balanceAfter: money('balance_after').notNull(),
    /** What this leg is, e.g. trade_buy, trade_fee, deposit, withdrawal, withdrawal_fee. */
    memo: text('memo').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [
    index('postings_account_idx').on(t.accountId, t.id),
    index('postings_entry_idx').on(t.entryId),
    check('postings_amount_nonzero', sql`${t.amount} <> 0`),
  ],
);

/**
 * Funds reserved for an order (id = order id) or a withdrawal (id = withdrawal id). remaining = amount - captured -
 * released; `held` of the account equals the sum of remaining over its active holds. A hold ends exactly once:
 * `captured` (fully captured) or `released` (what was left given back).
 */
export const holds = walletSchema.table(
  'holds',
  {
    id: uuid('id').primaryKey(),
    userId: uuid('user_id').notNull(),
    accountId: bigint('account_id', { mode: 'bigint' })
      .notNull()
      .references(() => accounts.id),
    asset: text('asset').notNull(),
    amount: money('amount').notNull(),
    captured: money('captured').notNull().default('0'),
    released: money('released').notNull().default('0'),
    /** Captured after the hold had ended (a settlement overtaken by its release), taken from available funds. */
    lateCaptured: money('late_captured').notNull().default('0'),
    status: text('status').notNull().default('active'),
    reason: text('reason').notNull(),
    refType: text('ref_type').notNull(),
    refId: text('ref_id').notNull(),
    releaseReason: text('release_reason'),
    createdAt: ts('created_at').notNull().defaultNow(),
    closedAt: ts('closed_at'),
  },
  (t) => [
    index('holds_active_idx')
      .on(t.accountId)
      .where(sql`${t.status} = 'active'`),
    index('holds_user_idx').on(t.userId, t.createdAt),
    check('holds_status_check', sql`${t.status} IN ('active', 'captured', 'released')`),
    check('holds_amount_positive', sql`${t.amount} > 0`),
    check(
      'holds_parts_check',
      sql`${t.captured} >= 0 AND ${t.released} >= 0 AND ${t.lateCaptured} >= 0 AND ${t.captured} + ${t.released} <= ${t.amount} AND ${t.lateCaptured} <= ${t.released}`,
    ),
    check(
      'holds_closed_check',
      sql`(${t.status} = 'active') = (${t.captured} + ${t.released} < ${t.amount}) AND (${t.status} <> 'captured' OR ${t.released} = 0)`,
    ),
  ],
);

/** Trades settled (idempotency by trade id, independent of message ids). */
export const settlements = walletSchema.table('settlements', {
  tradeId: uuid('trade_id').primaryKey(),
  market: text('market').notNull(),
  entryId: bigint('entry_id', { mode: 'bigint' })
    .notNull()
    .references(() => journalEntries.id),
  messageId: text('message_id').notNull(),
  settledAt: ts('settled_at').notNull().defaultNow(),
});

export const deposits = walletSchema.table(
  'deposits',
  {
    id: uuid('id').primaryKey(),
    userId: uuid('user_id').notNull(),
    asset: text('asset').notNull(),
    amount: money('amount').notNull(),
    status: text('status').notNull().default('pending'),
    confirmAt: ts('confirm_at').notNull(),
    confirmedAt: ts('confirmed_at'),
    entryId: bigint('entry_id', { mode: 'bigint' }).references(() => journalEntries.id),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [
    index('deposits_user_idx').on(t.userId, t.createdAt),
    index('deposits_due_idx')
      .on(t.confirmAt)
      .where(sql`${t.status} = 'pending'`),
    check('deposits_status_check', sql`${t.status} IN ('pending', 'confirmed')`),
    check('deposits_amount_positive', sql`${t.amount} > 0`),
    check('deposits_confirmed_check', sql`(${t.status} = 'confirmed') = (${t.entryId} IS NOT NULL)`),
  ],
);

export const withdrawals = walletSchema.table(
  'withdrawals',
  {
    id: uuid('id').primaryKey(),
    userId: uuid('user_id').notNull(),
    asset: text('asset').notNull(),
    amount: money('amount').notNull(),
    fee: money('fee').notNull(),
    address: text('address').notNull(),
    /**
     * pending (cancellable) → processing (payout requested) → completed | failed; pending → cancelled.
     * Above the email-confirmation threshold it starts as awaiting_confirmation → pending (link followed) or
     * cancelled (link expired, or cancelled by the user).
     */
    status: text('status').notNull().default('pending'),
    /** SHA-256 of the emailed confirmation token while awaiting_confirmation (cleared when used). */
    confirmTokenHash: text('confirm_token_hash'),
    confirmExpiresAt: ts('confirm_expires_at'),
    confirmedAt: ts('confirmed_at'),
    dispatchAt: ts('dispatch_at').notNull(),
    railTxId: text('rail_tx_id'),
    failureReason: text('failure_reason'),
    entryId: bigint('entry_id', { mode: 'bigint' }).references(() => journalEntries.id),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [
    index('withdrawals_user_idx').on(t.userId, t.createdAt),
    index('withdrawals_velocity_idx').on(t.userId, t.asset, t.createdAt),
    index('withdrawals_due_idx')
      .on(t.dispatchAt)
      .where(sql`${t.status} = 'pending'`),
    uniqueIndex('withdrawals_confirm_token_key').on(t.confirmTokenHash),
    index('withdrawals_confirm_expiry_idx')
      .on(t.confirmExpiresAt)
      .where(sql`${t.status} = 'awaiting_confirmation'`),
    check(
      'withdrawals_status_check',
      sql`${t.status} IN ('awaiting_confirmation', 'pending', 'processing', 'completed', 'failed', 'cancelled')`,
    ),
    check('withdrawals_amounts_check', sql`${t.amount} > 0 AND ${t.fee} >= 0`),
  ],
);

/** What the (sandbox) payment rail reports: money in for confirmed deposits, money out for completed payouts. */
export const railTransactions = walletSchema.table(
  'rail_transactions',
  {
    id: bigserial('id', { mode: 'bigint' }).primaryKey(),
    direction: text('direction').notNull(),
    asset: text('asset').notNull(),
    amount: money('amount').notNull(),
    depositId: uuid('deposit_id').unique('rail_transactions_deposit_unique'),
    withdrawalId: uuid('withdrawal_id').unique('rail_transactions_withdrawal_unique'),
    railTxId: text('rail_tx_id').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [
    check('rail_direction_check', sql`${t.direction} IN ('in', 'out')`),
    check(
      'rail_ref_check',
      sql`(${t.direction} = 'in' AND ${t.depositId} IS NOT NULL AND ${t.withdrawalId} IS NULL) OR (${t.direction} = 'out' AND ${t.withdrawalId} IS NOT NULL AND ${t.depositId} IS NULL)`,
    ),
  ],
);

/** KYC tier per user (set by the KYC process through the internal API); drives withdrawal limits. */
export const userProfiles = walletSchema.table(
  'user_profiles',
  {
    userId: uuid('user_id').primaryKey(),
    kycTier: integer('kyc_tier').notNull().default(0),
    updatedBy: text('updated_by').notNull(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [check('user_profiles_tier_check', sql`${t.kycTier} >= 0 AND ${t.kycTier} <= 9`)],
);

/** Append-only audit trail of security-relevant wallet events (blocked withdrawals, flag flips, tier changes). */
export const auditEvents = walletSchema.table(
  'audit_events',
  {
    id: bigserial('id', { mode: 'bigint' }).primaryKey(),
    at: ts('at').notNull().defaultNow(),
    actor: text('actor').notNull(),
    action: text('action').notNull(),
    subjectType: text('subject_type'),
    subjectId: text('subject_id'),
    outcome: text('outcome').notNull(),
    details: jsonb('details')
      .notNull()
      .default(sql`'{}'::jsonb`),
    requestId: text('request_id'),
  },
  (t) => [index('audit_events_at_idx').on(t.at), index('audit_events_actor_idx').on(t.actor, t.at)],
);

export const reconciliationReports = walletSchema.table(
  'reconciliation_reports',
  {
    id: uuid('id').primaryKey(),
    trigger: text('trigger').notNull(),
    requestedBy: text('requested_by'),
    status: text('status').notNull(),
    mismatchCount: integer('mismatch_count').notNull(),
    startedAt: ts('started_at').notNull(),
    finishedAt: ts('finished_at').notNull(),
    report: jsonb('report').notNull(),
  },
  (t) => [
    index('reconciliation_reports_started_idx').on(t.startedAt),
    check('reconciliation_status_check', sql`${t.status} IN ('ok', 'mismatch', 'incomplete')`),
  ],
);
