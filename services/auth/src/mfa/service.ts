import { randomInt } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { generateSecret, generateURI, verify } from 'otplib';
import { withTransaction } from '@exchange/db';
import { conflict, unauthorized } from '@exchange/platform';
import { STAFF_ROLES } from '@exchange/auth-client';
import { MfaDisabledV1, MfaEnabledV1 } from '@exchange/contracts/auth';
import { revokeUserApiKeys } from '../api-keys/repository.ts';
import { audit, type Queryable } from '../audit/repository.ts';
import type { AuthContext, Caller, UserRow } from '../context.ts';
import { sha256hex } from '../crypto.ts';
import { recordAccountChange } from '../email/service.ts';
import { admitMfaCode } from '../login-security/login-guard.ts';
import { revokeOtherSessions, setSessionMfaAt } from '../sessions/repository.ts';
import { accessTokenFor } from '../sessions/service.ts';
import { disableTotp, enableTotp, findUserById, setPendingTotpSecret } from '../users/repository.ts';
import { confirmPassword } from './reauth.ts';
import * as repo from './repository.ts';

const TOTP_TOLERANCE_S = 30; // one 30 s step either side (clock drift)

export const totpAad = (userId: string) => `totp:${userId}`;

export function newTotpSecret(): string {
  return generateSecret({ length: 20 });
}

export function otpauthUri(secret: string, email: string): string {
  return generateURI({ issuer: 'Exchange', label: email, secret });
}

/** Check a code against a base32 secret; returns the RFC 6238 time step it matched, or undefined. */
export async function checkTotp(secret: string, code: string, afterTimeStep?: number): Promise<number | undefined> {
  if (!/^\d{6}$/.test(code)) return undefined;
  try {
    const r = await verify({
      secret,
      token: code,
      epochTolerance: TOTP_TOLERANCE_S,
      ...(afterTimeStep !== undefined ? { afterTimeStep } : {}),
    });
    return r.valid ? (r as { timeStep: number }).timeStep : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Verify a TOTP code of an enabled user. A code is accepted once: the matched time step is stored and later codes of
 * the same or an earlier step are rejected (RFC 6238 §5.2), atomically even under concurrent requests.
 */
export async function verifyUserTotp(ctx: AuthContext, db: Queryable, user: UserRow, code: string): Promise<boolean> {
  if (!user.totp_secret_enc) return false;
  const secret = ctx.sealer.open(user.totp_secret_enc, totpAad(user.id));
  const last = user.totp_last_step === null ? undefined : Number(user.totp_last_step);
  const step = await checkTotp(secret, code, last);
  if (step === undefined) return false;
  return repo.advanceTotpStep(db, user.id, step);
}

const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789'; // no 0/O, 1/I

export function newRecoveryCodes(n = 10): string[] {
  return Array.from({ length: n }, () => {
    const chars = Array.from({ length: 12 }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');
    return `${chars.slice(0, 4)}-${chars.slice(4, 8)}-${chars.slice(8)}`;
  });
}

/** Recovery codes carry 60 random bits each, so a SHA-256 of the normalised code is a sufficient verifier. */
export const recoveryCodeHash = (code: string) => sha256hex(code.toUpperCase().replace(/[^A-Z0-9]/g, ''));

/** The user's recovery codes become exactly these (by their hashes); earlier ones stop working. */
export async function replaceRecoveryCodes(db: Queryable, userId: string, codes: string[]): Promise<void> {
  await repo.deleteRecoveryCodes(db, userId);
  for (const code of codes) await repo.insertRecoveryCode(db, userId, recoveryCodeHash(code));
}

/** Use a recovery code (single use: the UPDATE marks it, so a second use finds nothing). */
export async function useRecoveryCode(db: Queryable, userId: string, code: string): Promise<boolean> {
  return repo.useRecoveryCodeHash(db, userId, recoveryCodeHash(code));
}

/** The signed-in user 2FA is managed for. */
async function loadUser(ctx: AuthContext, id: string): Promise<UserRow> {
  const user = await findUserById(ctx.pool, id);
  if (!user) throw unauthorized('UNAUTHENTICATED', 'user no longer exists');
  return user;
}

/**
 * Start TOTP enrolment: a new secret, stored pending (2FA is on only after confirmTotp). The password is re-checked,
 * so a stolen access token alone cannot enrol the thief's authenticator and lock the owner out.
 */
export async function startTotpSetup(
  ctx: AuthContext,
  req: FastifyRequest,
  userId: string,
  password: string,
): Promise<{ secret: string; otpauthUri: string }> {
  const user = await loadUser(ctx, userId);
  if (user.totp_enabled_at !== null) throw conflict('MFA_ALREADY_ENABLED', '2FA is already enabled');
  await confirmPassword(ctx, req, user, password, {
    action: 'auth.2fa_setup_failed',
    message: 'password is wrong',
  });
  const secret = newTotpSecret();
  await setPendingTotpSecret(ctx.pool, user.id, ctx.sealer.seal(secret, totpAad(user.id)));
  await audit(ctx.pool, req, { action: 'auth.2fa_setup', actorId: user.id, targetId: user.id });
  return { secret, otpauthUri: otpauthUri(secret, user.email) };
}

/** An access token of the caller's session carrying a 2FA check made at `at` (claim mfa_at). */
export interface SteppedUpToken {
  accessToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
  mfaAt: number;
}

/** An access token of the session whose 2FA check was `at`, counted as issued for `kind`. */
async function steppedUpToken(
  ctx: AuthContext,
  user: UserRow,
  sessionId: string,
  at: Date,
  kind: 'mfa_enable' | 'step_up',
): Promise<SteppedUpToken> {
  const access = await accessTokenFor(ctx, user, sessionId, at);
  ctx.metrics.tokensIssued.inc({ kind });
  return {
    accessToken: access.token,
    tokenType: 'Bearer',
    expiresIn: access.expiresIn,
    mfaAt: Math.floor(at.getTime() / 1000),
  };
}

/**
 * Confirm enrolment with a code: 2FA on, every other session revoked, 10 single-use recovery codes (shown once) and
 * a fresh access token for the calling session.
 */
export async function confirmTotp(
  ctx: AuthContext,
  req: FastifyRequest,
  caller: Caller,
  totpCode: string,
): Promise<SteppedUpToken & { recoveryCodes: string[] }> {
  const user = await loadUser(ctx, caller.id);
  if (user.totp_enabled_at !== null) throw conflict('MFA_ALREADY_ENABLED', '2FA is already enabled');
  if (!user.totp_pending_secret_enc) throw conflict('MFA_SETUP_REQUIRED', 'call 2fa/setup first');
  const secret = ctx.sealer.open(user.totp_pending_secret_enc, totpAad(user.id));
  const budget = await admitMfaCode(ctx, user.id, caller.sessionId);
  const step = await checkTotp(secret, totpCode);
  if (step === undefined) throw unauthorized('INVALID_MFA_CODE', 'the code is wrong');
  await budget.succeeded();
  const codes = newRecoveryCodes();
  const now = new Date();
  await withTransaction(ctx.pool, async (c) => {
    await enableTotp(c, user.id, now, step);
    await replaceRecoveryCodes(c, user.id, codes);
    if (caller.sessionId) await setSessionMfaAt(c, caller.sessionId, now);
    // Sessions opened before 2FA (perhaps by whoever made the owner turn it on) must not outlive it.
    const revoked = await revokeOtherSessions(c, user.id, caller.sessionId ?? null, '2fa_enabled');
    await recordAccountChange(c, req, user, {
      action: 'auth.2fa_enabled',
      details: { otherSessionsRevoked: revoked },
      notice: MfaEnabledV1,
    });
  });
  const enabled = { ...user, totp_enabled_at: now };
  return { ...(await steppedUpToken(ctx, enabled, caller.sessionId!, now, 'mfa_enable')), recoveryCodes: codes };
}

/**
 * Step-up: prove 2FA now (a TOTP code or a recovery code) and get an access token whose mfa_at is now, for
 * withdrawals, API keys and admin actions.
 */
export async function stepUp(
  ctx: AuthContext,
  req: FastifyRequest,
  caller: Caller,
  body: { totpCode?: string; recoveryCode?: string },
): Promise<SteppedUpToken> {
  const sessionId = caller.sessionId;
  if (!sessionId) throw unauthorized('SESSION_REQUIRED', 'step-up needs a session token');
  const user = await loadUser(ctx, caller.id);
  if (user.totp_enabled_at === null) throw conflict('MFA_NOT_ENABLED', '2FA is not enabled');
  const budget = await admitMfaCode(ctx, user.id, sessionId);
  const passed =
    body.totpCode !== undefined
      ? await verifyUserTotp(ctx, ctx.pool, user, body.totpCode)
      : await useRecoveryCode(ctx.pool, user.id, body.recoveryCode!);
  if (!passed) {
    await audit(ctx.pool, req, { action: 'auth.2fa_challenge_failed', actorId: user.id, targetId: user.id });
    throw unauthorized('INVALID_MFA_CODE', 'the two-factor code is wrong or already used');
  }
  await budget.succeeded();
  const now = new Date();
  await setSessionMfaAt(ctx.pool, sessionId, now);
  await audit(ctx.pool, req, {
    action: 'auth.2fa_step_up',
    actorId: user.id,
    targetId: user.id,
    details: { sessionId, method: body.totpCode !== undefined ? 'totp' : 'recovery_code' },
  });
  return steppedUpToken(ctx, user, sessionId, now, 'step_up');
}

/** Turn 2FA off (never for staff): recovery codes deleted, every other session and every API key revoked. */
export async function disableMfa(ctx: AuthContext, req: FastifyRequest, caller: Caller): Promise<void> {
  const user = await loadUser(ctx, caller.id);
  if (user.totp_enabled_at === null) throw conflict('MFA_NOT_ENABLED', '2FA is not enabled');
  if (user.roles.some((r) => STAFF_ROLES.includes(r)))
    throw conflict('MFA_REQUIRED_FOR_ROLE', 'support and admin accounts must keep 2FA on');
  await withTransaction(ctx.pool, async (c) => {
    await disableTotp(c, user.id);
    await repo.deleteRecoveryCodes(c, user.id);
    await revokeOtherSessions(c, user.id, caller.sessionId ?? null, '2fa_disabled');
    const keys = await revokeUserApiKeys(c, user.id, '2fa_disabled');
    await recordAccountChange(c, req, user, {
      action: 'auth.2fa_disabled',
      details: { apiKeysRevoked: keys },
      notice: MfaDisabledV1,
    });
  });
}
