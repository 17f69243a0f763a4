import type { FastifyRequest } from 'fastify';
import { unauthorized } from '@exchange/platform';
import { audit, clientIp } from '../audit/repository.ts';
import type { AuthContext, UserRow } from '../context.ts';
import { admitPasswordRecheck } from '../login-security/login-guard.ts';

/**
 * Re-checks a signed-in user's password before a sensitive change (2FA setup, password change). It shares the
 * login throttle of the (account, client) pair, so a stolen access token cannot be used to brute-force the password here instead.
 */
export async function confirmPassword(
  ctx: AuthContext,
  req: FastifyRequest,
  user: UserRow,
  password: string,
  failure: { action: string; message: string },
): Promise<void> {
  const attempt = await admitPasswordRecheck(ctx, user.email, clientIp(req) ?? 'unknown');
  if (!(await ctx.passwords.verify(user.password_hash, password))) {
    ctx.metrics.loginFailures.inc({ reason: 'bad_password' });
    await audit(ctx.pool, req, { action: failure.action, actorId: user.id, targetId: user.id });
    throw unauthorized('INVALID_CREDENTIALS', failure.message);
  }
  await attempt.succeeded();
}
