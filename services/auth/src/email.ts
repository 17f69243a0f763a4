/**
 * Emailed tokens (verification, password reset) and the domain events auth publishes through its outbox.
 *
 * A token is `<32 random bytes, base64url>.<HMAC-SHA256 tag, base64url>`; the tag binds it to its purpose with a key
 * derived from API_KEY_ENCRYPTION_KEY (HKDF, label `exchange-email-token`). An altered token fails the tag check before
 * the database is asked; a well-formed one is looked up by its SHA-256 (the only thing stored) and spent atomically
 * (`used_at`), so it works once, and only until `expires_at`.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { MessageContract } from '@exchange/contracts';
import type { RequestContext } from '@exchange/contracts/auth';
import { enqueue, EVENTS_EXCHANGE, type Queryable } from '@exchange/messaging';
import type { Static, TSchema } from '@sinclair/typebox';
import { clientIp } from './audit.ts';
import { randomToken, sha256hex } from './crypto.ts';

export type TokenPurpose = 'verify_email' | 'reset_password';

export const PRODUCER = 'auth';

export class EmailTokens {
  private readonly key: Buffer;
  constructor(base64Key: string) {
    this.key = Buffer.from(hkdfSync('sha256', Buffer.from(base64Key, 'base64'), '', 'exchange-email-token', 32));
  }

  private tag(purpose: TokenPurpose, body: string): string {
    return createHmac('sha256', this.key).update(`${purpose}:${body}`).digest('base64url');
  }

  /** A new token for `purpose`; returns the token (for the mail) and its hash (for the table). */
  mint(purpose: TokenPurpose): { token: string; hash: string } {
    const body = randomToken(32);
    const token = `${body}.${this.tag(purpose, body)}`;
    return { token, hash: sha256hex(token) };
  }

  /** Whether the token carries a valid tag for `purpose` (constant time). */
  wellFormed(purpose: TokenPurpose, token: string): boolean {
    const m = /^([A-Za-z0-9_-]{43})\.([A-Za-z0-9_-]{43})$/.exec(token);
    if (!m) return false;
    const expected = Buffer.from(this.tag(purpose, m[1]!));
    const given = Buffer.from(m[2]!);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }

  /**
   * Store a fresh token for the user (earlier unused tokens of the same purpose are spent: only the newest link
   * works). Run it in the transaction that publishes the mail event.
   */
  async issue(
    db: Queryable,
    userId: string,
    purpose: TokenPurpose,
    ttlSeconds: number,
  ): Promise<{ token: string; expiresAt: Date }> {
    await db.query(
      `UPDATE auth.email_tokens SET used_at = now() WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL`,
      [userId, purpose],
    );
    const { token, hash } = this.mint(purpose);
    const { rows } = await db.query<{ expires_at: Date }>(
      `INSERT INTO auth.email_tokens (user_id, purpose, token_hash, expires_at)
       VALUES ($1, $2, $3, now() + make_interval(secs => $4)) RETURNING expires_at`,
      [userId, purpose, hash, ttlSeconds],
    );
    return { token, expiresAt: rows[0]!.expires_at };
  }

  /**
   * Spend a token: `{ userId }`, or the refusal. Spending is atomic (`WHERE used_at IS NULL`), so of two concurrent
   * uses one wins. An expired token is spent too (it can never work again) and reported as TOKEN_EXPIRED.
   */
  async consume(
    db: Queryable,
    purpose: TokenPurpose,
    token: string,
  ): Promise<{ userId: string } | { error: 'INVALID_TOKEN' | 'TOKEN_EXPIRED' }> {
    if (!this.wellFormed(purpose, token)) return { error: 'INVALID_TOKEN' };
    const { rows } = await db.query<{ user_id: string; expired: boolean }>(
      `UPDATE auth.email_tokens SET used_at = now()
        WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL
        RETURNING user_id, expires_at <= now() AS expired`,
      [sha256hex(token), purpose],
    );
    const r = rows[0];
    if (!r) return { error: 'INVALID_TOKEN' };
    if (r.expired) return { error: 'TOKEN_EXPIRED' };
    return { userId: r.user_id };
  }
}

/** IP and user agent of the request, for the "was this you?" lines of a mail. */
export function requestContext(req: FastifyRequest | undefined): RequestContext {
  if (!req) return { ip: null, userAgent: null };
  return { ip: clientIp(req), userAgent: (req.headers['user-agent'] ?? '').slice(0, 512) || null };
}

/**
 * Write an auth event to the outbox in the caller's transaction (or on the pool, as its own statement, when the
 * state change it reports was a single statement already committed). Routing key = event type.
 */
export async function emit<T extends TSchema>(
  db: Queryable,
  contract: MessageContract<T>,
  payload: Static<T>,
  req?: FastifyRequest,
): Promise<void> {
  await enqueue(db, {
    schema: 'auth',
    exchange: EVENTS_EXCHANGE,
    routingKey: contract.type,
    message: contract.create(payload, { producer: PRODUCER, ...(req ? { correlationId: req.id } : {}) }),
  });
}
