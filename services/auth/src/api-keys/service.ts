/** API keys: creating and revoking a user's keys, and verifying a request signed with one (for auth-client). */
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import type { FastifyRequest } from 'fastify';
import { AppError, badRequest, conflict, forbidden, notFound } from '@exchange/platform';
import {
  API_KEY_WINDOW_MS,
  apiKeySignature,
  safeEqual,
  type ApiKeyVerifyRequest,
  type Principal,
} from '@exchange/auth-client';
import { ApiKeyCreatedV1 } from '@exchange/contracts/auth';
import { audit } from '../audit/repository.ts';
import type { AuthContext } from '../context.ts';
import { sha256hex } from '../crypto.ts';
import { emit, requestContext } from '../email/service.ts';
import { findUserById } from '../users/repository.ts';
import * as repo from './repository.ts';

export const MAX_KEYS = 20;
export const MAX_KEY_LIFETIME_DAYS = 365;

/** An IPv4/IPv6 address or CIDR block. */
function isCidr(v: string): boolean {
  const [addr, prefix, extra] = v.split('/');
  const family = isIP(addr ?? '');
  if (!family || extra !== undefined) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

export interface NewApiKey {
  label: string;
  scopes: repo.ApiKeyScope[];
  allowedIps?: string[];
  expiresAt?: string;
}

/**
 * A new API key of the caller: its row, and the key id and secret (returned once, never shown again). A `withdraw`
 * key needs 2FA enrolled, an IP allow-list and a verified email. The owner is mailed and the creation audited.
 */
export async function createApiKey(
  ctx: AuthContext,
  req: FastifyRequest,
  caller: Pick<Principal, 'id' | 'mfaEnabled'>,
  body: NewApiKey,
): Promise<{ row: repo.KeyRow; apiKey: string; secret: string }> {
  const userId = caller.id;
  const { scopes, allowedIps, expiresAt } = body;
  const owner = await findUserById(ctx.pool, userId);
  if (scopes.includes('withdraw')) {
    // requireFreshMfa lets users without 2FA through; a key that can move money out must not be made so.
    if (!caller.mfaEnabled)
      throw forbidden('MFA_ENROLMENT_REQUIRED', 'a withdraw-scoped key needs 2FA enrolled and a fresh 2FA check');
    if (!allowedIps) throw badRequest('IP_ALLOWLIST_REQUIRED', 'a withdraw-scoped key needs allowedIps');
    if (owner?.email_verified_at == null) {
      throw forbidden('EMAIL_NOT_VERIFIED', 'a withdraw-scoped key needs a verified email address');
    }
  }
  const badIp = allowedIps?.find((v) => !isCidr(v));
  if (badIp !== undefined) throw badRequest('INVALID_IP', `not an IP address or CIDR block: ${badIp}`);
  if (expiresAt !== undefined) {
    const at = Date.parse(expiresAt);
    if (!(at > Date.now()) || at > Date.now() + MAX_KEY_LIFETIME_DAYS * 86_400_000)
      throw badRequest('INVALID_EXPIRY', `expiresAt must be in the next ${MAX_KEY_LIFETIME_DAYS} days`);
  }
  if ((await repo.countUnrevokedKeys(ctx.pool, userId)) >= MAX_KEYS)
    throw conflict('TOO_MANY_API_KEYS', `at most ${MAX_KEYS} active API keys`);
  const apiKey = `ak_${randomBytes(16).toString('hex')}`;
  const secret = randomBytes(32).toString('base64url');
  const keyIdHash = sha256hex(apiKey);
  const row = await repo.insertKey(ctx.pool, {
    userId,
    keyIdHash,
    keyPrefix: apiKey.slice(0, 10),
    secretEnc: ctx.sealer.seal(secret, keyIdHash),
    scopes,
    label: body.label,
    allowedIps: allowedIps ?? null,
    expiresAt: expiresAt ?? null,
  });
  // shown in the owner's security log (GET /api/v1/auth/security-log) and mailed to the owner
  await emit(
    ctx.pool,
    ApiKeyCreatedV1,
    {
      userId,
      email: owner!.email,
      apiKeyId: row.id,
      label: body.label,
      scopes,
      context: requestContext(req),
    },
    req,
  );
  await audit(ctx.pool, req, {
    action: 'auth.api_key_created',
    actorId: userId,
    targetId: userId,
    details: {
      apiKeyId: row.id,
      scopes,
      label: body.label,
      allowedIps: row.allowed_ips,
      expiresAt: expiresAt ?? null,
    },
  });
  return { row, apiKey, secret };
}

/** Revoke one of the user's active keys; 404 API_KEY_NOT_FOUND otherwise. */
export async function revokeApiKey(ctx: AuthContext, req: FastifyRequest, userId: string, id: string): Promise<void> {
  if (!(await repo.revokeKey(ctx.pool, id, userId))) throw notFound('API_KEY_NOT_FOUND', 'no such active API key');
  await audit(ctx.pool, req, {
    action: 'auth.api_key_revoked',
    actorId: userId,
    targetId: userId,
    details: { apiKeyId: id },
  });
}

/**
 * Verify an API-key signed request: the key (active, account not locked, IP allowed), the ±30 s window, the
 * signature, and that the signature was not used before (replay). Every outcome is counted; a replay is audited.
 */
export async function verifySignedRequest(ctx: AuthContext, req: FastifyRequest, b: ApiKeyVerifyRequest) {
  const reject = (code: string, message: string) => {
    ctx.metrics.apiKeyVerifications.inc({ result: code.toLowerCase() });
    return new AppError(401, code, message);
  };
  const keyIdHash = sha256hex(b.apiKey);
  const key = await repo.findVerifiableKey(ctx.pool, keyIdHash, b.clientIp ?? null);
  if (!key || key.locked)
    throw reject('INVALID_API_KEY', 'API key not recognised, revoked, expired, or its account is locked');
  if (!key.ip_allowed) throw reject('API_KEY_IP_NOT_ALLOWED', 'this API key is not allowed from this IP address');
  if (!/^\d{1,16}$/.test(b.timestamp) || Math.abs(Date.now() - Number(b.timestamp)) > API_KEY_WINDOW_MS) {
    throw reject('API_TIMESTAMP_OUT_OF_WINDOW', 'X-API-Timestamp (epoch ms) must be within 30 s of the server clock');
  }
  const secret = ctx.sealer.open(key.secret_enc, keyIdHash);
  const expected = apiKeySignature(secret, {
    timestamp: b.timestamp,
    method: b.method,
    path: b.path,
    body: Buffer.from(b.bodyBase64, 'base64'),
  });
  if (!safeEqual(expected, b.signature.toLowerCase()))
    throw reject('INVALID_API_SIGNATURE', 'signature does not match');
  // Replay: each signature is accepted once while its timestamp is inside the window (+ margin).
  const fresh = await repo.claimSignature(
    ctx.pool,
    sha256hex(`${keyIdHash}:${expected}`),
    (2 * API_KEY_WINDOW_MS) / 1000 + 5,
  );
  if (!fresh) {
    ctx.metrics.securityEvents.inc({ event: 'api_signature_replay' });
    await audit(ctx.pool, req, {
      action: 'security.api_signature_replay',
      targetId: key.user_id,
      details: { apiKeyId: key.id, method: b.method, path: b.path.slice(0, 200) },
    });
    throw reject('API_SIGNATURE_REPLAYED', 'this signed request was already used');
  }
  if (key.stale) await repo.touchKey(ctx.pool, key.id);
  ctx.metrics.apiKeyVerifications.inc({ result: 'ok' });
  return {
    userId: key.user_id,
    keyId: key.id,
    scopes: key.scopes,
    mfaEnabled: key.mfa,
    emailVerified: key.verified,
  };
}
