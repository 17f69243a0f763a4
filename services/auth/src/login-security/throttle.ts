import type pg from 'pg';
import { AppError } from '@exchange/platform';
import * as repo from './repository.ts';

export interface ThrottleLimits {
  /** Failures from which the next attempt must wait (Infinity: never). */
  soft: number;
  /** Failures at which the key is locked for `lockSeconds` (0: never). */
  lock: number;
  baseMs: number;
  /** How long a lock lasts; also the failure-counting window. */
  lockSeconds: number;
}

export type ThrottleState =
  { blocked: false; failures: number } | { blocked: true; reason: 'throttled' | 'locked'; retryAfterSeconds: number };

const MAX_BACKOFF_MS = 60_000;
const NEVER = 2 ** 31 - 1;

/** The 429 for a password attempt the throttle refused: LOGIN_LOCKED or LOGIN_THROTTLED, with Retry-After. */
export function loginBlocked(s: Extract<ThrottleState, { blocked: true }>, message: string): AppError {
  return new AppError(429, s.reason === 'locked' ? 'LOGIN_LOCKED' : 'LOGIN_THROTTLED', message, {
    headers: { 'retry-after': String(s.retryAfterSeconds) },
  });
}

/**
 * Attempt counters keyed by (kind, key), e.g. 'ip' + client IP, 'account_client' + email|IP, 'account' + email,
 * 'mfa' + user id, 'mfa_session' + session id. `attempt` counts and judges in one statement (the database function
 * auth.throttle_attempt, under the row lock), so parallel guesses cannot all pass before the counter moves: an
 * attempt is counted before its password or code is checked, and a success then clears the key (`reset`). From
 * `soft` attempts the next must wait baseMs·2^(n-soft) (≤ 60 s); at `lock` the key is locked for `lockSeconds`.
 * Blocked attempts are not counted (they cannot extend a lock).
 */
export class Throttle {
  private readonly pool: pg.Pool;
  constructor(pool: pg.Pool) {
    this.pool = pool;
  }

  async attempt(kind: string, key: string, l: ThrottleLimits): Promise<ThrottleState> {
    const r = await repo.throttleAttempt(this.pool, [
      kind,
      key,
      Number.isFinite(l.soft) ? l.soft : NEVER,
      l.lock,
      l.baseMs,
      l.lockSeconds,
      MAX_BACKOFF_MS,
    ]);
    if (!r.blocked) return { blocked: false, failures: r.failures };
    return {
      blocked: true,
      reason: r.reason === 'locked' ? 'locked' : 'throttled',
      retryAfterSeconds: Math.max(1, Math.ceil(Number(r.retry_ms) / 1000)),
    };
  }

  /** Whether `key` is blocked right now, without counting anything (a cheap pre-check; `attempt` decides). */
  async peek(kind: string, key: string): Promise<Extract<ThrottleState, { blocked: true }> | undefined> {
    const r = await repo.throttleBlock(this.pool, kind, key);
    if (!r) return undefined;
    return {
      blocked: true,
      reason: r.reason === 'locked' ? 'locked' : 'throttled',
      retryAfterSeconds: Math.max(1, Math.ceil(Number(r.ms) / 1000)),
    };
  }

  async reset(kind: string, key: string): Promise<void> {
    await repo.deleteThrottle(this.pool, kind, key);
  }
}
