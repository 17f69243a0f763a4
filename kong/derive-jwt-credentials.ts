/**
 * Writes the auth service's signing keys into kong.yml as jwt credentials of the consumer `exchange-auth`.
 *
 *   node kong/derive-jwt-credentials.ts --jwks http://localhost:3001/.well-known/jwks.json
 *   node kong/derive-jwt-credentials.ts --jwks ./jwks.json
 *   node kong/derive-jwt-credentials.ts --pem ./auth-signing-key.pem [--kid <kid>]      (public or private key)
 *   options: --config <kong.yml> (default: kong/kong.yml next to this script), --check (exit 1 if it would change)
 *
 * One credential per signing key: `key` = the JWK's `kid` (the jwt plugin uses `key_claim_name: kid`), algorithm
 * RS256, `rsa_public_key` = the key as SPKI PEM (converted from the JWK with node:crypto).
 *
 * Rotation is one step: the auth service publishes old and new keys in its JWKS while tokens signed with the old key
 * can still be alive (15 min); run this script with --jwks and reload Kong (`kong reload`, or restart the DB-less
 * container). With --jwks the credential list becomes exactly the JWKS's RSA signing keys (retired keys disappear).
 * With --pem the key is added (or replaced, same kid) and the others are kept. Comments and the rest of the file
 * are preserved.
 */
import { createHash, createPublicKey, type JsonWebKey } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { isMap, isSeq, parseDocument } from 'yaml';

export const CONSUMER = 'exchange-auth';

export interface JwtCredential {
  key: string;
  algorithm: 'RS256';
  rsa_public_key: string;
}

interface Jwk extends JsonWebKey {
  kid?: string;
  use?: string;
  alg?: string;
}

/** RFC 7638 JWK thumbprint (SHA-256, base64url) of an RSA public key: the kid used when a PEM carries none. */
export function rsaThumbprint(jwk: { n?: string; e?: string }): string {
  if (!jwk.n || !jwk.e) throw new Error('not an RSA public key');
  const canonical = JSON.stringify({ e: jwk.e, kty: 'RSA', n: jwk.n });
  return createHash('sha256').update(canonical).digest('base64url');
}

/** Credentials for every RSA signing key of a JWKS (keys for encryption or other algorithms are ignored). */
export function credentialsFromJwks(jwks: { keys?: unknown }): JwtCredential[] {
  if (!Array.isArray(jwks.keys)) throw new Error('JWKS has no "keys" array');
  const out: JwtCredential[] = [];
  for (const raw of jwks.keys as Jwk[]) {
    if (raw.kty !== 'RSA') continue;
    if (raw.use !== undefined && raw.use !== 'sig') continue;
    if (raw.alg !== undefined && raw.alg !== 'RS256') continue;
    const kid = raw.kid ?? rsaThumbprint(raw);
    const pem = createPublicKey({ key: { kty: 'RSA', n: raw.n, e: raw.e }, format: 'jwk' })
      .export({ type: 'spki', format: 'pem' })
      .toString();
    out.push({ key: kid, algorithm: 'RS256', rsa_public_key: pem });
  }
  if (out.length === 0) throw new Error('JWKS contains no RSA signing key');
  return out;
}

/** Credential from a PEM (SPKI public key, PKCS#1/PKCS#8 private key): only the public half is ever written. */
export function credentialFromPem(pem: string, kid?: string): JwtCredential {
  const pub = createPublicKey(pem);
  if (pub.asymmetricKeyType !== 'rsa') throw new Error(`expected an RSA key, got ${pub.asymmetricKeyType}`);
  const jwk = pub.export({ format: 'jwk' });
  return {
    key: kid ?? rsaThumbprint(jwk),
    algorithm: 'RS256',
    rsa_public_key: pub.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/**
 * Returns kong.yml's text with the consumer's jwt_secrets replaced (mode 'replace') or merged by key
 * (mode 'merge'). Everything else in the document, comments and anchors included, is kept.
 */
export function rewriteKongConfig(text: string, credentials: JwtCredential[], mode: 'replace' | 'merge'): string {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw new Error(`kong.yml does not parse: ${doc.errors[0]?.message}`);
  const consumers = doc.get('consumers');
  if (!isSeq(consumers)) throw new Error('kong.yml has no consumers list');
  const consumer = consumers.items.find((c) => isMap(c) && c.get('username') === CONSUMER);
  if (!isMap(consumer)) throw new Error(`kong.yml has no consumer "${CONSUMER}"`);
  let next = credentials;
  if (mode === 'merge') {
    const existing = (consumer.toJSON() as { jwt_secrets?: JwtCredential[] }).jwt_secrets ?? [];
    const replaced = new Set(credentials.map((c) => c.key));
    next = [...existing.filter((c) => !replaced.has(c.key)), ...credentials];
  }
  consumer.set('jwt_secrets', doc.createNode(next));
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      jwks: { type: 'string' },
      pem: { type: 'string' },
      kid: { type: 'string' },
      config: { type: 'string', default: join(dirname(fileURLToPath(import.meta.url)), 'kong.yml') },
      check: { type: 'boolean', default: false },
    },
  });
  if (!values.jwks === !values.pem) {
    console.error(
      'usage: node kong/derive-jwt-credentials.ts (--jwks <url|file> | --pem <file> [--kid <kid>]) [--config kong.yml] [--check]',
    );
    process.exit(64);
  }
  let credentials: JwtCredential[];
  let mode: 'replace' | 'merge';
  if (values.jwks) {
    const source = values.jwks;
    const body = /^https?:\/\//.test(source)
      ? await fetch(source).then(async (res) => {
          if (!res.ok) throw new Error(`GET ${source}: HTTP ${res.status}`);
          return res.text();
        })
      : await readFile(source, 'utf8');
    credentials = credentialsFromJwks(JSON.parse(body) as { keys?: unknown });
    mode = 'replace';
  } else {
    credentials = [credentialFromPem(await readFile(values.pem as string, 'utf8'), values.kid)];
    mode = 'merge';
  }
  const before = await readFile(values.config, 'utf8');
  const after = rewriteKongConfig(before, credentials, mode);
  const kids = credentials.map((c) => c.key).join(', ');
  if (values.check) {
    if (before !== after) {
      console.error(`${values.config} is out of date (signing keys: ${kids})`);
      process.exit(1);
    }
    console.log(`${values.config} is up to date`);
    return;
  }
  await writeFile(values.config, after);
  console.log(`${values.config}: consumer ${CONSUMER} jwt_secrets = [${kids}] (${mode}); reload Kong to apply`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
