/** The SQL of API keys (auth.api_keys) and of their used request signatures (auth.api_key_signatures). */
import type { Queryable } from '../audit/repository.ts';

export type ApiKeyScope = 'read' | 'trade' | 'withdraw';

export interface KeyRow {
  id: string;
  key_prefix: string;
  label: string;
  scopes: ApiKeyScope[];
  created_at: Date;
  last_used_at: Date | null;
  expires_at: Date | null;
  allowed_ips: string[] | null;
}

const KEY_COLUMNS =
  'id, key_prefix, label, scopes, created_at, last_used_at, expires_at, allowed_ips::text[] AS allowed_ips';

/** A key as the request verifier needs it, with its owner's state. */
export interface VerifiableKeyRow {
  id: string;
  user_id: string;
  secret_enc: string;
  scopes: ApiKeyScope[];
  locked: boolean;
  mfa: boolean;
  verified: boolean;
  /** last_used_at is older than a minute (or unset): worth recording again. */
  stale: boolean;
  ip_allowed: boolean;
}

export async function activeKeysOf(db: Queryable, userId: string): Promise<KeyRow[]> {
  const { rows } = await db.query<KeyRow>(
    `SELECT ${KEY_COLUMNS} FROM auth.api_keys
      WHERE user_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
      ORDER BY created_at DESC`,
    [userId],
  );
  return rows;
}

/** Keys not revoked (expired ones included: they count against the limit until revoked). */
export async function countUnrevokedKeys(db: Queryable, userId: string): Promise<number> {
  const { rows } = await db.query<{ n: string }>(
    'SELECT count(*) AS n FROM auth.api_keys WHERE user_id = $1 AND revoked_at IS NULL',
    [userId],
  );
  return Number(rows[0]!.n);
}

export async function insertKey(
  db: Queryable,
  k: {
    userId: string;
    keyIdHash: string;
    keyPrefix: string;
    secretEnc: string;
    scopes: ApiKeyScope[];
    label: string;
    allowedIps: string[] | null;
    expiresAt: string | null;
  },
): Promise<KeyRow> {
  const { rows } = await db.query<KeyRow>(
    `INSERT INTO auth.api_keys (user_id, key_id_hash, key_prefix, secret_enc, scopes, label, allowed_ips, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7::cidr[], $8) RETURNING ${KEY_COLUMNS}`,
    [k.userId, k.keyIdHash, k.keyPrefix, k.secretEnc, k.scopes, k.label, k.allowedIps, k.expiresAt],
  );
  return rows[0]!;
}

/** The owner revokes one of their keys; false when it is not an active key of theirs. */
export async function revokeKey(db: Queryable, id: string, userId: string): Promise<boolean> {
  const r = await db.query(
    `UPDATE auth.api_keys SET revoked_at = now(), revoked_reason = 'user' WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL`,
    [id, userId],
  );
  return r.rowCount === 1;
}

/**
 * Every active key of a user stops working (password change, 2FA reset, operator lock): a key must not outlive the
 * credentials that created it.
 */
export async function revokeUserApiKeys(db: Queryable, userId: string, reason: string): Promise<number> {
  const r = await db.query(
    `UPDATE auth.api_keys SET revoked_at = now(), revoked_reason = $2 WHERE user_id = $1 AND revoked_at IS NULL`,
    [userId, reason],
  );
  return r.rowCount ?? 0;
}

/** The usable key (not revoked, not expired) with this key id hash, judged for a request from `clientIp`. */
export async function findVerifiableKey(
  db: Queryable,
  keyIdHash: string,
  clientIp: string | null,
): Promise<VerifiableKeyRow | undefined> {
  const { rows } = await db.query<VerifiableKeyRow>(
    `SELECT k.id, k.user_id, k.secret_enc, k.scopes, u.locked_at IS NOT NULL AS locked, u.totp_enabled_at IS NOT NULL AS mfa,
            u.email_verified_at IS NOT NULL AS verified,
            (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute') AS stale,
            (k.allowed_ips IS NULL OR
              (auth.inet_or_null($2) IS NOT NULL AND auth.inet_or_null($2) <<= ANY (k.allowed_ips))) AS ip_allowed
       FROM auth.api_keys k JOIN auth.users u ON u.id = k.user_id
      WHERE k.key_id_hash = $1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())`,
    [keyIdHash, clientIp],
  );
  return rows[0];
}

/** Record a signature as used until `ttlSeconds` from now; false when it was used already (a replay). */
export async function claimSignature(db: Queryable, signatureHash: string, ttlSeconds: number): Promise<boolean> {
  const r = await db.query(
    `INSERT INTO auth.api_key_signatures (signature_hash, expires_at)
     VALUES ($1, now() + make_interval(secs => $2)) ON CONFLICT DO NOTHING`,
    [signatureHash, ttlSeconds],
  );
  return r.rowCount === 1;
}

export async function touchKey(db: Queryable, id: string): Promise<void> {
  await db.query('UPDATE auth.api_keys SET last_used_at = now() WHERE id = $1', [id]);
}

/** Replay-guard entries of signed API requests past their expiry (housekeeping). */
export async function deleteExpiredSignatures(db: Queryable): Promise<void> {
  await db.query('DELETE FROM auth.api_key_signatures WHERE expires_at < now()');
}
