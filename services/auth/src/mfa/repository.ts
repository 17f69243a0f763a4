/** The SQL of the second factor: the TOTP replay guard on auth.users and auth.recovery_codes. */
import type { Queryable } from '../audit/repository.ts';

/** Record the TOTP time step a code matched; false when that step (or a later one) was used before. */
export async function advanceTotpStep(db: Queryable, userId: string, step: number): Promise<boolean> {
  const r = await db.query(
    'UPDATE auth.users SET totp_last_step = $2 WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)',
    [userId, step],
  );
  return r.rowCount === 1;
}

/** Mark an unused recovery code of the user with this hash used; false when there is none. */
export async function useRecoveryCodeHash(db: Queryable, userId: string, codeHash: string): Promise<boolean> {
  const r = await db.query(
    `UPDATE auth.recovery_codes SET used_at = now()
      WHERE id = (SELECT id FROM auth.recovery_codes WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL LIMIT 1 FOR UPDATE)`,
    [userId, codeHash],
  );
  return r.rowCount === 1;
}

export async function insertRecoveryCode(db: Queryable, userId: string, codeHash: string): Promise<void> {
  await db.query('INSERT INTO auth.recovery_codes (user_id, code_hash) VALUES ($1, $2)', [userId, codeHash]);
}

export async function deleteRecoveryCodes(db: Queryable, userId: string): Promise<void> {
  await db.query('DELETE FROM auth.recovery_codes WHERE user_id = $1', [userId]);
}
