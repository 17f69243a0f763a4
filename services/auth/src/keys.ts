import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import type pg from 'pg';
import jwt from 'jsonwebtoken';
import { ACCESS_TOKEN_TYP, type Role } from '@exchange/auth-client';
import type { Sealer } from './crypto.ts';

interface KeyRow {
  kid: string;
  private_key_enc: string;
  public_jwk: Record<string, unknown>;
  created_at: Date;
  retired_at: Date | null;
}

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
      await client.query('SELECT pg_advisory_lock(hashtext($1))', ['auth:signing-keys']);
      try {
        const { rowCount } = await client.query('SELECT 1 FROM auth.signing_keys WHERE retired_at IS NULL');
        if (!rowCount) await insertKey(client, this.sealer);
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtext($1))', ['auth:signing-keys']);
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
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', ['auth:signing-keys']);
      const { rows } = await client.query<{ at: Date }>(`SELECT clock_timestamp() + make_interval(secs => $1) AS at`, [
        delay,
      ]);
      const at = rows[0]!.at;
      // Keys not yet active are superseded too (two quick rotations: only the newest will sign).
      await client.query('UPDATE auth.signing_keys SET retired_at = $1 WHERE retired_at IS NULL OR retired_at > $1', [
        at,
      ]);
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
    const { rows } = await this.pool.query<KeyRow & { active: boolean; next_change: Date | null }>(
      `SELECT kid, private_key_enc, public_jwk, created_at, retired_at,
              activates_at <= clock_timestamp() AND (retired_at IS NULL OR retired_at > clock_timestamp()) AS active,
              CASE WHEN activates_at > clock_timestamp() THEN activates_at END AS next_change
         FROM auth.signing_keys
        WHERE revoked_at IS NULL
          AND (retired_at IS NULL OR retired_at > clock_timestamp() - make_interval(secs => $1))
        ORDER BY activates_at DESC`,
      [keepSeconds],
    );
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
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', ['auth:signing-keys']);
      const { rows: hit } = await client.query<{ activates_at: Date; pending: boolean }>(
        `UPDATE auth.signing_keys
            SET revoked_at = clock_timestamp(), retired_at = least(coalesce(retired_at, clock_timestamp()), clock_timestamp())
          WHERE kid = $1 AND revoked_at IS NULL
          RETURNING activates_at, activates_at > clock_timestamp() AS pending`,
        [kid],
      );
      if (!hit[0]) {
        await client.query('ROLLBACK');
        throw Object.assign(new Error(`no unrevoked signing key ${kid}`), { name: 'SigningKeyNotFoundError' });
      }
      // A rotated-in key revoked before it signed: the key it was to replace keeps signing instead of retiring.
      if (hit[0].pending) {
        await client.query(
          'UPDATE auth.signing_keys SET retired_at = NULL WHERE revoked_at IS NULL AND retired_at = $1',
          [hit[0].activates_at],
        );
      }
      const { rows } = await client.query<{ kid: string }>(
        `SELECT kid FROM auth.signing_keys
          WHERE revoked_at IS NULL AND activates_at <= clock_timestamp() AND retired_at IS NULL`,
      );
      let activeKid = rows[0]?.kid;
      const replaced = activeKid === undefined;
      if (replaced) {
        // A pending successor (a rotation in its activation delay) is superseded too: the new key signs now.
        await client.query(
          'UPDATE auth.signing_keys SET retired_at = clock_timestamp() WHERE retired_at IS NULL AND revoked_at IS NULL',
        );
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
    const { rows } = await this.pool.query<{ kid: string }>(
      `SELECT kid FROM auth.signing_keys WHERE revoked_at > clock_timestamp() - make_interval(secs => $1)`,
      [this.opts.accessTtlSeconds + 300],
    );
    return rows.map((r) => r.kid);
  }

  /** Every key still published or signing, and the recently revoked ones, for operators. */
  async list(): Promise<
    Array<{ kid: string; createdAt: Date; activatesAt: Date; retiredAt: Date | null; revokedAt: Date | null }>
  > {
    const { rows } = await this.pool.query<{
      kid: string;
      created_at: Date;
      activates_at: Date;
      retired_at: Date | null;
      revoked_at: Date | null;
    }>(
      `SELECT kid, created_at, activates_at, retired_at, revoked_at FROM auth.signing_keys
        WHERE coalesce(revoked_at, retired_at, 'infinity') > clock_timestamp() - make_interval(secs => $1)
        ORDER BY activates_at DESC`,
      [this.opts.accessTtlSeconds + 300],
    );
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
  const kid = randomBytes(12).toString('base64url');
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
  await client.query(
    'INSERT INTO auth.signing_keys (kid, private_key_enc, public_jwk, activates_at) VALUES ($1, $2, $3, coalesce($4, clock_timestamp()))',
    [kid, sealer.seal(pem, kid), JSON.stringify(jwk), activatesAt ?? null],
  );
  return kid;
}

function jwkToPem(jwk: Record<string, unknown>): string {
  const { kty, n, e } = jwk as { kty: string; n: string; e: string };
  return createPublicKey({ key: { kty, n, e }, format: 'jwk' }).export({ format: 'pem', type: 'spki' }).toString();
}
