/** The SQL of auth.users: accounts, passwords, roles, locks, TOTP secrets, email verification. */
import type { Role } from '@exchange/auth-client';
import type { Queryable } from '../audit/repository.ts';
import { USER_COLUMNS, type UserRow } from '../context.ts';

export async function findUserById(
  db: Queryable,
  id: string,
  opts: { forUpdate?: boolean } = {},
): Promise<UserRow | undefined> {
  const { rows } = await db.query<UserRow>(
    `SELECT ${USER_COLUMNS} FROM auth.users WHERE id = $1${opts.forUpdate ? ' FOR UPDATE' : ''}`,
    [id],
  );
  return rows[0];
}

export async function findUserByEmail(db: Queryable, email: string): Promise<UserRow | undefined> {
  const { rows } = await db.query<UserRow>(`SELECT ${USER_COLUMNS} FROM auth.users WHERE email = $1`, [email]);
  return rows[0];
}

/** Users whose email is `email` (normalised), or starts with it when `prefix`; by email. */
export async function searchUsersByEmail(
  db: Queryable,
  email: string,
  prefix: boolean,
  limit: number,
): Promise<UserRow[]> {
  const pattern = prefix ? `${email.replace(/[\\%_]/g, (c) => `\\${c}`)}%` : email;
  const { rows } = await db.query<UserRow>(
    `SELECT ${USER_COLUMNS} FROM auth.users WHERE ${prefix ? 'email LIKE $1' : 'email = $1'} ORDER BY email LIMIT $2`,
    [pattern, limit],
  );
  return rows;
}

/** The new user's id; undefined when the email is registered already. */
export async function insertUser(db: Queryable, email: string, passwordHash: string): Promise<string | undefined> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO auth.users (email, password_hash) VALUES ($1, $2) ON CONFLICT (email) DO NOTHING RETURNING id`,
    [email, passwordHash],
  );
  return rows[0]?.id;
}

/** Marks the email verified (kept as it was when it already is). */
export async function verifyEmail(db: Queryable, id: string): Promise<void> {
  await db.query(
    `UPDATE auth.users SET email_verified_at = coalesce(email_verified_at, now()), updated_at = now() WHERE id = $1`,
    [id],
  );
}

/** Whether the user's email is verified; undefined for no such user. */
export async function emailVerifiedOf(db: Queryable, id: string): Promise<boolean | undefined> {
  const { rows } = await db.query<{ verified: boolean }>(
    'SELECT email_verified_at IS NOT NULL AS verified FROM auth.users WHERE id = $1',
    [id],
  );
  return rows[0]?.verified;
}

/** Where to mail a user. */
export async function contactOf(
  db: Queryable,
  id: string,
): Promise<{ id: string; email: string; verified: boolean } | undefined> {
  const { rows } = await db.query<{ id: string; email: string; verified: boolean }>(
    'SELECT id, email, email_verified_at IS NOT NULL AS verified FROM auth.users WHERE id = $1',
    [id],
  );
  return rows[0];
}

export async function setPasswordHash(db: Queryable, id: string, hash: string): Promise<void> {
  await db.query('UPDATE auth.users SET password_hash = $2, updated_at = now() WHERE id = $1', [id, hash]);
}

/** A reset through the emailed link: the new password, and the address is proven too. */
export async function resetPassword(db: Queryable, id: string, hash: string): Promise<void> {
  await db.query(
    `UPDATE auth.users SET password_hash = $2, email_verified_at = coalesce(email_verified_at, now()),
            updated_at = now() WHERE id = $1`,
    [id, hash],
  );
}

export async function setPendingTotpSecret(db: Queryable, id: string, sealedSecret: string): Promise<void> {
  await db.query('UPDATE auth.users SET totp_pending_secret_enc = $2, updated_at = now() WHERE id = $1', [
    id,
    sealedSecret,
  ]);
}

/** The pending secret becomes the TOTP secret; `step` is the time step of the code that confirmed it. */
export async function enableTotp(db: Queryable, id: string, at: Date, step: number): Promise<void> {
  await db.query(
    `UPDATE auth.users SET totp_secret_enc = totp_pending_secret_enc, totp_pending_secret_enc = NULL,
       totp_enabled_at = $2, totp_last_step = $3, updated_at = now() WHERE id = $1`,
    [id, at, step],
  );
}

export async function disableTotp(db: Queryable, id: string): Promise<void> {
  await db.query(
    `UPDATE auth.users SET totp_secret_enc = NULL, totp_pending_secret_enc = NULL, totp_enabled_at = NULL,
       totp_last_step = NULL, updated_at = now() WHERE id = $1`,
    [id],
  );
}

export async function lockUser(db: Queryable, id: string, reason: string | null): Promise<UserRow> {
  const { rows } = await db.query<UserRow>(
    `UPDATE auth.users SET locked_at = coalesce(locked_at, now()), locked_reason = $2, updated_at = now()
      WHERE id = $1 RETURNING ${USER_COLUMNS}`,
    [id, reason],
  );
  return rows[0]!;
}

export async function unlockUser(db: Queryable, id: string): Promise<UserRow> {
  const { rows } = await db.query<UserRow>(
    `UPDATE auth.users SET locked_at = NULL, locked_reason = NULL, updated_at = now() WHERE id = $1 RETURNING ${USER_COLUMNS}`,
    [id],
  );
  return rows[0]!;
}

export async function setRoles(db: Queryable, id: string, roles: Role[]): Promise<UserRow> {
  const { rows } = await db.query<UserRow>(
    `UPDATE auth.users SET roles = $2, updated_at = now() WHERE id = $1 RETURNING ${USER_COLUMNS}`,
    [id, roles],
  );
  return rows[0]!;
}

/** The id and roles of the account with this (normalised) email. */
export async function rolesByEmail(db: Queryable, email: string): Promise<{ id: string; roles: string[] } | undefined> {
  const existing = await db.query<{ id: string; roles: string[] }>(
    'SELECT id, roles FROM auth.users WHERE email = $1',
    [email],
  );
  return existing.rows[0];
}

/** Mark the email verified if it was not (an operator-seeded account needs no verification link). */
export async function markEmailVerified(db: Queryable, id: string): Promise<void> {
  await db.query(
    'UPDATE auth.users SET email_verified_at = coalesce(email_verified_at, now()) WHERE id = $1 AND email_verified_at IS NULL',
    [id],
  );
}

export async function addAdminRole(db: Queryable, id: string): Promise<void> {
  await db.query(`UPDATE auth.users SET roles = array_append(roles, 'admin'), updated_at = now() WHERE id = $1`, [id]);
}

/** Create a verified admin with this email (or, in a race, return the account that took it); its id. */
export async function upsertAdmin(db: Queryable, email: string, passwordHash: string): Promise<string> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO auth.users (email, password_hash, roles, email_verified_at) VALUES ($1, $2, ARRAY['user','admin'], now())
     ON CONFLICT (email) DO UPDATE SET email = EXCLUDED.email RETURNING id`,
    [email, passwordHash],
  );
  return rows[0]!.id;
}
