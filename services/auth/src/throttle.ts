import type pg from 'pg';
import { withTransaction } from '@exchange/db';
import { AppError } from '@exchange/platform';

export interface ThrottleLimits {
  soft: number;
  lock: number;
  baseMs: number;
  lockSeconds: number;
}

export type ThrottleState =
  { blocked: false } | { blocked: true; reason: 'throttled' | 'locked'; retryAfterSeconds: number };

const MAX_BACKOFF_MS = 60_000;

/** The 429 for a password attempt the throttle refused: LOGIN_LOCKED or LOGIN_THROTTLED, with Retry-After. */
export function loginBlocked(s: Extract<ThrottleState, { blocked: true }>, message: string): AppError {
  return new AppError(429, s.reason === 'locked' ? 'LOGIN_LOCKED' : 'LOGIN_THROTTLED', message, {
    headers: { 'retry-after': String(s.retryAfterSeconds) },
  });
}

/**
 * Failed-attempt counters keyed by (kind, key): 'account' + normalised email (whether or not the account exists, so
 * lockout behaves the same for unknown emails), 'ip' + client IP, 'mfa' + user id. Failures within `lockSeconds` of
 * the first one count; from `soft` failures on the next attempt must wait baseMs·2^(n-soft) (≤ 60 s); at `lock`
 * failures the key is locked for `lockSeconds`. Blocked attempts are not counted (they cannot extend a lock).
 */
export class Throttle {
  private readonly pool: pg.Pool;
  constructor(pool: pg.Pool) {
    this.pool = pool;
  }

  async check(kind: string, key: string): Promise<ThrottleState> {
    const { rows } = await this.pool.query<{ next_ms: string | null; lock_ms: string | null }>(
      `SELECT (extract(epoch FROM next_allowed_at - clock_timestamp()) * 1000)::bigint AS next_ms,
              (extract(epoch FROM locked_until - clock_timestamp()) * 1000)::bigint AS lock_ms
         FROM auth.login_throttle WHERE kind = $1 AND key = $2`,
      [kind, key],
    );
    const r = rows[0];
    if (!r) return { blocked: false };
    const lockMs = Number(r.lock_ms ?? 0);
    if (lockMs > 0) return { blocked: true, reason: 'locked', retryAfterSeconds: Math.ceil(lockMs / 1000) };
    const nextMs = Number(r.next_ms ?? 0);
    if (nextMs > 0) return { blocked: true, reason: 'throttled', retryAfterSeconds: Math.ceil(nextMs / 1000) };
    return { blocked: false };
  }

  /** Count a failure; returns the failure count in the current window. */
  async fail(kind: string, key: string, l: ThrottleLimits): Promise<number> {
    return withTransaction(this.pool, async (c) => {
      await c.query(
        `INSERT INTO auth.login_throttle (kind, key, failures, window_started_at) VALUES ($1, $2, 0, clock_timestamp())
         ON CONFLICT DO NOTHING`,
        [kind, key],
      );
      const { rows } = await c.query<{ failures: number; expired: boolean }>(
        `SELECT failures, window_started_at < clock_timestamp() - make_interval(secs => $3) AS expired
           FROM auth.login_throttle WHERE kind = $1 AND key = $2 FOR UPDATE`,
        [kind, key, l.lockSeconds],
      );
      const row = rows[0]!;
      const failures = row.expired ? 1 : row.failures + 1;
      const backoffMs = failures >= l.soft ? Math.min(l.baseMs * 2 ** (failures - l.soft), MAX_BACKOFF_MS) : 0;
      await c.query(
        `UPDATE auth.login_throttle SET failures = $3::int,
            window_started_at = CASE WHEN $4::boolean THEN clock_timestamp() ELSE window_started_at END,
            next_allowed_at = CASE WHEN $5::int > 0 THEN clock_timestamp() + make_interval(secs => $5::int / 1000.0) END,
            locked_until = CASE WHEN $3::int >= $6::int THEN clock_timestamp() + make_interval(secs => $7::int) END
          WHERE kind = $1 AND key = $2`,
        [kind, key, failures, row.expired, backoffMs, l.lock, l.lockSeconds],
      );
      return failures;
    });
  }

  async reset(kind: string, key: string): Promise<void> {
    await this.pool.query('DELETE FROM auth.login_throttle WHERE kind = $1 AND key = $2', [kind, key]);
  }
}
