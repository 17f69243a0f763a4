/** The ledger's accounts, legs, captures and holds: the types its service, holds and repository share. */

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
