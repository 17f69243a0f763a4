import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type pg from 'pg';
import jwt from 'jsonwebtoken';
import { notFound } from '@exchange/platform';
import { ACCESS_TOKEN_TYP, type Role } from '@exchange/auth-client';
import { audit } from '../audit/repository.ts';
import type { AuthContext } from '../context.ts';
import type { Sealer } from '../crypto.ts';
import * as repo from './repository.ts';

export interface AccessClaims {
  sub: string;
  roles: Role[];
  sid: string;
  mfa: boolean;
  mfaAt?: number;
  /** Email verified (claim `ev`): unverified users cannot withdraw. */
  emailVerified: boolean;
}

export interface KeyStoreOptions {
  issuer: string;
  audience: string;
  accessTtlSeconds: number;
  /** How often replicas re-read the key table (default 5 s: a revoked key stops verifying on every replica soon). */
  refreshMs?: number;
  /** Delay between publishing a rotated-in key and signing with it (default 60 s). */
  activationDelaySeconds?: number;
}

/**
 * RS256 signing keys, stored in auth.signing_keys with the private key sealed (AES-256-GCM). The active key is the
 * newest one whose `activates_at` has passed and that is not retired. `rotate()` publishes a new key at once and
 * activates it after a delay (publish before use); the previous key retires at that moment and stays in the JWKS for
 * the access-token lifetime (+ margin), so tokens it signed keep verifying until they expire. Replicas re-read the
 * table every `refreshMs` and exactly when a pending key activates, so a rotation made by the CLI or another replica
 * is picked up without a restart.
 */
export class KeyStore {
  private readonly pool: pg.Pool;
  private readonly sealer: Sealer;
  private readonly opts: KeyStoreOptions;
  private active: { kid: string; privateKey: string } | undefined;
  private jwks: Array<Record<string, unknown>> = [];
  private publicPem = new Map<string, string>();
  private loadedAt = 0;
  private nextChangeAt = Infinity;

  constructor(pool: pg.Pool, sealer: Sealer, opts: KeyStoreOptions) {
    this.pool = pool;
    this.sealer = sealer;
    this.opts = opts;
  }

  /** Create the first key when there is none (host mode: generated on first start). Safe with several replicas. */
  async ensureKey(): Promise<void> {
    const client = await this.pool.connect();
    try {
      await repo.lockKeys(client);
      try {
        if (!(await repo.hasUnretiredKey(client))) await insertKey(client, this.sealer);
      } finally {
        await repo.unlockKeys(client);
      }
    } finally {
      client.release();
    }
    await this.load();
  }

  /**
   * Add a key. It is published in the JWKS at once and starts signing after `activationDelaySeconds` (default 60 s,
   * twice the replicas' reload interval), when the current key retires: by then every replica serves it in its JWKS,
   * so no verifier ever meets a kid it cannot fetch. `immediately` (a compromised key) skips the delay.
   */
  async rotate(opts: { immediately?: boolean } = {}): Promise<{ kid: string; activatesAt: Date }> {
    const delay = opts.immediately ? 0 : (this.opts.activationDelaySeconds ?? 60);
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await repo.lockKeysForTransaction(client);
      const at = await repo.databaseClockPlus(client, delay);
      // Keys not yet active are superseded too (two quick rotations: only the newest will sign).
      await repo.retireKeysFrom(client, at);
      const kid = await insertKey(client, this.sealer, at);
      await client.query('COMMIT');
      await this.load();
      return { kid, activatesAt: at };
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      client.release();
    }
  }

  private async load(): Promise<void> {
    const keepSeconds = this.opts.accessTtlSeconds + 300;
    const rows = await repo.publishedKeys(this.pool, keepSeconds);
    const current = rows.find((r) => r.active);
    if (!current)
      this.active = undefined; // e.g. the signing key was just revoked: never sign with it again
    else if (current.kid !== this.active?.kid) {
      this.active = { kid: current.kid, privateKey: this.sealer.open(current.private_key_enc, current.kid) };
    }
    this.jwks = rows.map((r) => r.public_jwk);
    this.publicPem = new Map(rows.map((r) => [r.kid, jwkToPem(r.public_jwk)]));
    this.loadedAt = Date.now();
    // Reload exactly when a pending key activates, so the switch is not delayed by the reload interval.
    const next = rows.map((r) => r.next_change?.getTime()).filter((t): t is number => t !== undefined);
    this.nextChangeAt = next.length ? Math.min(...next) : Infinity;
  }

  private async fresh(): Promise<void> {
    if (Date.now() - this.loadedAt > (this.opts.refreshMs ?? 5_000) || Date.now() >= this.nextChangeAt)
      await this.load();
  }

  /**
   * Emergency revocation of a compromised key: it leaves the JWKS and this store at once (other replicas within
   * `refreshMs`), and every verifier refuses its tokens within the revocation poll (`revokedKids` of
   * /internal/sessions/revoked) instead of trusting them until they expire. When it was the key signing (or would
   * have been), a new key takes over immediately: logins keep working, everyone else logs in again.
   */
  async revoke(kid: string): Promise<{ kid: string; activeKid: string; replaced: boolean }> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await repo.lockKeysForTransaction(client);
      const hit = await repo.markKeyRevoked(client, kid);
      if (!hit) {
        await client.query('ROLLBACK');
        throw Object.assign(new Error(`no unrevoked signing key ${kid}`), { name: 'SigningKeyNotFoundError' });
      }
      // A rotated-in key revoked before it signed: the key it was to replace keeps signing instead of retiring.
      if (hit.pending) await repo.unretireKeysRetiredAt(client, hit.activates_at);
      let activeKid = await repo.signingKid(client);
      const replaced = activeKid === undefined;
      if (replaced) {
        // A pending successor (a rotation in its activation delay) is superseded too: the new key signs now.
        await repo.retireUnrevokedKeys(client);
        activeKid = await insertKey(client, this.sealer);
      }
      await client.query('COMMIT');
      await this.load();
      return { kid, activeKid: activeKid!, replaced };
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      client.release();
    }
  }

  /** Keys revoked while tokens they signed could still be unexpired: every verifier refuses these kids. */
  async revokedKids(): Promise<string[]> {
    return repo.kidsRevokedWithin(this.pool, this.opts.accessTtlSeconds + 300);
  }

  /** Every key still published or signing, and the recently revoked ones, for operators. */
  async list(): Promise<
    Array<{ kid: string; createdAt: Date; activatesAt: Date; retiredAt: Date | null; revokedAt: Date | null }>
  > {
    const rows = await repo.keysWithin(this.pool, this.opts.accessTtlSeconds + 300);
    return rows.map((r) => ({
      kid: r.kid,
      createdAt: r.created_at,
      activatesAt: r.activates_at,
      retiredAt: r.retired_at,
      revokedAt: r.revoked_at,
    }));
  }

  /** The kid currently signing (after a reload if due). */
  async activeKid(): Promise<string | undefined> {
    await this.fresh();
    return this.active?.kid;
  }

  async publicJwks(): Promise<{ keys: Array<Record<string, unknown>> }> {
    await this.fresh();
    return { keys: this.jwks };
  }

  /** Public key (PEM) by kid, for verifying tokens inside this service; unknown kids trigger one reload. */
  async publicKey(kid: string): Promise<string> {
    await this.fresh();
    let pem = this.publicPem.get(kid);
    if (!pem && Date.now() - this.loadedAt > 1000) {
      await this.load();
      pem = this.publicPem.get(kid);
    }
    if (!pem) throw Object.assign(new Error(`unknown kid ${kid}`), { name: 'SigningKeyNotFoundError' });
    return pem;
  }

  async signAccessToken(c: AccessClaims): Promise<{ token: string; expiresIn: number; jti: string }> {
    await this.fresh();
    if (!this.active) await this.load();
    const key = this.active;
    if (!key) throw new Error('no active signing key (run ensureKey)');
    const jti = randomBytes(16).toString('hex');
    const payload: Record<string, unknown> = { roles: c.roles, sid: c.sid, mfa: c.mfa, ev: c.emailVerified };
    if (c.mfaAt !== undefined) payload.mfa_at = c.mfaAt;
    const token = jwt.sign(payload, key.privateKey, {
      algorithm: 'RS256',
      header: { alg: 'RS256', typ: ACCESS_TOKEN_TYP, kid: key.kid },
      issuer: this.opts.issuer,
      audience: this.opts.audience,
      subject: c.sub,
      jwtid: jti,
      expiresIn: this.opts.accessTtlSeconds,
    });
    return { token, expiresIn: this.opts.accessTtlSeconds, jti };
  }
}

async function insertKey(client: pg.PoolClient, sealer: Sealer, activatesAt?: Date): Promise<string> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  // hex, not base64url: a kid is typed into `cli.ts revoke-key --kid <kid>` in an emergency, and one starting with
  // '-' was refused there as a missing option value (1 key in 64)
  const kid = randomBytes(12).toString('hex');
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
  await repo.insertKey(client, [kid, sealer.seal(pem, kid), JSON.stringify(jwk), activatesAt ?? null]);
  return kid;
}

function jwkToPem(jwk: Record<string, unknown>): string {
  const { kty, n, e } = jwk as { kty: string; n: string; e: string };
  return createPublicKey({ key: { kty, n, e }, format: 'jwk' }).export({ format: 'pem', type: 'spki' }).toString();
}

/** An operator's emergency revocation of a signing key (KeyStore.revoke), audited with its reason. */
export async function revokeSigningKey(
  ctx: AuthContext,
  req: FastifyRequest,
  actorId: string,
  kid: string,
  reason: string,
): Promise<{ kid: string; activeKid: string; replaced: boolean }> {
  let r;
  try {
    r = await ctx.keys.revoke(kid);
  } catch (e) {
    if ((e as Error).name === 'SigningKeyNotFoundError')
      throw notFound('SIGNING_KEY_NOT_FOUND', 'no such signing key, or it is revoked already');
    throw e;
  }
  await audit(ctx.pool, req, {
    action: 'admin.signing_key_revoked',
    actorId,
    details: { ...r, reason },
  });
  return r;
}
