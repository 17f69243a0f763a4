import { createHash, generateKeyPairSync, randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import jwt from 'jsonwebtoken';
import {
  ACCESS_TOKEN_TYP,
  API_KEY_WINDOW_MS,
  apiKeySignature,
  safeEqual,
  type ApiKeyVerifyRequest,
  type Role,
  type Scope,
} from './index.ts';

export interface TestTokenClaims {
  sub: string;
  roles?: Role[];
  /** Epoch seconds of the last 2FA check. */
  mfaAt?: number;
  /** Whether the user has 2FA on (default: true when mfaAt is given). */
  mfaEnabled?: boolean;
  /** Claim `ev` (left out: a token from before the claim existed, treated as verified). */
  emailVerified?: boolean;
  sid?: string;
  /** jsonwebtoken `expiresIn` (seconds or "15m"); default 900. */
  expiresIn?: number | string;
}

export interface TestIssuer {
  jwksUrl: string;
  issuer: string;
  audience: string;
  /** Base URL serving the auth service's /internal endpoints the plugin uses. */
  authServiceUrl: string;
  internalToken: string;
  kid: string;
  privateKey: KeyObject;
  /** Mint a real RS256 access token, exactly as the auth service does. */
  sign(claims: TestTokenClaims): string;
  /**
   * Mark a user's email verified as the auth service now sees it (served at /internal/users/:id/email-verified,
   * asked by requireVerifiedEmail when a token still says `ev: false`).
   */
  markEmailVerified(sub: string): void;
  /** Mark a session revoked (served at /internal/sessions/revoked). */
  revokeSession(sid: string): void;
  /** Create an API key for `sub` with `scopes`; returns the key id and its secret (sign requests with signApiRequest). */
  createApiKey(sub: string, scopes: Scope[], opts?: { mfaEnabled?: boolean }): { apiKey: string; secret: string };
  /** Options for registerAuth pointing at this issuer (revocation list refreshed on every request). */
  authOptions(): {
    jwksUrl: string;
    issuer: string;
    audience: string;
    internalToken: string;
    authServiceUrl: string;
    revocation: { refreshMs: number };
  };
  close(): Promise<void>;
}

/**
 * A stand-in for the auth service in other services' tests: a real RSA key pair, a real JWKS HTTP server on port 0,
 * and the two internal endpoints the plugin calls (revoked sessions; API-key verification with the same signature,
 * ±30 s window and replay rules as the auth service).
 */
export async function createTestIssuer(
  opts: { issuer?: string; audience?: string; internalToken?: string } = {},
): Promise<TestIssuer> {
  const issuer = opts.issuer ?? 'exchange-auth';
  const audience = opts.audience ?? 'exchange-api';
  const internalToken = opts.internalToken ?? randomBytes(24).toString('hex');
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = randomBytes(8).toString('hex');
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
  const revoked = new Map<string, number>();
  const apiKeys = new Map<string, { sub: string; secret: string; scopes: Scope[]; mfaEnabled: boolean }>();
  const seenSignatures = new Map<string, number>();
  const verifiedEmails = new Set<string>();

  const server: Server = createServer((req, res) => void handle(req, res));
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const internalOk = () => safeEqual(String(req.headers['x-internal-token'] ?? ''), internalToken);
    if (req.method === 'GET' && url.pathname === '/.well-known/jwks.json') return send(200, { keys: [jwk] });
    const ev = /^\/internal\/users\/([^/]+)\/email-verified$/.exec(url.pathname);
    if (req.method === 'GET' && ev) {
      if (!internalOk()) return send(401, { error: { code: 'INVALID_INTERNAL_TOKEN', message: 'no' } });
      return send(200, { emailVerified: verifiedEmails.has(decodeURIComponent(ev[1]!)) });
    }
    if (req.method === 'GET' && url.pathname === '/internal/sessions/revoked') {
      if (!internalOk()) return send(401, { error: { code: 'INVALID_INTERNAL_TOKEN', message: 'no' } });
      return send(200, { asOf: Date.now(), sessions: [...revoked].map(([sid, until]) => ({ sid, until })) });
    }
    if (req.method === 'POST' && url.pathname === '/internal/api-keys/verify') {
      if (!internalOk()) return send(401, { error: { code: 'INVALID_INTERNAL_TOKEN', message: 'no' } });
      const b = JSON.parse((await readAll(req)).toString()) as ApiKeyVerifyRequest;
      const key = apiKeys.get(b.apiKey);
      if (!key) return send(401, { error: { code: 'INVALID_API_KEY', message: 'invalid API key' } });
      const ts = Number(b.timestamp);
      if (!/^\d{1,16}$/.test(b.timestamp) || Math.abs(Date.now() - ts) > API_KEY_WINDOW_MS) {
        return send(401, { error: { code: 'API_TIMESTAMP_OUT_OF_WINDOW', message: 'timestamp outside ±30 s' } });
      }
      const expected = apiKeySignature(key.secret, {
        timestamp: b.timestamp,
        method: b.method,
        path: b.path,
        body: Buffer.from(b.bodyBase64, 'base64'),
      });
      if (!safeEqual(expected, b.signature.toLowerCase())) {
        return send(401, { error: { code: 'INVALID_API_SIGNATURE', message: 'bad signature' } });
      }
      const h = createHash('sha256').update(b.signature).digest('hex');
      if (seenSignatures.has(h)) return send(401, { error: { code: 'API_SIGNATURE_REPLAYED', message: 'replayed' } });
      seenSignatures.set(h, Date.now());
      return send(200, { userId: key.sub, keyId: b.apiKey, scopes: key.scopes, mfaEnabled: key.mfaEnabled });
    }
    send(404, { error: { code: 'ROUTE_NOT_FOUND', message: 'not found' } });
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    jwksUrl: `${base}/.well-known/jwks.json`,
    issuer,
    audience,
    authServiceUrl: base,
    internalToken,
    kid,
    privateKey,
    markEmailVerified(sub) {
      verifiedEmails.add(sub);
    },
    sign(c) {
      const payload: Record<string, unknown> = {
        roles: c.roles ?? ['user'],
        mfa: c.mfaEnabled ?? c.mfaAt !== undefined,
        sid: c.sid ?? randomUUID(),
      };
      if (c.mfaAt !== undefined) payload.mfa_at = c.mfaAt;
      if (c.emailVerified !== undefined) payload.ev = c.emailVerified;
      return jwt.sign(payload, privateKey, {
        algorithm: 'RS256',
        keyid: kid,
        header: { alg: 'RS256', typ: ACCESS_TOKEN_TYP, kid },
        issuer,
        audience,
        subject: c.sub,
        jwtid: randomUUID(),
        expiresIn: (c.expiresIn ?? 900) as jwt.SignOptions['expiresIn'],
      });
    },
    revokeSession(sid) {
      revoked.set(sid, Math.floor(Date.now() / 1000) + 900);
    },
    createApiKey(sub, scopes, o = {}) {
      const apiKey = `ak_${randomBytes(12).toString('hex')}`;
      const secret = randomBytes(32).toString('base64url');
      apiKeys.set(apiKey, { sub, secret, scopes, mfaEnabled: o.mfaEnabled ?? false });
      return { apiKey, secret };
    },
    authOptions() {
      return {
        jwksUrl: `${base}/.well-known/jwks.json`,
        issuer,
        audience,
        internalToken,
        authServiceUrl: base,
        revocation: { refreshMs: 0 },
      };
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
