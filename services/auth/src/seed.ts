import type pg from 'pg';
import { audit } from './audit.ts';
import { normaliseEmail } from './context.ts';
import { passwordProblems, type Passwords } from './passwords.ts';

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
  const existing = await pool.query<{ id: string; roles: string[] }>(
    'SELECT id, roles FROM auth.users WHERE email = $1',
    [email],
  );
  const row = existing.rows[0];
  if (row) {
    // an operator-seeded account needs no verification link
    await pool.query(
      'UPDATE auth.users SET email_verified_at = coalesce(email_verified_at, now()) WHERE id = $1 AND email_verified_at IS NULL',
      [row.id],
    );
    if (!row.roles.includes('admin')) {
      await pool.query(`UPDATE auth.users SET roles = array_append(roles, 'admin'), updated_at = now() WHERE id = $1`, [
        row.id,
      ]);
      await audit(pool, undefined, { action: 'admin.seed_promoted', targetId: row.id, details: { via } });
    }
    return { id: row.id, created: false };
  }
  const problems = passwordProblems(password, email);
  if (problems.length) throw new Error(`admin password ${problems.join('; ')}`);
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO auth.users (email, password_hash, roles, email_verified_at) VALUES ($1, $2, ARRAY['user','admin'], now())
     ON CONFLICT (email) DO UPDATE SET email = EXCLUDED.email RETURNING id`,
    [email, await passwords.hash(password)],
  );
  await audit(pool, undefined, { action: 'admin.seed_created', targetId: rows[0]!.id, details: { via } });
  return { id: rows[0]!.id, created: true };
}
