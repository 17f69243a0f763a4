import type { FastifyRequest } from 'fastify';
import { unauthorized } from '@exchange/platform';
import { audit } from './audit.ts';
import type { Ctx, UserRow } from './context.ts';
import { loginBlocked } from './throttle.ts';

/**
 * Re-checks a signed-in user's password before a sensitive change (2FA setup, password change). It shares the
 * login throttle of the account, so a stolen access token cannot be used to brute-force the password here instead.
 */
export async function confirmPassword(
  ctx: Ctx,
  req: FastifyRequest,
  user: UserRow,
  password: string,
  failure: { action: string; message: string },
): Promise<void> {
  const s = await ctx.throttle.check('account', user.email);
  if (s.blocked) throw loginBlocked(s, 'too many failed attempts');
  if (!(await ctx.passwords.verify(user.password_hash, password))) {
    await ctx.throttle.fail('account', user.email, ctx.accountLimits);
    ctx.metrics.loginFailures.inc({ reason: 'bad_password' });
    await audit(ctx.pool, req, { action: failure.action, actorId: user.id, targetId: user.id });
    throw unauthorized('INVALID_CREDENTIALS', failure.message);
  }
}
