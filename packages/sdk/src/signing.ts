import { hmacSha256Hex } from '#platform';

export interface ApiKeyCredentials {
  /** Sent as X-API-Key. */
  key: string;
  /** The HMAC secret shown once at creation. */
  secret: string;
}

/**
 * Headers of an API-key request: X-API-Key, X-API-Timestamp (epoch ms) and
 * X-API-Signature = lowercase hex HMAC-SHA256(secret, timestamp + METHOD + pathWithQuery + body).
 * The timestamp must be within ±30 s of the server clock and a signature is accepted once, so sign every attempt.
 */
export function signRequest(
  creds: ApiKeyCredentials,
  p: { method: string; pathWithQuery: string; body?: string; timestamp?: number },
): Record<string, string> {
  const timestamp = String(p.timestamp ?? Date.now());
  const signature = hmacSha256Hex(
    creds.secret,
    `${timestamp}${p.method.toUpperCase()}${p.pathWithQuery}${p.body ?? ''}`,
  );
  return { 'x-api-key': creds.key, 'x-api-timestamp': timestamp, 'x-api-signature': signature };
}
