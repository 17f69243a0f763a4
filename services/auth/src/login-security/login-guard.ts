/**
 * Who may try a password, and what a failure costs whom. Lock the attacker, never the owner:
 *
 * - per client IP ('ip'): backoff, then a lock of that IP;
 * - per (account, client IP) ('account_client'): backoff, then that client is locked out of that account alone;
 * - per account over all clients ('account'): never a lock. Past LOGIN_ACCOUNT_POW_LIMIT failures, a login to it
 *   needs a proof of work (a CAPTCHA-free ALTCHA challenge bound to the account, single use, 5 min): the owner's
 *   client solves one in a second or two, a distributed guesser pays that for every single guess.
 *
 * Each counter is counted and judged in one statement (Throttle.attempt), so parallel guesses cannot slip past.
 * An emailed unlock link is the other way back in for the owner; it belongs with the mail notifications (a hook:
 * `resetAccountThrottles` is what such a link would call).
 */
import { createHmac } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { createChallenge, verifySolution, type Challenge, type Payload } from 'altcha-lib';
import { deriveKey } from 'altcha-lib/algorithms/sha';
import { AppError } from '@exchange/platform';
import { audit, type Queryable } from '../audit/repository.ts';
import type { AuthContext } from '../context.ts';
import { sha256hex } from '../crypto.ts';
import { deleteAccountThrottles, spendChallenge } from './repository.ts';
import { loginBlocked, type ThrottleLimits } from './throttle.ts';

const POW_TTL_S = 300;
const NO_LIMIT: Omit<ThrottleLimits, 'lockSeconds'> = { soft: Infinity, lock: 0, baseMs: 0 };

const clientKey = (email: string, ip: string) => `${email}|${ip}`;
const powSecret = (ctx: AuthContext) =>
  createHmac('sha256', Buffer.from(ctx.config.API_KEY_ENCRYPTION_KEY, 'base64')).update('login-pow').digest('hex');

/** A proof-of-work challenge for logging in to `email` (clients solve it with altcha-lib's solveChallenge). */
export async function powChallenge(ctx: AuthContext, email: string): Promise<Challenge> {
  return createChallenge({
    algorithm: 'SHA-256',
    cost: 1,
    deriveKey,
    keyPrefix: '0'.repeat(ctx.config.LOGIN_POW_HEX_ZEROS),
    expiresAt: Math.floor(Date.now() / 1000) + POW_TTL_S,
    data: { account: sha256hex(`pow:${email}`) },
    hmacSignatureSecret: powSecret(ctx),
  });
}

async function powValid(ctx: AuthContext, email: string, proofOfWork: string | undefined): Promise<boolean> {
  if (proofOfWork === undefined) return false;
  let payload: Payload;
  try {
    payload = JSON.parse(Buffer.from(proofOfWork, 'base64').toString('utf8')) as Payload;
  } catch {
    return false;
  }
  const c = payload?.challenge;
  if (!c?.parameters || c.parameters.data?.account !== sha256hex(`pow:${email}`)) return false;
  if (c.parameters.keyPrefix !== '0'.repeat(ctx.config.LOGIN_POW_HEX_ZEROS) || c.parameters.algorithm !== 'SHA-256')
    return false;
  const r = await verifySolution({
    challenge: c,
    solution: payload.solution,
    deriveKey,
    hmacSignatureSecret: powSecret(ctx),
  }).catch(() => ({ verified: false }));
  if (!r.verified) return false;
  return spendChallenge(ctx.pool, sha256hex(c.signature!), POW_TTL_S + 60);
}

export interface Admission {
  accountFailures: number;
  clientFailures: number;
  ipFailures: number;
}

/**
 * Count this password attempt against the client IP, the (account, client) pair and the account, and refuse it
 * (429) when one of them says so; throws before the password is looked at, so a refusal says nothing about it.
 */
export async function admitLogin(
  ctx: AuthContext,
  req: FastifyRequest,
  email: string,
  ip: string,
  proofOfWork: string | undefined,
): Promise<Admission> {
  const window = { lockSeconds: ctx.config.LOGIN_LOCK_SECONDS };
  const refuse = async (by: string, reason: string, err: AppError) => {
    ctx.metrics.loginFailures.inc({ reason });
    await audit(ctx.pool, req, { action: 'auth.login_blocked', details: { email, by, reason } });
    return err;
  };
  // A read-only pre-check first, so an attempt one key refuses is not counted against the others; the atomic
  // attempts below are what actually decide (parallel attempts past the pre-check are counted, as they should be).
  for (const [kind, key] of [
    ['account_client', clientKey(email, ip)],
    ['ip', ip],
  ] as const) {
    const b = await ctx.throttle.peek(kind, key);
    if (b) throw await refuse(kind, b.reason, loginBlocked(b, blockedMessage(b.reason)));
  }
  const ipState = await ctx.throttle.attempt('ip', ip, ctx.ipLimits);
  if (ipState.blocked) throw await refuse('ip', ipState.reason, loginBlocked(ipState, blockedMessage(ipState.reason)));
  const cs = await ctx.throttle.attempt('account_client', clientKey(email, ip), ctx.accountLimits);
  if (cs.blocked) throw await refuse('account_client', cs.reason, loginBlocked(cs, blockedMessage(cs.reason)));
  const acc = await ctx.throttle.attempt('account', email, { ...NO_LIMIT, ...window });
  if (acc.blocked) throw new Error('unreachable: account counters never block');
  if (acc.failures > ctx.config.LOGIN_ACCOUNT_POW_LIMIT && !(await powValid(ctx, email, proofOfWork))) {
    throw await refuse(
      'account',
      'proof_of_work',
      new AppError(
        429,
        'PROOF_OF_WORK_REQUIRED',
        'this account sees many failed logins: solve the challenge and retry',
        {
          details: { challenge: await powChallenge(ctx, email), field: 'proofOfWork' },
          headers: { 'retry-after': '0' },
        },
      ),
    );
  }
  return { accountFailures: acc.failures, clientFailures: cs.failures, ipFailures: ipState.failures };
}

const blockedMessage = (reason: 'locked' | 'throttled') =>
  reason === 'locked' ? 'too many failed logins; try again later' : 'too many failed logins; slow down';

/** A correct password (and code): this client and the account start over. */
export async function loginSucceeded(ctx: AuthContext, email: string, ip: string): Promise<void> {
  await ctx.throttle.reset('account_client', clientKey(email, ip));
  await ctx.throttle.reset('account', email);
}

/** Clears every login counter of an account (admin unlock; an emailed unlock link would call this too). */
export async function resetAccountThrottles(db: Queryable, email: string, userId: string): Promise<void> {
  await deleteAccountThrottles(db, email, userId);
}

/** A signed-in user's password re-check (reauth) counts against the same (account, client) pair as a login. */
export async function admitPasswordRecheck(ctx: AuthContext, email: string, ip: string) {
  const s = await ctx.throttle.attempt('account_client', clientKey(email, ip), ctx.accountLimits);
  if (s.blocked) throw loginBlocked(s, 'too many failed attempts');
  return {
    succeeded: () => ctx.throttle.reset('account_client', clientKey(email, ip)),
  };
}

/**
 * One wrong-code budget per user (backoff, lock for the window) and one per session over its whole life
 * (MFA_SESSION_MAX_FAILURES): a 6-digit code cannot be guessed through one session, however long it lives.
 * Counted before the code is checked; `succeeded` clears both.
 */
export async function admitMfaCode(ctx: AuthContext, userId: string, sessionId: string | undefined) {
  const blocked = (retryAfterSeconds: number) =>
    new AppError(429, 'MFA_THROTTLED', 'too many wrong codes; wait', {
      headers: { 'retry-after': String(retryAfterSeconds) },
    });
  const u = await ctx.throttle.attempt('mfa', userId, ctx.accountLimits);
  if (u.blocked) throw blocked(u.retryAfterSeconds);
  if (sessionId !== undefined) {
    const s = await ctx.throttle.attempt('mfa_session', sessionId, {
      ...NO_LIMIT,
      lock: ctx.config.MFA_SESSION_MAX_FAILURES,
      lockSeconds: ctx.config.REFRESH_TOKEN_TTL_SECONDS,
    });
    if (s.blocked) throw blocked(s.retryAfterSeconds);
  }
  return {
    succeeded: async () => {
      await ctx.throttle.reset('mfa', userId);
      if (sessionId !== undefined) await ctx.throttle.reset('mfa_session', sessionId);
    },
  };
}
