/**
 * The SQL of login security: the throttle counters (auth.login_throttle, counted by auth.throttle_attempt under the
 * row lock) and the spent proof-of-work challenges (auth.spent_challenges).
 */
import type { Queryable } from '../audit/repository.ts';

/** Count an attempt and say whether it may go ahead (auth.throttle_attempt: kind, key, soft, lock, baseMs, ...). */
export async function throttleAttempt(
  db: Queryable,
  args: [kind: string, key: string, soft: number, lock: number, baseMs: number, lockSeconds: number, maxMs: number],
): Promise<{ blocked: boolean; reason: string | null; retry_ms: string; failures: number }> {
  const { rows } = await db.query<{
    blocked: boolean;
    reason: string | null;
    retry_ms: string;
    failures: number;
  }>('SELECT * FROM auth.throttle_attempt($1, $2, $3, $4, $5, $6, $7)', args);
  return rows[0]!;
}

/** Why and for how long (ms) `key` is blocked right now, if it is. */
export async function throttleBlock(
  db: Queryable,
  kind: string,
  key: string,
): Promise<{ reason: string; ms: string } | undefined> {
  const { rows } = await db.query<{ reason: string; ms: string }>(
    `SELECT CASE WHEN locked_until > clock_timestamp() THEN 'locked' ELSE 'throttled' END AS reason,
              ceil(extract(epoch FROM greatest(locked_until, next_allowed_at) - clock_timestamp()) * 1000)::bigint AS ms
         FROM auth.login_throttle
        WHERE kind = $1 AND key = $2 AND greatest(locked_until, next_allowed_at) > clock_timestamp()`,
    [kind, key],
  );
  return rows[0];
}

export async function deleteThrottle(db: Queryable, kind: string, key: string): Promise<void> {
  await db.query('DELETE FROM auth.login_throttle WHERE kind = $1 AND key = $2', [kind, key]);
}

/** Every login counter of an account: its own, its (account, client) pairs, its 2FA counter. */
export async function deleteAccountThrottles(db: Queryable, email: string, userId: string): Promise<void> {
  await db.query(
    `DELETE FROM auth.login_throttle
      WHERE (kind = 'account' AND key = $1) OR (kind = 'account_client' AND starts_with(key, $1 || '|'))
         OR (kind = 'mfa' AND key = $2)`,
    [email, userId],
  );
}

/** Spend a proof-of-work challenge (by its signature's hash); false when it was spent before. */
export async function spendChallenge(db: Queryable, signatureHash: string, ttlSeconds: number): Promise<boolean> {
  const spent = await db.query(
    `INSERT INTO auth.spent_challenges (signature, expires_at) VALUES ($1, now() + make_interval(secs => $2))
     ON CONFLICT DO NOTHING`,
    [signatureHash, ttlSeconds],
  );
  return spent.rowCount === 1;
}

/** Throttle rows whose window ended twice the lock time ago and that lock nothing (housekeeping). */
export async function deleteStaleThrottles(db: Queryable, lockSeconds: number): Promise<void> {
  await db.query(
    `DELETE FROM auth.login_throttle WHERE window_started_at < now() - make_interval(secs => $1 * 2)
         AND (locked_until IS NULL OR locked_until < now())`,
    [lockSeconds],
  );
}
