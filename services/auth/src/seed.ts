import type pg from 'pg';
import { audit } from './audit/repository.ts';
import { normaliseEmail } from './context.ts';
import { passwordProblems, type Passwords } from './users/passwords.ts';
import { addAdminRole, markEmailVerified, rolesByEmail, upsertAdmin } from './users/repository.ts';

/**
 * Make sure `email` is an admin. Idempotent: an existing user gets the admin role (its password is left alone);
 * otherwise the user is created with the given password (which must pass the password policy).
 */
export async function ensureAdmin(
  pool: pg.Pool,
  passwords: Passwords,
  emailIn: string,
  password: string,
  via: string,
): Promise<{ id: string; created: boolean }> {
  const email = normaliseEmail(emailIn);
  const row = await rolesByEmail(pool, email);
  if (row) {
    // an operator-seeded account needs no verification link
    await markEmailVerified(pool, row.id);
    if (!row.roles.includes('admin')) {
      await addAdminRole(pool, row.id);
      await audit(pool, undefined, { action: 'admin.seed_promoted', targetId: row.id, details: { via } });
    }
    return { id: row.id, created: false };
  }
  const problems = passwordProblems(password, email);
  if (problems.length) throw new Error(`admin password ${problems.join('; ')}`);
  const id = await upsertAdmin(pool, email, await passwords.hash(password));
  await audit(pool, undefined, { action: 'admin.seed_created', targetId: id, details: { via } });
  return { id, created: true };
}
