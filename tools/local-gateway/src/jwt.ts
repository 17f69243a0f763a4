/**
 * The checks of Kong's `jwt` plugin, in Kong's order and with Kong's responses (all 401):
 *   no token                         {"message":"Unauthorized"}
 *   more than one token              {"message":"Multiple tokens provided"}
 *   undecodable token                {"message":"Bad token; ..."}
 *   no key claim (kid)               {"message":"No mandatory 'kid' in claims"}
 *   unknown key                      {"message":"No credentials found for given 'kid'"}
 *   header alg != credential's alg   {"message":"Invalid algorithm"}        (so alg "none"/HS256 never pass)
 *   bad signature                    {"message":"Invalid signature"}
 *   claims_to_verify exp             {"exp":"must be a number"} / {"exp":"token expired"}
 *   maximum_expiration               {"exp":"exceeds maximum allowed expiration"}
 * Tokens are read only from the configured headers (`Bearer <token>`), URI params and cookies as configured.
 * Credentials: the consumers' jwt_secrets in kong.yml, plus (development only) the auth service's JWKS.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type { KongConfig } from './kong-config.ts';

export interface JwtPluginConfig {
  key_claim_name?: string;
  claims_to_verify?: string[];
  maximum_expiration?: number;
  header_names?: string[];
  uri_param_names?: string[];
  cookie_names?: string[];
  run_on_preflight?: boolean;
}

export interface Credential {
  key: string;
  algorithm: string;
  publicKey: KeyObject;
  consumer: string;
  source: 'kong.yml' | 'jwks';
}

export type JwtResult =
  | { ok: true; claims: Record<string, unknown>; credential: Credential }
  | { ok: false; status: 401; body: Record<string, string> };

export interface CredentialStoreOptions {
  kong: KongConfig;
  /** The auth service's JWKS (host mode: its key is generated at start-up, so kong.yml cannot know it). */
  jwksUrl?: string;
  /** Minimum interval between two JWKS fetches triggered by unknown kids. */
  jwksRefreshIntervalMs?: number;
  log?: { warn: (obj: unknown, msg?: string) => void };
}

export class CredentialStore {
  private readonly fromKong = new Map<string, Credential>();
  private fromJwks = new Map<string, Credential>();
  private readonly jwksUrl: string | undefined;
  private readonly refreshIntervalMs: number;
  private lastFetch = 0;
  private inflight: Promise<void> | null = null;
  private readonly log: CredentialStoreOptions['log'];

  constructor(opts: CredentialStoreOptions) {
    this.jwksUrl = opts.jwksUrl;
    this.refreshIntervalMs = opts.jwksRefreshIntervalMs ?? 5_000;
    this.log = opts.log;
    for (const consumer of opts.kong.consumers ?? []) {
      for (const secret of consumer.jwt_secrets ?? []) {
        const algorithm = secret.algorithm ?? 'HS256';
        if (!algorithm.startsWith('RS') || !secret.rsa_public_key) {
          // The local gateway verifies RSA credentials only; HMAC credentials would be a shared secret in kong.yml.
          this.log?.warn({ key: secret.key, algorithm }, 'ignoring non-RSA jwt credential');
          continue;
        }
        this.fromKong.set(secret.key, {
          key: secret.key,
          algorithm,
          publicKey: createPublicKey(secret.rsa_public_key),
          consumer: consumer.username ?? consumer.custom_id ?? 'unknown',
          source: 'kong.yml',
        });
      }
    }
  }

  /** Fetches the JWKS (no-op without jwksUrl). Errors are logged, not thrown: auth may start after the gateway. */
  async refresh(): Promise<void> {
    if (!this.jwksUrl) return;
    if (this.inflight) return this.inflight;
    this.lastFetch = Date.now();
    const url = this.jwksUrl;
    this.inflight = (async () => {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(3_000) });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const body = (await res.json()) as { keys?: Array<Record<string, unknown>> };
        const next = new Map<string, Credential>();
        for (const jwk of body.keys ?? []) {
          if (jwk.kty !== 'RSA' || typeof jwk.kid !== 'string') continue;
          if (jwk.use !== undefined && jwk.use !== 'sig') continue;
          if (jwk.alg !== undefined && jwk.alg !== 'RS256') continue;
          next.set(jwk.kid, {
            key: jwk.kid,
            algorithm: 'RS256',
            publicKey: createPublicKey({ key: { kty: 'RSA', n: jwk.n as string, e: jwk.e as string }, format: 'jwk' }),
            consumer: 'exchange-auth',
            source: 'jwks',
          });
        }
        this.fromJwks = next;
      } catch (err) {
        this.log?.warn({ err: String(err), url }, 'could not load the auth service JWKS');
      } finally {
        this.inflight = null;
      }
    })();
    return this.inflight;
  }

  /**
   * Tokens whose signature a credential verified: a token is the same bytes, signature included, on every request
   * of a session, so RSA verification (most of the gateway's CPU for an order) is done once per token and
   * credential. Only the signature is remembered; expiry and the other claims are checked on every request. An entry
   * counts only for the very credential object that verified it (a JWKS refresh makes new ones). Oldest out first.
   */
  private readonly verified = new Map<string, Credential>();
  static readonly VERIFIED_MAX = 10_000;

  signatureVerified(token: string, credential: Credential): boolean {
    return this.verified.get(token) === credential;
  }

  rememberSignature(token: string, credential: Credential): void {
    if (this.verified.size >= CredentialStore.VERIFIED_MAX) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, credential);
  }

  async get(key: string): Promise<Credential | undefined> {
    const known = this.fromKong.get(key) ?? this.fromJwks.get(key);
    if (known || !this.jwksUrl) return known;
    if (Date.now() - this.lastFetch >= this.refreshIntervalMs) await this.refresh();
    return this.fromKong.get(key) ?? this.fromJwks.get(key);
  }
}

const BEARER = /^\s*[Bb]earer\s+(.+)$/;

function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out.set(part.slice(0, i).trim(), decodeURIComponent(part.slice(i + 1).trim()));
  }
  return out;
}

function findTokens(
  conf: JwtPluginConfig,
  headers: Record<string, string | string[] | undefined>,
  query: URLSearchParams,
): string[] {
  const tokens: string[] = [];
  // Kong's defaults are uri_param_names ["jwt"] and header_names ["authorization"]; kong.yml sets them explicitly.
  for (const name of conf.uri_param_names ?? ['jwt']) {
    const v = query.get(name);
    if (v) tokens.push(v);
  }
  const cookies = parseCookies(headers.cookie as string | undefined);
  for (const name of conf.cookie_names ?? []) {
    const v = cookies.get(name);
    if (v) tokens.push(v);
  }
  for (const name of conf.header_names ?? ['authorization']) {
    const raw = headers[name.toLowerCase()];
    const value = Array.isArray(raw) ? raw[0] : raw;
    if (!value) continue;
    const m = BEARER.exec(value);
    if (m?.[1]) tokens.push(m[1].trim());
  }
  return [...new Set(tokens)];
}

function unauthorized(body: Record<string, string>): JwtResult {
  return { ok: false, status: 401, body };
}

export async function verifyKongJwt(
  conf: JwtPluginConfig,
  req: { headers: Record<string, string | string[] | undefined>; query: URLSearchParams },
  store: CredentialStore,
  nowSeconds: number = Math.floor(Date.now() / 1000),
): Promise<JwtResult> {
  const tokens = findTokens(conf, req.headers, req.query);
  if (tokens.length === 0) return unauthorized({ message: 'Unauthorized' });
  if (tokens.length > 1) return unauthorized({ message: 'Multiple tokens provided' });
  const token = tokens[0] as string;

  const decoded = jwt.decode(token, { complete: true, json: true });
  if (!decoded || typeof decoded.payload !== 'object' || decoded.payload === null) {
    return unauthorized({ message: 'Bad token; invalid JSON' });
  }
  const claims = decoded.payload as Record<string, unknown>;
  const header = decoded.header as unknown as Record<string, unknown>;
  const keyClaim = conf.key_claim_name ?? 'iss';
  const key = claims[keyClaim] ?? header[keyClaim];
  if (key === undefined || key === null) return unauthorized({ message: `No mandatory '${keyClaim}' in claims` });
  if (typeof key !== 'string' || key === '') return unauthorized({ message: `Invalid '${keyClaim}' in claims` });

  const credential = await store.get(key);
  if (!credential) return unauthorized({ message: `No credentials found for given '${keyClaim}'` });
  if (header.alg !== credential.algorithm) return unauthorized({ message: 'Invalid algorithm' });
  if (!store.signatureVerified(token, credential)) {
    try {
      // Signature only: Kong checks registered claims separately, and only those in claims_to_verify.
      jwt.verify(token, credential.publicKey, {
        algorithms: [credential.algorithm as jwt.Algorithm],
        ignoreExpiration: true,
        ignoreNotBefore: true,
      });
    } catch {
      return unauthorized({ message: 'Invalid signature' });
    }
    store.rememberSignature(token, credential);
  }

  const errors: Record<string, string> = {};
  for (const claim of conf.claims_to_verify ?? []) {
    const v = claims[claim];
    if (typeof v !== 'number') {
      errors[claim] = 'must be a number';
    } else if (claim === 'exp' && v <= nowSeconds) {
      errors[claim] = 'token expired';
    } else if (claim === 'nbf' && v > nowSeconds) {
      errors[claim] = 'token not valid yet';
    }
  }
  if (Object.keys(errors).length > 0) return unauthorized(errors);

  const max = conf.maximum_expiration ?? 0;
  if (max > 0) {
    const exp = claims.exp;
    if (typeof exp !== 'number' || exp - nowSeconds > max) {
      return unauthorized({ exp: 'exceeds maximum allowed expiration' });
    }
  }
  return { ok: true, claims, credential };
}
