import { randomInt } from 'node:crypto';
import { generateSecret, generateURI, verify } from 'otplib';
import type { Queryable } from './audit.ts';
import type { Ctx, UserRow } from './context.ts';
import { sha256hex } from './crypto.ts';

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
export async function verifyUserTotp(ctx: Ctx, db: Queryable, user: UserRow, code: string): Promise<boolean> {
  if (!user.totp_secret_enc) return false;
  const secret = ctx.sealer.open(user.totp_secret_enc, totpAad(user.id));
  const last = user.totp_last_step === null ? undefined : Number(user.totp_last_step);
  const step = await checkTotp(secret, code, last);
  if (step === undefined) return false;
  const r = await db.query(
    'UPDATE auth.users SET totp_last_step = $2 WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)',
    [user.id, step],
  );
  return r.rowCount === 1;
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

/** Use a recovery code (single use: the UPDATE marks it, so a second use finds nothing). */
export async function useRecoveryCode(db: Queryable, userId: string, code: string): Promise<boolean> {
  const r = await db.query(
    `UPDATE auth.recovery_codes SET used_at = now()
      WHERE id = (SELECT id FROM auth.recovery_codes WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL LIMIT 1 FOR UPDATE)`,
    [userId, recoveryCodeHash(code)],
  );
  return r.rowCount === 1;
}
