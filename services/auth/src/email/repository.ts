/** The SQL of the emailed links' tokens (auth.email_tokens); the tokens themselves are minted in service.ts. */
import type { Queryable } from '@exchange/messaging';

/** Spend the user's unused tokens of `purpose` (only the newest link works). */
export async function spendUnusedTokens(db: Queryable, userId: string, purpose: string): Promise<void> {
  await db.query(
    `UPDATE auth.email_tokens SET used_at = now() WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL`,
    [userId, purpose],
  );
}

/** Store a token by its hash; when it expires. */
export async function insertToken(
  db: Queryable,
  userId: string,
  purpose: string,
  tokenHash: string,
  ttlSeconds: number,
): Promise<Date> {
  const { rows } = await db.query<{ expires_at: Date }>(
    `INSERT INTO auth.email_tokens (user_id, purpose, token_hash, expires_at)
       VALUES ($1, $2, $3, now() + make_interval(secs => $4)) RETURNING expires_at`,
    [userId, purpose, tokenHash, ttlSeconds],
  );
  return rows[0]!.expires_at;
}

/** Spend an unused token (atomically: of two concurrent uses one wins); its user and whether it had expired. */
export async function spendToken(
  db: Queryable,
  tokenHash: string,
  purpose: string,
): Promise<{ user_id: string; expired: boolean } | undefined> {
  const { rows } = await db.query<{ user_id: string; expired: boolean }>(
    `UPDATE auth.email_tokens SET used_at = now()
        WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL
        RETURNING user_id, expires_at <= now() AS expired`,
    [tokenHash, purpose],
  );
  return rows[0];
}

/** The email of the account a password-reset token (by its hash) belongs to, used or not. */
export async function resetTokenEmail(db: Queryable, tokenHash: string): Promise<string | undefined> {
  const { rows } = await db.query<{ email: string }>(
    `SELECT u.email FROM auth.email_tokens t JOIN auth.users u ON u.id = t.user_id
        WHERE t.token_hash = $1 AND t.purpose = 'reset_password'`,
    [tokenHash],
  );
  return rows[0]?.email;
}

/** Spend every unused token of the user, whatever its purpose. */
export async function spendAllTokens(db: Queryable, userId: string): Promise<void> {
  await db.query(`UPDATE auth.email_tokens SET used_at = now() WHERE user_id = $1 AND used_at IS NULL`, [userId]);
}
