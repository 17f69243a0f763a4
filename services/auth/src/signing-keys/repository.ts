/**
 * The SQL of auth.signing_keys and of the advisory lock that serialises changes to them across replicas. The
 * transactions (BEGIN/COMMIT around a rotation or a revocation) are in service.ts.
 */
import type pg from 'pg';
import type { Queryable } from '../audit/repository.ts';

export interface KeyRow {
  kid: string;
  private_key_enc: string;
  public_jwk: Record<string, unknown>;
  created_at: Date;
  retired_at: Date | null;
}

/** Session-level lock on the signing keys (first-key creation), on the connection `client`. */
export async function lockKeys(client: pg.PoolClient): Promise<void> {
  await client.query('SELECT pg_advisory_lock(hashtext($1))', ['auth:signing-keys']);
}

export async function unlockKeys(client: pg.PoolClient): Promise<void> {
  await client.query('SELECT pg_advisory_unlock(hashtext($1))', ['auth:signing-keys']);
}

/** Transaction-level lock on the signing keys (rotation, revocation). */
export async function lockKeysForTransaction(client: pg.PoolClient): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', ['auth:signing-keys']);
}

export async function hasUnretiredKey(db: Queryable): Promise<boolean> {
  const { rowCount } = await db.query('SELECT 1 FROM auth.signing_keys WHERE retired_at IS NULL');
  return !!rowCount;
}

/** The database clock plus `seconds`. */
export async function databaseClockPlus(db: Queryable, seconds: number): Promise<Date> {
  const { rows } = await db.query<{ at: Date }>(`SELECT clock_timestamp() + make_interval(secs => $1) AS at`, [
    seconds,
  ]);
  return rows[0]!.at;
}

/** Keys unretired or retiring after `at` retire at `at`. */
export async function retireKeysFrom(db: Queryable, at: Date): Promise<void> {
  await db.query('UPDATE auth.signing_keys SET retired_at = $1 WHERE retired_at IS NULL OR retired_at > $1', [at]);
}

/** kid, sealed private key, public JWK (JSON), activation time (null: now). */
export async function insertKey(
  db: Queryable,
  values: [kid: string, privateKeyEnc: string, publicJwk: string, activatesAt: Date | null],
): Promise<void> {
  await db.query(
    'INSERT INTO auth.signing_keys (kid, private_key_enc, public_jwk, activates_at) VALUES ($1, $2, $3, coalesce($4, clock_timestamp()))',
    values,
  );
}

/** The unrevoked keys published now (signing, pending, or retired less than `keepSeconds` ago), newest first. */
export async function publishedKeys(
  db: Queryable,
  keepSeconds: number,
): Promise<Array<KeyRow & { active: boolean; next_change: Date | null }>> {
  const { rows } = await db.query<KeyRow & { active: boolean; next_change: Date | null }>(
    `SELECT kid, private_key_enc, public_jwk, created_at, retired_at,
              activates_at <= clock_timestamp() AND (retired_at IS NULL OR retired_at > clock_timestamp()) AS active,
              CASE WHEN activates_at > clock_timestamp() THEN activates_at END AS next_change
         FROM auth.signing_keys
        WHERE revoked_at IS NULL
          AND (retired_at IS NULL OR retired_at > clock_timestamp() - make_interval(secs => $1))
        ORDER BY activates_at DESC`,
    [keepSeconds],
  );
  return rows;
}

/** Revoke (and retire) an unrevoked key; when it activates and whether it was still pending; undefined if none. */
export async function markKeyRevoked(
  db: Queryable,
  kid: string,
): Promise<{ activates_at: Date; pending: boolean } | undefined> {
  const { rows: hit } = await db.query<{ activates_at: Date; pending: boolean }>(
    `UPDATE auth.signing_keys
            SET revoked_at = clock_timestamp(), retired_at = least(coalesce(retired_at, clock_timestamp()), clock_timestamp())
          WHERE kid = $1 AND revoked_at IS NULL
          RETURNING activates_at, activates_at > clock_timestamp() AS pending`,
    [kid],
  );
  return hit[0];
}

/** Unrevoked keys set to retire at `at` (when a revoked pending key was to replace them) stay on. */
export async function unretireKeysRetiredAt(db: Queryable, at: Date): Promise<void> {
  await db.query('UPDATE auth.signing_keys SET retired_at = NULL WHERE revoked_at IS NULL AND retired_at = $1', [at]);
}

/** The kid of the key signing now, if one is. */
export async function signingKid(db: Queryable): Promise<string | undefined> {
  const { rows } = await db.query<{ kid: string }>(
    `SELECT kid FROM auth.signing_keys
          WHERE revoked_at IS NULL AND activates_at <= clock_timestamp() AND retired_at IS NULL`,
  );
  return rows[0]?.kid;
}

/** Every unrevoked key not yet retired retires now. */
export async function retireUnrevokedKeys(db: Queryable): Promise<void> {
  await db.query(
    'UPDATE auth.signing_keys SET retired_at = clock_timestamp() WHERE retired_at IS NULL AND revoked_at IS NULL',
  );
}

/** Keys revoked less than `seconds` ago. */
export async function kidsRevokedWithin(db: Queryable, seconds: number): Promise<string[]> {
  const { rows } = await db.query<{ kid: string }>(
    `SELECT kid FROM auth.signing_keys WHERE revoked_at > clock_timestamp() - make_interval(secs => $1)`,
    [seconds],
  );
  return rows.map((r) => r.kid);
}

/** Keys published, signing, or revoked/retired less than `seconds` ago, newest first. */
export async function keysWithin(
  db: Queryable,
  seconds: number,
): Promise<
  Array<{ kid: string; created_at: Date; activates_at: Date; retired_at: Date | null; revoked_at: Date | null }>
> {
  const { rows } = await db.query<{
    kid: string;
    created_at: Date;
    activates_at: Date;
    retired_at: Date | null;
    revoked_at: Date | null;
  }>(
    `SELECT kid, created_at, activates_at, retired_at, revoked_at FROM auth.signing_keys
        WHERE coalesce(revoked_at, retired_at, 'infinity') > clock_timestamp() - make_interval(secs => $1)
        ORDER BY activates_at DESC`,
    [seconds],
  );
  return rows;
}
