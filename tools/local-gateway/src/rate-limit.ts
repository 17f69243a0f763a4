/**
 * Kong `rate-limiting` behaviour on top of rate-limiter-flexible: one fixed-window counter per configured period
 * (second, minute, hour, day, month, year), in memory or in Redis. Headers as Kong 3 sends them:
 * `X-RateLimit-Limit-<Period>`, `X-RateLimit-Remaining-<Period>`, and for the period closest to its limit
 * `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds); on 429 also `Retry-After`.
 * `fault_tolerant`: when Redis fails, the request passes (an in-memory insurance limiter still counts).
 * `sync_rate` (Kong 3.4+, `redis` policy): above 0, hits are counted in memory and sent to Redis every `sync_rate`
 * seconds in one pipeline; -1 (Kong's default) goes to Redis on every request.
 */
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';

export const PERIODS = { second: 1, minute: 60, hour: 3600, day: 86_400, month: 2_592_000, year: 31_536_000 } as const;
export type Period = keyof typeof PERIODS;
export type Limits = Partial<Record<Period, number>>;

/** Kong's `sync_rate` value for "every request goes to Redis". */
export const SYNC_RATE_REALTIME = -1;

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
  private readonly synced = new Map<number, SyncedCounters>();
  private readonly redis: Redis | undefined;
  private readonly keyPrefix: string;
  private readonly now: () => number;

  constructor(opts: { redis?: Redis; keyPrefix?: string; nowMs?: () => number } = {}) {
    this.redis = opts.redis;
    this.keyPrefix = opts.keyPrefix ?? 'local-gateway:rl';
    this.now = opts.nowMs ?? Date.now;
  }

  /** Sends the increments not yet in Redis and stops the sync timers (the gateway's close). */
  async close(): Promise<void> {
    await Promise.all([...this.synced.values()].map((c) => c.close()));
  }

  private syncedCounters(redis: Redis, syncRateSeconds: number): SyncedCounters {
    let counters = this.synced.get(syncRateSeconds);
    if (!counters) {
      counters = new SyncedCounters(redis, Math.round(syncRateSeconds * 1000), this.now);
      this.synced.set(syncRateSeconds, counters);
    }
    return counters;
  }

  /** One period's count of `identifier`, this request included: synced (Kong's `sync_rate`) or per request. */
  private async count(
    scope: string,
    period: Period,
    limit: number,
    identifier: string,
    opts: { useRedis: boolean; faultTolerant: boolean; syncRate: number },
  ): Promise<{ count: number; msBeforeNext: number }> {
    if (opts.useRedis && this.redis && opts.syncRate > 0) {
      // Kong's windows: aligned on the clock, not on a counter's first hit.
      const periodMs = PERIODS[period] * 1000;
      const now = this.now();
      const windowEnd = Math.floor(now / periodMs) * periodMs + periodMs;
      const key = `${this.keyPrefix}:${scope}:${period}:${identifier}:${windowEnd}`;
      const count = await this.syncedCounters(this.redis, opts.syncRate).increment(key, windowEnd, opts.faultTolerant);
      return { count, msBeforeNext: windowEnd - now };
    }
    try {
      const res = await this.limiter(scope, period, limit, opts.useRedis, opts.faultTolerant).consume(identifier);
      return { count: res.consumedPoints, msBeforeNext: res.msBeforeNext };
    } catch (e) {
      // rate-limiter-flexible rejects with the counter's state when the limit is exceeded
      if (e instanceof RateLimiterRes) return { count: e.consumedPoints, msBeforeNext: e.msBeforeNext };
      throw e;
    }
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
    opts: { useRedis?: boolean; faultTolerant?: boolean; hideClientHeaders?: boolean; syncRate?: number } = {},
  ): Promise<RateLimitOutcome> {
    const headers: Record<string, string> = {};
    let exceeded = false;
    let tightest: { limit: number; remaining: number; reset: number } | null = null;
    // Every period is counted, exceeded or not (as Kong does), so the counters are sent together: with the Redis
    // client's auto-pipelining they share one write and one round trip instead of one each.
    const periods = Object.entries(limits) as Array<[Period, number]>;
    const countOpts = {
      useRedis: opts.useRedis ?? false,
      faultTolerant: opts.faultTolerant ?? true,
      syncRate: opts.syncRate ?? SYNC_RATE_REALTIME,
    };
    const counted = await Promise.allSettled(
      periods.map(([period, limit]) => this.count(scope, period, limit, identifier, countOpts)),
    );
    for (const [i, [period, limit]] of periods.entries()) {
      const settled = counted[i]!;
      if (settled.status === 'rejected') {
        if (countOpts.faultTolerant) continue;
        throw settled.reason;
      }
      const { count, msBeforeNext } = settled.value;
      const over = count > limit;
      const remaining = Math.max(0, limit - count);
      const reset = Math.max(1, Math.ceil(msBeforeNext / 1000));
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

/** How long the gateway's close waits for its last sync to Redis. */
export const CLOSE_SYNC_TIMEOUT_MS = 2_000;

interface SyncedCounter {
  /** The count Redis last returned for the key. */
  known: number;
  /** Hits counted here and not yet sent to Redis. */
  delta: number;
  /** End of the key's window (ms since the epoch); the key expires in Redis then. */
  windowEnd: number;
}

/**
 * Kong's `sync_rate` for the `redis` policy: hits are counted in memory, and every `syncMs` the increments go to
 * Redis in one pipeline. What Redis answers (the other gateway nodes' hits included) becomes the counter's new base.
 * So a limit holds exactly on one node, and across nodes each one learns the others' hits at most `syncMs` late: a
 * client can exceed a limit by what the other nodes let through in that time (and a restarted node by what it let
 * through before its first sync). That suits a throttle, not a password-guessing limit, which keeps `sync_rate: -1`.
 * A strict (not fault-tolerant) limit also reads its counter at the first hit of a window, as Kong does for every
 * limit, so that Redis being down refuses the request.
 */
export class SyncedCounters {
  private readonly counters = new Map<string, SyncedCounter>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;

  private readonly redis: Redis;
  private readonly syncMs: number;
  private readonly now: () => number;

  constructor(redis: Redis, syncMs: number, now: () => number = Date.now) {
    this.redis = redis;
    this.syncMs = syncMs;
    this.now = now;
  }

  /** Counts one hit on `key` (whose window ends at `windowEnd`) and returns the count, this hit included. */
  async increment(key: string, windowEnd: number, faultTolerant = true): Promise<number> {
    const seen = this.counters.get(key);
    if (seen) {
      seen.delta += 1;
      this.schedule();
      return seen.known + seen.delta;
    }
    if (faultTolerant) {
      // A new window starts here at this node's own hits; the sync brings back the other nodes'. Kong reads the
      // counter from Redis at this point, which costs a round trip per client and window: for a per-second limit,
      // nearly every request of a client that sends fewer than one a second.
      this.counters.set(key, { known: 0, delta: 1, windowEnd });
      this.schedule();
      return 1;
    }
    // A strict limit reads the counter at its first hit in the window, so that a Redis outage refuses the request.
    const res = await this.redis.multi().incr(key).pexpireat(key, windowEnd).exec();
    const [err, value] = res?.[0] ?? [new Error('Redis transaction discarded'), null];
    if (err) throw err;
    const count = Number(value);
    // Concurrent first hits on one key each went to Redis; the highest answer includes the others.
    const other = this.counters.get(key);
    if (other) {
      other.known = Math.max(other.known, count);
      return other.known + other.delta;
    }
    this.counters.set(key, { known: count, delta: 0, windowEnd });
    this.schedule();
    return count;
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // One sync at a time: while one waits on Redis, the next waits its turn instead of queueing behind it.
      if (this.flushing) this.schedule();
      else void this.flush();
    }, this.syncMs);
    // The gateway's close flushes what is left; a pending sync must not keep the process alive.
    this.timer.unref();
  }

  /** Sends every pending increment in one pipeline; drops the counters whose window has ended. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    const run = this.flushOnce();
    this.flushing = run;
    try {
      await run;
    } finally {
      if (this.flushing === run) this.flushing = undefined;
    }
  }

  private async flushOnce(): Promise<void> {
    const now = this.now();
    const sent: Array<[SyncedCounter, number]> = [];
    const pipeline = this.redis.pipeline();
    for (const [key, counter] of this.counters) {
      if (counter.windowEnd <= now) {
        this.counters.delete(key); // its window is over: its count no longer limits anything
        continue;
      }
      if (counter.delta === 0) continue;
      pipeline.incrby(key, counter.delta).pexpireat(key, counter.windowEnd);
      sent.push([counter, counter.delta]);
    }
    if (sent.length === 0) return;
    let res: Array<[Error | null, unknown]> | null;
    try {
      res = await pipeline.exec();
    } catch {
      res = null;
    }
    let failed = false;
    for (const [i, [counter, delta]] of sent.entries()) {
      const [err, total] = res?.[i * 2] ?? [new Error('no reply'), null];
      if (err) {
        failed = true; // kept in `delta`: the next sync sends it again
        continue;
      }
      // Hits counted while the pipeline was out stay in `delta` for the next sync.
      counter.delta -= delta;
      counter.known = Math.max(counter.known + delta, Number(total));
    }
    if (failed || [...this.counters.values()].some((c) => c.delta > 0)) this.schedule();
  }

  /** A last sync, bounded: a Redis that accepts and never answers must not hold the gateway's shutdown. */
  async close(timeoutMs = CLOSE_SYNC_TIMEOUT_MS): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    let deadline: NodeJS.Timeout | undefined;
    await Promise.race([
      this.flush(),
      new Promise<void>((resolve) => {
        deadline = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(deadline);
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
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
