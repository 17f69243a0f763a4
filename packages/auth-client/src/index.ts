import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import jwt from 'jsonwebtoken';
import jwksRsa from 'jwks-rsa';
import { AppError } from '@exchange/platform';

export type Role = 'user' | 'support' | 'admin';
export type Scope = 'read' | 'trade' | 'withdraw';
export const ROLES: readonly Role[] = ['user', 'support', 'admin'];
export const SCOPES: readonly Scope[] = ['read', 'trade', 'withdraw'];

/** Who is calling. Set on `request.principal` by the plugin when a valid credential was presented. */
export interface Principal {
  /** User id (uuid). */
  id: string;
  roles: Role[];
  /** JWT sessions carry every scope; API keys only those granted at creation. */
  scopes: Scope[];
  via: 'jwt' | 'api_key';
  /** Session (refresh-token family) id, from the token's `sid`. */
  sessionId?: string;
  /** Epoch seconds of the session's last 2FA check (token claim `mfa_at`). */
  mfaAt?: number;
  /** Whether the user has 2FA enabled (token claim `mfa`). */
  mfaEnabled?: boolean;
  /**
   * Whether the user verified their email (token claim `ev`; for API keys, from the verifier). `undefined` for tokens
   * issued before the claim existed: those users were all marked verified by the migration.
   */
  emailVerified?: boolean;
  /** API key id, when via === 'api_key'. */
  apiKeyId?: string;
  /** Token id (`jti`), when via === 'jwt'. */
  tokenId?: string;
}

/** Claims of an access token issued by the auth service. */
export interface AccessTokenClaims {
  iss: string;
  aud: string | string[];
  sub: string;
  exp: number;
  iat: number;
  nbf?: number;
  jti: string;
  sid?: string;
  roles: Role[];
  /** 2FA enabled for the user. */
  mfa?: boolean;
  /** Epoch seconds of the last 2FA check in this session. */
  mfa_at?: number;
  /** Email verified. */
  ev?: boolean;
}

/** JOSE `typ` of access tokens (RFC 9068 / RFC 8725 §3.11 explicit typing). */
export const ACCESS_TOKEN_TYP = 'at+jwt';
/** Allowed clock skew when checking `exp`/`nbf`. */
export const CLOCK_TOLERANCE_S = 5;

/** The body of `POST /internal/api-keys/verify` (this package → the auth service): a request signed with an API key. */
export interface ApiKeyVerifyRequest {
  apiKey: string;
  timestamp: string;
  signature: string;
  method: string;
  path: string;
  bodyBase64: string;
  /** The client IP as the calling service derived it (its trusted proxies), for the key's IP allow-list. */
  clientIp?: string;
}

/** API-key request timestamps must be within this many milliseconds of the server clock. */
export const API_KEY_WINDOW_MS = 30_000;

export interface AuthOptions {
  jwksUrl: string;
  issuer: string;
  audience: string;
  /** This service's own service-to-service credential (INTERNAL_API_TOKEN): sent on its calls to other services. */
  internalToken: string;
  /**
   * Who may call this service's `/internal/*` routes: caller name → that caller's credential (INTERNAL_CALLERS), so a
   * route can name the callers it serves (`requireInternalCaller('order')`). The service's own credential is always
   * the caller `self`. Left out (development, tests), `internalToken` is every caller: one shared secret.
   */
  internalCallers?: Record<string, string>;
  /** Base URL of the auth service for /internal calls (API-key verification, revoked sessions). Default: jwksUrl's origin. */
  authServiceUrl?: string;
  /**
   * Revoked-session list: refreshed from the auth service when older than `refreshMs` (default 5000; 0 = on every
   * request, for tests). If a refresh fails and the last good list is older than `maxStaleMs` (default 60000),
   * JWT requests fail closed with 503 AUTH_UNAVAILABLE. `false` disables the check (only for services that accept
   * tokens of logged-out sessions until they expire, ≤ 15 min — none should).
   */
  revocation?: { refreshMs?: number; maxStaleMs?: number } | false;
  /** Timeout for calls to the auth service (ms, default 3000). */
  timeoutMs?: number;
  /**
   * How recent (seconds) a 2FA check must be for `requireFreshMfa()` without an explicit age and for
   * `requireFreshMfaOnWrites` (admin writes: kill switches, halts, reconciliation runs, dead-letter retries).
   * Default 300; the services set it from MFA_FRESH_SECONDS.
   */
  mfaFreshSeconds?: number;
  /** Accept X-API-Key requests (default true). The auth service itself turns this off for its own routes. */
  acceptApiKeys?: boolean;
  /** In-process key lookup instead of the JWKS (used by the auth service, which holds the keys). */
  resolveKey?: (kid: string) => Promise<string>;
  /** In-process revocation check instead of the revoked-session list (used by the auth service). */
  isSessionRevoked?: (sid: string) => Promise<boolean>;
  /**
   * Current verification state for `requireVerifiedEmail` when the credential says unverified (default: ask the auth
   * service, GET /internal/users/:id/email-verified; the auth service passes its in-process check).
   */
  isEmailVerified?: (userId: string) => Promise<boolean>;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
    /** Why the presented credential was rejected; thrown by the guards (a route without a guard ignores it). */
    authError?: AppError;
    /** The exact request body bytes, captured only for API-key requests (the signature covers them). */
    rawBody?: Buffer;
  }
}

const INTERNAL_DIGEST = Symbol.for('exchange.auth.internalTokenDigest');
const MFA_FRESH_SECONDS = Symbol.for('exchange.auth.mfaFreshSeconds');
const EMAIL_VERIFIED_CHECK = Symbol.for('exchange.auth.emailVerifiedCheck');
const DEFAULT_MFA_FRESH_SECONDS = 300;

type Guard = (req: FastifyRequest, reply: FastifyReply) => Promise<void>;

const authErr = (code: string, message: string) =>
  new AppError(401, code, message, { headers: { 'www-authenticate': 'Bearer' } });

/**
 * Verifies credentials offline and sets `request.principal`. Call it on the root app BEFORE registering routes.
 *
 * - `Authorization: Bearer <jwt>`: RS256 only, `typ` at+jwt, `iss`, `aud`, `exp`, `nbf` (±5 s), key by `kid` from
 *   the JWKS (cached; an unknown kid triggers a rate-limited refetch), session not revoked.
 * - `X-API-Key` + `X-API-Timestamp` + `X-API-Signature`: the body is buffered in onRequest (so guards work in
 *   onRequest too) and handed back to Fastify's parser unchanged in preParsing; the key, signature, ±30 s window and
 *   replay are checked by the auth service (`POST /internal/api-keys/verify`), which alone can decrypt the secret.
 *
 * A request with no or an invalid credential still reaches the route; the guards (`requireAuth`, …) reject it with
 * the precise reason. Public routes therefore keep working when a client sends a stale token.
 */
export function registerAuth(app: FastifyInstance<any, any, any, any, any>, opts: AuthOptions): void {
  const authBase = (opts.authServiceUrl ?? new URL(opts.jwksUrl).origin).replace(/\/$/, '');
  const timeoutMs = opts.timeoutMs ?? 3000;
  const jwks = new jwksRsa.JwksClient({
    jwksUri: opts.jwksUrl,
    cache: true,
    cacheMaxAge: 10 * 60_000,
    cacheMaxEntries: 10,
    rateLimit: true,
    jwksRequestsPerMinute: 10,
    timeout: timeoutMs,
  });
  const revocationList =
    opts.revocation === false || opts.isSessionRevoked
      ? undefined
      : new RevocationList(authBase, opts.internalToken, timeoutMs, opts.revocation ?? {});
  const isRevoked =
    opts.isSessionRevoked ?? (revocationList ? (sid: string) => revocationList.isRevoked(sid) : undefined);
  const keys = opts.resolveKey ?? jwks;
  const bodyLimit: number = (app as FastifyInstance).initialConfig.bodyLimit ?? 1024 * 1024;

  app.decorate(INTERNAL_DIGEST, callerDigests(opts.internalToken, opts.internalCallers));
  app.decorate(MFA_FRESH_SECONDS, opts.mfaFreshSeconds ?? DEFAULT_MFA_FRESH_SECONDS);
  app.decorate(
    EMAIL_VERIFIED_CHECK,
    opts.isEmailVerified ??
      (async (userId: string): Promise<boolean> => {
        let res: Response;
        try {
          res = await fetch(`${authBase}/internal/users/${encodeURIComponent(userId)}/email-verified`, {
            headers: { 'x-internal-token': opts.internalToken },
            signal: AbortSignal.timeout(timeoutMs),
          });
        } catch (e) {
          throw new AppError(503, 'AUTH_UNAVAILABLE', 'the auth service could not be reached', { cause: e });
        }
        if (res.status === 404) return false;
        if (res.status !== 200) throw new AppError(503, 'AUTH_UNAVAILABLE', `the auth service answered ${res.status}`);
        return ((await res.json()) as { emailVerified?: boolean }).emailVerified === true;
      }),
  );
  app.decorateRequest('principal', undefined);
  app.decorateRequest('authError', undefined);
  app.decorateRequest('rawBody', undefined);

  app.addHook('onRequest', async (req: FastifyRequest) => {
    const apiKey = header(req, 'x-api-key');
    const authorization = header(req, 'authorization');
    if (apiKey !== undefined && opts.acceptApiKeys === false) {
      req.authError = authErr('API_KEY_NOT_ACCEPTED', 'this endpoint needs a user session, not an API key');
      return;
    }
    if (apiKey !== undefined) {
      // Always consume the body here so preParsing can hand it back, whatever the outcome.
      const body = await readBody(req, bodyLimit);
      req.rawBody = body;
      if (authorization !== undefined) {
        req.authError = authErr('AMBIGUOUS_CREDENTIALS', 'send either a bearer token or an API key, not both');
        return;
      }
      try {
        req.principal = await verifyApiKey(req, apiKey, body);
      } catch (e) {
        req.authError = toAppError(e);
      }
      return;
    }
    if (authorization === undefined) return;
    const m = /^Bearer ([A-Za-z0-9_.~+/=-]+)$/i.exec(authorization);
    if (!m) {
      req.authError = authErr('INVALID_TOKEN', 'Authorization must be "Bearer <token>"');
      return;
    }
    try {
      const claims = await verifyAccessToken(m[1]!, { jwks: keys, issuer: opts.issuer, audience: opts.audience });
      // An emergency-revoked signing key: its tokens are refused from the next revocation poll on, although the
      // cached JWKS (and the token cache) still hold its public key.
      if (revocationList && (await revocationList.isKeyRevoked(tokenKid(m[1]!)))) {
        req.authError = authErr('SIGNING_KEY_REVOKED', 'the key that signed this token was revoked: log in again');
        return;
      }
      if (claims.sid && isRevoked && (await isRevoked(claims.sid))) {
        req.authError = authErr('SESSION_REVOKED', 'this session has been logged out or revoked');
        return;
      }
      req.principal = principalFromClaims(claims);
    } catch (e) {
      req.authError = toAppError(e);
    }
  });

  app.addHook('preParsing', async (req: FastifyRequest, _reply: FastifyReply, payload: NodeJS.ReadableStream) => {
    if (req.rawBody === undefined) return payload;
    const replay = new PassThrough();
    replay.end(req.rawBody);
    return replay;
  });

  async function verifyApiKey(req: FastifyRequest, apiKey: string, body: Buffer): Promise<Principal> {
    const timestamp = header(req, 'x-api-timestamp');
    const signature = header(req, 'x-api-signature');
    if (timestamp === undefined || signature === undefined) {
      throw authErr('INVALID_API_SIGNATURE', 'X-API-Key requires X-API-Timestamp and X-API-Signature');
    }
    let res: Response;
    try {
      res = await fetch(`${authBase}/internal/api-keys/verify`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-internal-token': opts.internalToken },
        body: JSON.stringify({
          apiKey,
          timestamp,
          signature,
          method: req.method,
          path: req.url,
          bodyBase64: body.toString('base64'),
          // the client IP as this service derived it (its trusted proxies): checked against the key's allow-list
          clientIp: req.ip,
        } satisfies ApiKeyVerifyRequest),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      throw new AppError(503, 'AUTH_UNAVAILABLE', 'the auth service could not be reached', { cause: e });
    }
    const json = (await res.json().catch(() => ({}))) as {
      userId?: string;
      keyId?: string;
      scopes?: Scope[];
      mfaEnabled?: boolean;
      emailVerified?: boolean;
      error?: { code?: string; message?: string };
    };
    if (res.status === 200 && json.userId && json.scopes) {
      return {
        id: json.userId,
        roles: ['user'],
        scopes: json.scopes,
        via: 'api_key',
        apiKeyId: json.keyId,
        mfaEnabled: json.mfaEnabled ?? false,
        ...(typeof json.emailVerified === 'boolean' ? { emailVerified: json.emailVerified } : {}),
      };
    }
    if (res.status >= 400 && res.status < 500 && res.status !== 401) {
      // 400 from the verifier means the request's own headers were malformed.
      throw authErr(json.error?.code ?? 'INVALID_API_KEY', json.error?.message ?? 'invalid API key request');
    }
    if (res.status === 401)
      throw authErr(json.error?.code ?? 'INVALID_API_KEY', json.error?.message ?? 'invalid API key');
    throw new AppError(503, 'AUTH_UNAVAILABLE', `the auth service answered ${res.status}`);
  }
}

function principalFromClaims(c: AccessTokenClaims): Principal {
  const p: Principal = {
    id: c.sub,
    roles: c.roles,
    scopes: [...SCOPES],
    via: 'jwt',
    tokenId: c.jti,
    mfaEnabled: c.mfa === true,
  };
  if (c.sid !== undefined) p.sessionId = c.sid;
  if (c.mfa_at !== undefined) p.mfaAt = c.mfa_at;
  if (typeof c.ev === 'boolean') p.emailVerified = c.ev;
  return p;
}

/**
 * Verify an access token against a JWKS (RFC 8725): the algorithm is pinned to RS256 both before (header check) and
 * in jsonwebtoken, `typ` must be at+jwt, `kid` must be present, and issuer, audience, exp and nbf are checked with
 * 5 s of clock tolerance. Throws AppError 401 (TOKEN_EXPIRED or INVALID_TOKEN) or 503 AUTH_UNAVAILABLE.
 */
export async function verifyAccessToken(
  token: string,
  opts: { jwks: jwksRsa.JwksClient | ((kid: string) => Promise<string>); issuer: string; audience: string },
): Promise<AccessTokenClaims> {
  const cacheKey = `${opts.issuer}\n${opts.audience}\n${token}`;
  const hit = verified.get(cacheKey);
  if (hit) {
    // Same bytes, signature checked before with the key the JWKS still gives for its kid: only time can have changed.
    // A kid the JWKS no longer gives (revoked) falls through to the full check, which answers 401 for it.
    const key = await signingKey(opts.jwks, hit.kid).catch(() => undefined);
    if (hit.claims.exp + CLOCK_TOLERANCE_S > Date.now() / 1000 && key === hit.key) return hit.claims;
    verified.delete(cacheKey);
  }
  const claims = await verifyUncached(token, opts);
  if (verified.size >= VERIFIED_CACHE_MAX) verified.delete(verified.keys().next().value!);
  verified.set(cacheKey, claims.cacheEntry);
  return claims.claims;
}

/**
 * Tokens whose signature was verified, by their exact text: a client sends the same access token with every request
 * until it expires, and an RS256 verification per request was a visible part of the order path's CPU. Bounded; the
 * oldest entry goes first.
 */
const verified = new Map<string, { claims: AccessTokenClaims; kid: string; key: string }>();
const VERIFIED_CACHE_MAX = 20_000;

async function signingKey(jwks: jwksRsa.JwksClient | ((kid: string) => Promise<string>), kid: string): Promise<string> {
  return typeof jwks === 'function' ? jwks(kid) : (await jwks.getSigningKey(kid)).getPublicKey();
}

async function verifyUncached(
  token: string,
  opts: { jwks: jwksRsa.JwksClient | ((kid: string) => Promise<string>); issuer: string; audience: string },
): Promise<{ claims: AccessTokenClaims; cacheEntry: { claims: AccessTokenClaims; kid: string; key: string } }> {
  const decoded = jwt.decode(token, { complete: true });
  if (!decoded || typeof decoded.payload === 'string') throw authErr('INVALID_TOKEN', 'malformed token');
  const { alg, kid, typ } = decoded.header;
  if (alg !== 'RS256') throw authErr('INVALID_TOKEN', 'token algorithm not accepted');
  if (typ !== ACCESS_TOKEN_TYP) throw authErr('INVALID_TOKEN', 'not an access token');
  if (typeof kid !== 'string' || kid.length === 0 || kid.length > 128)
    throw authErr('INVALID_TOKEN', 'token has no key id');
  let key: string;
  try {
    key = await signingKey(opts.jwks, kid);
  } catch (e) {
    const name = (e as Error).name;
    if (name === 'SigningKeyNotFoundError' || name === 'JwksRateLimitError' || name === 'KeyNotFound') {
      throw authErr('INVALID_TOKEN', 'unknown signing key');
    }
    throw new AppError(503, 'AUTH_UNAVAILABLE', 'signing keys could not be fetched', { cause: e });
  }
  let payload: jwt.JwtPayload;
  try {
    payload = jwt.verify(token, key, {
      algorithms: ['RS256'],
      issuer: opts.issuer,
      audience: opts.audience,
      clockTolerance: CLOCK_TOLERANCE_S,
      complete: false,
    }) as jwt.JwtPayload;
  } catch (e) {
    if ((e as Error).name === 'TokenExpiredError') throw authErr('TOKEN_EXPIRED', 'access token expired');
    throw authErr('INVALID_TOKEN', `invalid token: ${(e as Error).message}`);
  }
  if (
    typeof payload.sub !== 'string' ||
    typeof payload.exp !== 'number' ||
    typeof payload.jti !== 'string' ||
    !Array.isArray(payload.roles) ||
    !payload.roles.every((r: unknown) => (ROLES as readonly unknown[]).includes(r)) ||
    (payload.sid !== undefined && typeof payload.sid !== 'string') ||
    (payload.mfa_at !== undefined && typeof payload.mfa_at !== 'number')
  ) {
    throw authErr('INVALID_TOKEN', 'token claims are incomplete');
  }
  const claims = payload as AccessTokenClaims;
  return { claims, cacheEntry: { claims, kid, key } };
}

/** The `kid` of a token whose signature was verified (its header is well-formed JSON by then). */
function tokenKid(token: string): string {
  const header = JSON.parse(Buffer.from(token.slice(0, token.indexOf('.')), 'base64url').toString('utf8')) as {
    kid: string;
  };
  return header.kid;
}

/**
 * Sessions revoked recently enough that some of their access tokens may still be unexpired, and signing keys
 * revoked in an emergency (`revokedKids`), from one poll of the auth service every `refreshMs` (default 5 s).
 */
class RevocationList {
  private readonly url: string;
  private readonly token: string;
  private readonly timeoutMs: number;
  private readonly refreshMs: number;
  private readonly maxStaleMs: number;
  private readonly until = new Map<string, number>();
  private revokedKids = new Set<string>();
  private lastOkAt = 0;
  private cursor: number | undefined;
  private inflight: Promise<void> | undefined;

  constructor(base: string, token: string, timeoutMs: number, o: { refreshMs?: number; maxStaleMs?: number }) {
    this.url = `${base}/internal/sessions/revoked`;
    this.token = token;
    this.timeoutMs = timeoutMs;
    this.refreshMs = o.refreshMs ?? 5000;
    this.maxStaleMs = o.maxStaleMs ?? 60_000;
  }

  async isRevoked(sid: string): Promise<boolean> {
    await this.current();
    const u = this.until.get(sid);
    return u !== undefined && u * 1000 > Date.now() - CLOCK_TOLERANCE_S * 1000;
  }

  async isKeyRevoked(kid: string): Promise<boolean> {
    await this.current();
    return this.revokedKids.has(kid);
  }

  private async current(): Promise<void> {
    if (Date.now() - this.lastOkAt >= this.refreshMs) {
      try {
        await (this.inflight ??= this.refresh().finally(() => (this.inflight = undefined)));
      } catch (e) {
        if (Date.now() - this.lastOkAt > this.maxStaleMs) {
          throw new AppError(503, 'AUTH_UNAVAILABLE', 'revoked sessions could not be fetched', { cause: e });
        }
      }
    }
  }

  private async refresh(): Promise<void> {
    const startedAt = Date.now();
    // Overlap the previous cursor by a few seconds: a revocation committed late is still picked up.
    const q = this.cursor === undefined ? '' : `?since=${this.cursor - 10_000}`;
    const res = await fetch(this.url + q, {
      headers: { 'x-internal-token': this.token },
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    if (res.status !== 200) throw new Error(`revoked sessions: HTTP ${res.status}`);
    const body = (await res.json()) as {
      asOf: number;
      sessions: Array<{ sid: string; until: number }>;
      revokedKids?: string[];
    };
    for (const s of body.sessions) this.until.set(s.sid, s.until);
    // the whole list every time (a handful at most), so a kid is never missed between cursors
    this.revokedKids = new Set(body.revokedKids ?? []);
    const now = Date.now() / 1000;
    for (const [sid, u] of this.until) if (u + CLOCK_TOLERANCE_S < now) this.until.delete(sid);
    this.cursor = body.asOf;
    this.lastOkAt = startedAt;
  }
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

async function readBody(req: FastifyRequest, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new AppError(413, 'BODY_TOO_LARGE', 'request body too large');
  if (!declared && req.headers['transfer-encoding'] === undefined) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req.raw) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += b.length;
    if (size > limit) throw new AppError(413, 'BODY_TOO_LARGE', 'request body too large');
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

function toAppError(e: unknown): AppError {
  if (e instanceof AppError) return e;
  return new AppError(503, 'AUTH_UNAVAILABLE', 'credentials could not be verified', { cause: e });
}

function reject(req: FastifyRequest): never {
  throw req.authError ?? authErr('UNAUTHENTICATED', 'authentication required');
}

/**
 * Who is acting, in the one audit actor format every service records (audit rows, feature-flag and market-halt
 * changes): `user:<id>` for a person (token or API key), `service` for a call to an /internal/ route, else `anonymous`.
 */
export const actorOf = (req: FastifyRequest): string =>
  req.principal ? `user:${req.principal.id}` : req.url.startsWith('/internal/') ? 'service' : 'anonymous';

/** Any authenticated principal. */
export const requireAuth: Guard = async (req) => {
  if (!req.principal) reject(req);
};

/** Roles that act on other people's accounts or on the exchange itself: never usable without 2FA enrolled. */
export const STAFF_ROLES: readonly Role[] = ['support', 'admin'];
const isStaff = (p: Principal) => p.roles.some((r) => STAFF_ROLES.includes(r));

const enrolmentRequired = () =>
  new AppError(403, 'MFA_ENROLMENT_REQUIRED', 'staff roles work only with 2FA enrolled: enrol it, then log in again', {
    details: { setup: '/api/v1/auth/2fa/setup' },
  });

/**
 * The principal holds at least one of `roles`. A staff-only guard (every role asked for is `support` or `admin`)
 * also needs 2FA enrolled, for reads too: a stolen staff password alone must not open any admin or support route.
 */
export function requireRole(...roles: Role[]): Guard {
  const staffOnly = roles.every((r) => STAFF_ROLES.includes(r));
  return async (req) => {
    const p = req.principal;
    if (!p) reject(req);
    if (!p.roles.some((r) => roles.includes(r)))
      throw new AppError(403, 'FORBIDDEN', `requires role ${roles.join(' or ')}`);
    if (staffOnly && !p.mfaEnabled) throw enrolmentRequired();
  };
}

/** The principal holds every one of `scopes` (JWT sessions hold all; API keys those granted). */
export function requireScope(...scopes: Scope[]): Guard {
  return async (req) => {
    const p = req.principal;
    if (!p) reject(req);
    const missing = scopes.filter((s) => !p.scopes.includes(s));
    if (missing.length) throw new AppError(403, 'INSUFFICIENT_SCOPE', `API key lacks scope ${missing.join(', ')}`);
  };
}

/**
 * When the user has 2FA on, the token's `mfa_at` must be at most `maxAgeSeconds` old, else 403 MFA_REQUIRED (the
 * client steps up with POST /api/v1/auth/2fa/challenge and retries with the new access token). A staff principal
 * (support, admin) without 2FA never passes (403 MFA_ENROLMENT_REQUIRED). API-key principals pass: a key is created
 * only after a fresh 2FA check when 2FA is on and its scopes are its authorisation; API keys never carry staff roles.
 */
export function requireFreshMfa(maxAgeSeconds?: number): Guard {
  return async (req) => {
    const p = req.principal;
    if (!p) reject(req);
    if (p.via === 'api_key') return;
    if (!p.mfaEnabled) {
      if (isStaff(p)) throw enrolmentRequired();
      return;
    }
    // registerAuth (which set the principal) decorated the server with the configured age
    const maxAge = maxAgeSeconds ?? (req.server as unknown as { [MFA_FRESH_SECONDS]: number })[MFA_FRESH_SECONDS];
    const now = Math.floor(Date.now() / 1000);
    if (p.mfaAt === undefined || now - p.mfaAt > maxAge) {
      throw new AppError(403, 'MFA_REQUIRED', `a 2FA check within the last ${maxAge} s is required`, {
        details: { maxAgeSeconds: maxAge, stepUp: '/api/v1/auth/2fa/challenge' },
      });
    }
  };
}

/**
 * The user verified their email address (403 EMAIL_NOT_VERIFIED otherwise): withdrawals and withdraw-scoped API keys.
 * The credential's claim decides when it says verified (or predates the claim: every account of that time was
 * marked verified). When it says unverified, the auth service is asked, so a user who just clicked the link does not
 * have to wait for the next token refresh.
 */
export const requireVerifiedEmail: Guard = async (req) => {
  const p = req.principal;
  if (!p) reject(req);
  if (p.emailVerified !== false) return;
  const check = (req.server as unknown as { [EMAIL_VERIFIED_CHECK]?: (id: string) => Promise<boolean> })[
    EMAIL_VERIFIED_CHECK
  ];
  if (check && (await check(p.id))) return;
  throw new AppError(403, 'EMAIL_NOT_VERIFIED', 'verify your email address first (use the link we sent you)', {
    details: { resend: '/api/v1/auth/email/resend' },
  });
};

const freshMfa = requireFreshMfa();
/**
 * For an admin scope whose reads are fine on an older 2FA check but whose writes (anything but GET/HEAD/OPTIONS)
 * are not: a stolen admin token without a recent code can look, not act. Put it after the role check.
 */
export const requireFreshMfaOnWrites: Guard = async (req, reply) => {
  if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return;
  await freshMfa(req, reply);
};

/** Runs guards in order; the first that throws decides the response (e.g. role before fresh 2FA). */
export function allOf(...guards: Guard[]): Guard {
  return async (req, reply) => {
    for (const g of guards) await g(req, reply);
  };
}

/** A caller's credential as configured: the token itself, or `sha256:<hex>` of it (the receiver never holds it). */
function digestOf(credential: string): Buffer {
  const m = /^sha256:([0-9a-f]{64})$/i.exec(credential);
  return m ? Buffer.from(m[1]!, 'hex') : createHash('sha256').update(credential).digest();
}

/** Caller name → credential digest; `undefined` names mean "the shared secret: any caller". */
type CallerDigests = Array<{ name: string | undefined; digest: Buffer }>;

function callerDigests(own: string, callers: Record<string, string> | undefined): CallerDigests {
  if (!callers) return [{ name: undefined, digest: digestOf(own) }];
  return [
    { name: 'self', digest: digestOf(own) },
    ...Object.entries(callers).map(([name, c]) => ({ name, digest: digestOf(c) })),
  ];
}

/** Parses INTERNAL_CALLERS: `name:credential,name:credential` (credential: the token or `sha256:<hex>`). */
export function parseInternalCallers(v: string | undefined): Record<string, string> | undefined {
  if (v === undefined || v.trim() === '') return undefined;
  const out: Record<string, string> = {};
  for (const part of v.split(',')) {
    const i = part.indexOf(':');
    const name = part.slice(0, i).trim();
    const credential = part.slice(i + 1).trim();
    if (i <= 0 || !/^[a-z][a-z0-9-]*$/.test(name) || credential.length < 16)
      throw new Error(`INTERNAL_CALLERS: "${part.slice(0, 20)}…" is not name:credential (credential ≥ 16 chars)`);
    out[name] = credential;
  }
  return out;
}

/** Which configured caller presented `x-internal-token` (constant time over every caller), or 401. */
function internalCaller(req: FastifyRequest): string | undefined {
  const callers = (req.server as unknown as { [INTERNAL_DIGEST]?: CallerDigests })[INTERNAL_DIGEST];
  if (!callers) throw new AppError(500, 'AUTH_NOT_CONFIGURED', 'registerAuth was not called');
  const got = header(req, 'x-internal-token');
  const d = createHash('sha256')
    .update(got ?? '')
    .digest();
  let found: { name: string | undefined } | undefined;
  for (const c of callers) if (timingSafeEqual(d, c.digest) && got !== undefined) found ??= c;
  if (!found) throw new AppError(401, 'INVALID_INTERNAL_TOKEN', 'a valid x-internal-token is required');
  return found.name;
}

/**
 * Service-to-service calls (`/internal/*`) from any configured caller: header `x-internal-token` must be one of the
 * callers' credentials (compared in constant time, hashed first so the length does not leak either).
 */
export const requireInternal: Guard = async (req) => {
  internalCaller(req);
};

/**
 * An internal route serving only the named callers: another service's credential gets 403 INTERNAL_CALLER_FORBIDDEN
 * (the order service cannot set a KYC tier). With one shared secret (no `internalCallers`) every caller passes.
 */
export function requireInternalCaller(...names: string[]): Guard {
  return async (req) => {
    const caller = internalCaller(req);
    if (caller !== undefined && !names.includes(caller))
      throw new AppError(403, 'INTERNAL_CALLER_FORBIDDEN', `this internal route serves ${names.join(', ')} only`);
  };
}

/** Compare two secrets in constant time (hashing first so lengths do not leak). */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

/**
 * The API-key signature: lowercase hex HMAC-SHA256(secret, timestamp + METHOD + pathWithQuery + rawBody), where
 * timestamp is epoch milliseconds as sent in X-API-Timestamp.
 */
export function apiKeySignature(
  secret: string,
  p: { timestamp: string; method: string; path: string; body?: string | Buffer },
): string {
  return createHmac('sha256', secret)
    .update(`${p.timestamp}${p.method.toUpperCase()}${p.path}`)
    .update(p.body ?? '')
    .digest('hex');
}

/** Headers for an API-key request (for bots, the SDK and tests). */
export function signApiRequest(p: {
  apiKey: string;
  secret: string;
  method: string;
  path: string;
  body?: string | Buffer;
  timestamp?: number;
}): Record<string, string> {
  const timestamp = String(p.timestamp ?? Date.now());
  return {
    'x-api-key': p.apiKey,
    'x-api-timestamp': timestamp,
    'x-api-signature': apiKeySignature(p.secret, { timestamp, method: p.method, path: p.path, body: p.body ?? '' }),
  };
}
