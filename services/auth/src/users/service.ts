/**
 * Account operations: registration, login, password change, and the staff actions on an account (search, lock,
 * unlock, roles). Each runs its statements through the repositories and writes its audit rows and events itself.
 */
import type { FastifyRequest } from 'fastify';
import { AppError, conflict, forbidden, notFound, unauthorized } from '@exchange/platform';
import { STAFF_ROLES, type Principal, type Role } from '@exchange/auth-client';
import { withTransaction } from '@exchange/db';
import { AccountLockedV1, LoginNewDeviceV1, UserRegisteredV1 } from '@exchange/contracts/auth';
import { revokeUserApiKeys } from '../api-keys/repository.ts';
import { audit, clientIp } from '../audit/repository.ts';
import { normaliseEmail, userView, type AuthContext, type Caller, type UserRow } from '../context.ts';
import { emit, requestContext } from '../email/service.ts';
import {
  admitLogin,
  admitMfaCode,
  loginSucceeded,
  resetAccountThrottles,
  type Admission,
} from '../login-security/login-guard.ts';
import { confirmPassword } from '../mfa/reauth.ts';
import { useRecoveryCode, verifyUserTotp } from '../mfa/service.ts';
import { earlierDevices, revokeOtherSessions, revokeUserSessions } from '../sessions/repository.ts';
import { startSession } from '../sessions/service.ts';
import { assertStrongPassword } from './passwords.ts';
import * as repo from './repository.ts';

/** The user, or 401 UNAUTHENTICATED when the account behind a valid token no longer exists. */
export async function currentUser(ctx: AuthContext, userId: string): Promise<UserRow> {
  const user = await repo.findUserById(ctx.pool, userId);
  if (!user) throw unauthorized('UNAUTHENTICATED', 'user no longer exists');
  return user;
}

/** EMAIL_PREVERIFIED: the addresses whose accounts start verified (no welcome mail). */
export function preverifiedEmails(list: string): Set<string> {
  return new Set(
    list
      .split(',')
      .map((e) => normaliseEmail(e))
      .filter(Boolean),
  );
}

/**
 * Create an account, unless the email has one (audited, nothing else: the caller answers the same either way). The
 * welcome mail carries the verification link; it is sent after commit by the notification service.
 */
export async function registerUser(
  ctx: AuthContext,
  req: FastifyRequest,
  body: { email: string; password: string },
  preverified: Set<string>,
): Promise<void> {
  const email = normaliseEmail(body.email);
  assertStrongPassword(body.password, email);
  const hash = await ctx.passwords.hash(body.password);
  await withTransaction(ctx.pool, async (c) => {
    const id = await repo.insertUser(c, email, hash);
    if (!id) {
      await audit(c, req, { action: 'auth.register_duplicate', details: { email } });
      return;
    }
    await audit(c, req, { action: 'auth.register', actorId: id, targetId: id });
    if (preverified.has(email)) {
      await repo.verifyEmail(c, id);
      return;
    }
    const t = await ctx.emailTokens.issue(c, id, 'verify_email', ctx.config.EMAIL_VERIFICATION_TTL_SECONDS);
    await emit(
      c,
      UserRegisteredV1,
      {
        userId: id,
        email,
        verificationToken: t.token,
        expiresAt: t.expiresAt.toISOString(),
        context: requestContext(req),
      },
      req,
    );
  });
}

export interface LoginBody {
  email: string;
  password: string;
  totpCode?: string;
  recoveryCode?: string;
  proofOfWork?: string;
}

/** Check the credentials (throttled, then password, then 2FA) and start a session. */
export async function login(ctx: AuthContext, req: FastifyRequest, body: LoginBody) {
  const email = normaliseEmail(body.email);
  const ip = clientIp(req) ?? 'unknown';
  // Counted and judged before the password is touched, so a refused attempt says nothing about it.
  const admitted = await admitLogin(ctx, req, email, ip, body.proofOfWork);
  const user = await repo.findUserByEmail(ctx.pool, email);
  const ok = await ctx.passwords.verify(user?.password_hash ?? null, body.password);
  if (!user || !ok) {
    await loginFailed(ctx, req, email, admitted, user ? 'bad_password' : 'unknown_account', user?.id);
    throw unauthorized('INVALID_CREDENTIALS', 'email or password is wrong');
  }
  if (user.locked_at !== null) {
    ctx.metrics.loginFailures.inc({ reason: 'account_locked' });
    await audit(ctx.pool, req, {
      action: 'auth.login_failed',
      actorId: user.id,
      targetId: user.id,
      details: { reason: 'account_locked' },
    });
    throw new AppError(403, 'ACCOUNT_LOCKED', 'this account is locked; contact support');
  }
  let mfaAt: Date | null = null;
  if (user.totp_enabled_at !== null) {
    if (body.totpCode === undefined && body.recoveryCode === undefined) {
      throw new AppError(
        401,
        'MFA_REQUIRED',
        'two-factor code required: send the login again with totpCode or recoveryCode',
        {
          details: { methods: ['totp', 'recovery_code'] },
        },
      );
    }
    const codeBudget = await admitMfaCode(ctx, user.id, undefined);
    const passed =
      body.totpCode !== undefined
        ? await verifyUserTotp(ctx, ctx.pool, user, body.totpCode)
        : await useRecoveryCode(ctx.pool, user.id, body.recoveryCode!);
    if (passed) await codeBudget.succeeded();
    if (!passed) {
      await loginFailed(ctx, req, email, admitted, 'mfa_invalid', user.id);
      throw unauthorized('INVALID_MFA_CODE', 'the two-factor code is wrong or already used');
    }
    if (body.recoveryCode !== undefined) {
      await audit(ctx.pool, req, { action: 'auth.recovery_code_used', actorId: user.id, targetId: user.id });
    }
    mfaAt = new Date();
  }
  await loginSucceeded(ctx, email, ip);
  if (ctx.passwords.needsRehash(user.password_hash)) {
    await repo.setPasswordHash(ctx.pool, user.id, await ctx.passwords.hash(body.password));
  }
  const pair = await startSession(ctx, user, req, mfaAt);
  await noticeNewDevice(ctx, req, user, pair.sessionId);
  ctx.metrics.logins.inc({ mfa: String(mfaAt !== null) });
  ctx.metrics.tokensIssued.inc({ kind: 'login' });
  await audit(ctx.pool, req, {
    action: 'auth.login',
    actorId: user.id,
    targetId: user.id,
    details: { sessionId: pair.sessionId, mfa: mfaAt !== null },
  });
  const staffWithoutMfa = user.totp_enabled_at === null && user.roles.some((r) => STAFF_ROLES.includes(r));
  return { ...pair, user: userView(user), ...(staffWithoutMfa ? { mfaEnrolmentRequired: true } : {}) };
}

/**
 * A login from an (IP, user agent) pair none of the user's earlier sessions had publishes login.new_device (the mail
 * says when, from where, with what). The very first login of an account is not "new": it is the registration device.
 */
async function noticeNewDevice(ctx: AuthContext, req: FastifyRequest, user: UserRow, sessionId: string): Promise<void> {
  const c = requestContext(req);
  const seen = await earlierDevices(ctx.pool, user.id, sessionId, { ip: c.ip, userAgent: c.userAgent });
  if (!seen.earlier || seen.same) return;
  await emit(ctx.pool, LoginNewDeviceV1, { userId: user.id, email: user.email, sessionId, context: c }, req);
}

async function loginFailed(
  ctx: AuthContext,
  req: FastifyRequest,
  email: string,
  a: Admission,
  reason: string,
  userId?: string,
) {
  ctx.metrics.loginFailures.inc({ reason });
  const locked = a.clientFailures === ctx.accountLimits.lock || a.ipFailures === ctx.ipLimits.lock;
  if (locked) ctx.metrics.securityEvents.inc({ event: 'login_lockout' });
  await audit(ctx.pool, req, {
    action: 'auth.login_failed',
    actorId: userId ?? null,
    targetId: userId ?? null,
    details: {
      email,
      reason,
      accountFailures: a.accountFailures,
      clientFailures: a.clientFailures,
      ipFailures: a.ipFailures,
      ...(locked ? { lockedOut: true } : {}),
    },
  });
}

/** A signed-in user's new password: the current one is re-checked; every other session and every API key is revoked. */
export async function changePassword(
  ctx: AuthContext,
  req: FastifyRequest,
  caller: Caller,
  body: { currentPassword: string; newPassword: string },
): Promise<void> {
  const user = await currentUser(ctx, caller.id);
  await confirmPassword(ctx, req, user, body.currentPassword, {
    action: 'auth.password_change_failed',
    message: 'current password is wrong',
  });
  assertStrongPassword(body.newPassword, user.email);
  const hash = await ctx.passwords.hash(body.newPassword);
  await withTransaction(ctx.pool, async (c) => {
    await repo.setPasswordHash(c, user.id, hash);
    const revoked = await revokeOtherSessions(c, user.id, caller.sessionId ?? null, 'password_changed');
    const keys = await revokeUserApiKeys(c, user.id, 'password_changed');
    await audit(c, req, {
      action: 'auth.password_changed',
      actorId: user.id,
      targetId: user.id,
      details: { otherSessionsRevoked: revoked, apiKeysRevoked: keys },
    });
  });
}

/** Staff search by email (exact, or prefix with a trailing `*`); the search itself is audited. */
export async function searchUsers(
  ctx: AuthContext,
  req: FastifyRequest,
  actorId: string,
  query: { email: string; limit: number },
): Promise<UserRow[]> {
  const q = query.email.trim().toLowerCase();
  const prefix = q.endsWith('*');
  const rows = await repo.searchUsersByEmail(ctx.pool, prefix ? q.slice(0, -1) : q, prefix, query.limit);
  await audit(ctx.pool, req, { action: 'admin.users_search', actorId, details: { email: q } });
  return rows;
}

/** The user an admin action is about, or 404 USER_NOT_FOUND. */
async function targetUser(ctx: AuthContext, id: string): Promise<UserRow> {
  const user = await repo.findUserById(ctx.pool, id);
  if (!user) throw notFound('USER_NOT_FOUND', 'no such user');
  return user;
}

/** Operator lock: logins, refreshes and API keys stop; every session and API key is revoked; the owner is mailed. */
export async function lockAccount(
  ctx: AuthContext,
  req: FastifyRequest,
  actor: Pick<Principal, 'id' | 'roles'>,
  userId: string,
  reason: string | null,
): Promise<UserRow> {
  if (userId === actor.id) throw conflict('CANNOT_LOCK_SELF', 'you cannot lock your own account');
  const u = await targetUser(ctx, userId);
  if (!actor.roles.includes('admin') && u.roles.some((r) => r !== 'user')) {
    throw forbidden('FORBIDDEN', 'support cannot lock staff accounts');
  }
  return withTransaction(ctx.pool, async (c) => {
    const locked = await repo.lockUser(c, u.id, reason);
    const revoked = await revokeUserSessions(c, u.id, 'account_locked');
    const keys = await revokeUserApiKeys(c, u.id, 'account_locked');
    await audit(c, req, {
      action: 'admin.user_locked',
      actorId: actor.id,
      targetId: u.id,
      details: { reason, sessionsRevoked: revoked, apiKeysRevoked: keys },
    });
    if (u.locked_at === null) {
      await emit(c, AccountLockedV1, { userId: u.id, email: u.email, reason, context: requestContext(req) }, req);
    }
    return locked;
  });
}

/** Lift the operator lock and the automatic login lockout. */
export async function unlockAccount(
  ctx: AuthContext,
  req: FastifyRequest,
  actorId: string,
  userId: string,
): Promise<UserRow> {
  const u = await targetUser(ctx, userId);
  return withTransaction(ctx.pool, async (c) => {
    const unlocked = await repo.unlockUser(c, u.id);
    await resetAccountThrottles(c, u.email, u.id);
    await audit(c, req, { action: 'admin.user_unlocked', actorId, targetId: u.id });
    return unlocked;
  });
}

/** Replace a user's roles ('user' is always kept); their sessions are revoked so the new roles apply at once. */
export async function replaceRoles(
  ctx: AuthContext,
  req: FastifyRequest,
  actorId: string,
  userId: string,
  requested: Role[],
): Promise<UserRow> {
  if (userId === actorId) throw conflict('CANNOT_CHANGE_OWN_ROLES', 'another admin must change your roles');
  const u = await targetUser(ctx, userId);
  const roles: Role[] = ['user', ...requested.filter((r) => r !== 'user')];
  return withTransaction(ctx.pool, async (c) => {
    const changed = await repo.setRoles(c, u.id, roles);
    await revokeUserSessions(c, u.id, 'roles_changed');
    await audit(c, req, {
      action: 'admin.roles_changed',
      actorId,
      targetId: u.id,
      details: { from: u.roles, to: roles },
    });
    return changed;
  });
}
