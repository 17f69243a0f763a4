import { hash, parseOptions, verify, type Algorithm } from '@node-rs/argon2';
import { AppError } from '@exchange/platform';

export interface Argon2Params {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

const ARGON2ID = 2 as Algorithm;

/** argon2id (RFC 9106) with the configured cost; defaults follow OWASP: m = 19 MiB, t = 2, p = 1. */
export class Passwords {
  private readonly params: Argon2Params;
  private dummy: Promise<string>;
  constructor(params: Argon2Params) {
    this.params = params;
    // Verified against when the account does not exist, so unknown emails cost the same as wrong passwords.
    this.dummy = this.hash('dummy-password-for-constant-time-login');
  }
  hash(password: string): Promise<string> {
    return hash(password, { algorithm: ARGON2ID, outputLen: 32, ...this.params });
  }
  async verify(stored: string | null, password: string): Promise<boolean> {
    const h = stored ?? (await this.dummy);
    try {
      const ok = await verify(h, password);
      return stored !== null && ok;
    } catch {
      return false;
    }
  }
  /** True when the stored hash used other parameters (rehashed on the next successful login). */
  needsRehash(stored: string): boolean {
    try {
      const p = parseOptions(stored);
      return (
        p.memoryCost !== this.params.memoryCost ||
        p.timeCost !== this.params.timeCost ||
        p.parallelism !== this.params.parallelism
      );
    } catch {
      return true;
    }
  }
}

const COMMON = new Set([
  'password1234',
  'passwordpassword',
  '123456789012',
  'qwertyuiopas',
  'letmeinletmein',
  'iloveyou1234',
  'administrator',
  'welcome12345',
  'changeme1234',
  'bitcoinbitcoin',
]);

/**
 * NIST SP 800-63B style: length matters, composition rules do not. 12–128 characters, not a well-known password,
 * not mostly one character, not containing the email's local part.
 */
export function passwordProblems(password: string, email: string): string[] {
  const problems: string[] = [];
  const chars = [...password];
  if (chars.length < 12) problems.push('must be at least 12 characters');
  if (chars.length > 128) problems.push('must be at most 128 characters');
  if (COMMON.has(password.toLowerCase())) problems.push('is a commonly used password');
  if (new Set(chars).size < 5) problems.push('must contain at least 5 different characters');
  const local = email.split('@')[0] ?? '';
  if (local.length >= 4 && password.toLowerCase().includes(local.toLowerCase()))
    problems.push('must not contain your email');
  return problems;
}

/** 400 WEAK_PASSWORD listing every problem of `password` (see passwordProblems), or nothing. */
export function assertStrongPassword(password: string, email: string): void {
  const problems = passwordProblems(password, email);
  if (problems.length)
    throw new AppError(400, 'WEAK_PASSWORD', `password ${problems.join('; ')}`, { details: { problems } });
}
