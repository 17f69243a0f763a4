/**
 * Kong `rate-limiting` behaviour on top of rate-limiter-flexible: one fixed-window counter per configured period
 * (second, minute, hour, day, month, year), in memory or in Redis. Headers as Kong 3 sends them:
 * `X-RateLimit-Limit-<Period>`, `X-RateLimit-Remaining-<Period>`, and for the period closest to its limit
 * `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds); on 429 also `Retry-After`.
 * `fault_tolerant`: when Redis fails, the request passes (an in-memory insurance limiter still counts).
 */
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';

export const PERIODS = { second: 1, minute: 60, hour: 3600, day: 86_400, month: 2_592_000, year: 31_536_000 } as const;
export type Period = keyof typeof PERIODS;
export type Limits = Partial<Record<Period, number>>;

export interface RateLimitOutcome {
  exceeded: boolean;
  /** Response headers to add (on success and on 429). */
  headers: Record<string, string>;
  retryAfterSeconds?: number;
}

export function limitsFromConfig(config: Record<string, unknown>): Limits {
  const out: Limits = {};
  for (const period of Object.keys(PERIODS) as Period[]) {
    const v = config[period];
    if (typeof v === 'number' && v > 0) out[period] = v;
  }
  return out;
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export class RateLimiter {
  private readonly limiters = new Map<string, RateLimiterAbstract>();
  private readonly redis: Redis | undefined;
  private readonly keyPrefix: string;

  constructor(opts: { redis?: Redis; keyPrefix?: string } = {}) {
    this.redis = opts.redis;
    this.keyPrefix = opts.keyPrefix ?? 'local-gateway:rl';
  }

  private limiter(
    scope: string,
    period: Period,
    points: number,
    useRedis: boolean,
    faultTolerant: boolean,
  ): RateLimiterAbstract {
    const id = `${scope}:${period}:${points}:${useRedis ? 'r' : 'm'}:${faultTolerant ? 'ft' : 'strict'}`;
    let limiter = this.limiters.get(id);
    if (!limiter) {
      const base = { points, duration: PERIODS[period], keyPrefix: `${this.keyPrefix}:${scope}:${period}` };
      // Without fault tolerance a Redis failure must surface (the request is refused), so no insurance limiter.
      limiter =
        useRedis && this.redis
          ? new RateLimiterRedis({
              ...base,
              storeClient: this.redis,
              ...(faultTolerant ? { insuranceLimiter: new RateLimiterMemory(base) } : {}),
            })
          : new RateLimiterMemory(base);
      this.limiters.set(id, limiter);
    }
    return limiter;
  }

  /**
   * Counts one request of `identifier` against every period of `limits` in `scope` (Kong scopes counters by
   * route/service; use the route name). Headers are omitted when `hideClientHeaders`.
   */
  async hit(
    scope: string,
    identifier: string,
    limits: Limits,
    opts: { useRedis?: boolean; faultTolerant?: boolean; hideClientHeaders?: boolean } = {},
  ): Promise<RateLimitOutcome> {
    const headers: Record<string, string> = {};
    let exceeded = false;
    let tightest: { limit: number; remaining: number; reset: number } | null = null;
    // Every period is counted, exceeded or not (as Kong does), so the counters are sent together: with the Redis
    // client's auto-pipelining they share one write and one round trip instead of one each.
    const periods = Object.entries(limits) as Array<[Period, number]>;
    const consumed = await Promise.allSettled(
      periods.map(([period, limit]) =>
        this.limiter(scope, period, limit, opts.useRedis ?? false, opts.faultTolerant ?? true).consume(identifier),
      ),
    );
    for (const [i, [period, limit]] of periods.entries()) {
      const settled = consumed[i]!;
      let res: RateLimiterRes;
      let over = false;
      if (settled.status === 'fulfilled') res = settled.value;
      else if (settled.reason instanceof RateLimiterRes) {
        res = settled.reason;
        over = true;
      } else if (opts.faultTolerant ?? true) {
        continue;
      } else {
        throw settled.reason;
      }
      const remaining = Math.max(0, over ? 0 : res.remainingPoints);
      const reset = Math.max(1, Math.ceil(res.msBeforeNext / 1000));
      headers[`X-RateLimit-Limit-${capitalize(period)}`] = String(limit);
      headers[`X-RateLimit-Remaining-${capitalize(period)}`] = String(remaining);
      if (over) exceeded = true;
      if (!tightest || remaining < tightest.remaining || (over && reset > tightest.reset)) {
        tightest = { limit, remaining, reset };
      }
    }
    if (tightest) {
      headers['RateLimit-Limit'] = String(tightest.limit);
      headers['RateLimit-Remaining'] = String(tightest.remaining);
      headers['RateLimit-Reset'] = String(tightest.reset);
    }
    const outcome: RateLimitOutcome = { exceeded, headers: opts.hideClientHeaders ? {} : headers };
    if (exceeded && tightest) {
      outcome.retryAfterSeconds = tightest.reset;
      outcome.headers['Retry-After'] = String(tightest.reset);
    }
    return outcome;
  }
}

/** Combines two outcomes (route limit and per-user limit): the tighter standard headers win. */
export function mergeOutcomes(a: RateLimitOutcome, b: RateLimitOutcome): RateLimitOutcome {
  const remainingA = Number(a.headers['RateLimit-Remaining'] ?? Infinity);
  const remainingB = Number(b.headers['RateLimit-Remaining'] ?? Infinity);
  const tighter = b.exceeded && !a.exceeded ? b : a.exceeded && !b.exceeded ? a : remainingB < remainingA ? b : a;
  const headers = { ...a.headers, ...b.headers };
  for (const h of ['RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset', 'Retry-After']) {
    const v = tighter.headers[h];
    if (v === undefined) delete headers[h];
    else headers[h] = v;
  }
  const out: RateLimitOutcome = { exceeded: a.exceeded || b.exceeded, headers };
  const retry = tighter.retryAfterSeconds ?? a.retryAfterSeconds ?? b.retryAfterSeconds;
  if (retry !== undefined) out.retryAfterSeconds = retry;
  return out;
}
