import type pg from 'pg';
import { promClient } from '@exchange/platform';
import type { Principal, Role } from '@exchange/auth-client';
import type { Config } from './config.ts';
import type { Sealer } from './crypto.ts';
import type { EmailTokens } from './email/service.ts';
import type { KeyStore } from './signing-keys/service.ts';
import type { Passwords } from './users/passwords.ts';
import type { Throttle, ThrottleLimits } from './login-security/throttle.ts';

export interface AuthMetrics {
  loginFailures: promClient.Counter<'reason'>;
  logins: promClient.Counter<'mfa'>;
  securityEvents: promClient.Counter<'event'>;
  apiKeyVerifications: promClient.Counter<'result'>;
  tokensIssued: promClient.Counter<'kind'>;
}

export function createAuthMetrics(registry: promClient.Registry): AuthMetrics {
  const r = [registry];
  return {
    loginFailures: new promClient.Counter({
      name: 'auth_login_failures_total',
      help: 'Failed logins by reason (bad_password, unknown_account, throttled, locked, mfa_invalid, account_locked)',
      labelNames: ['reason'],
      registers: r,
    }),
    logins: new promClient.Counter({
      name: 'auth_logins_total',
      help: 'Successful logins',
      labelNames: ['mfa'],
      registers: r,
    }),
    securityEvents: new promClient.Counter({
      name: 'auth_security_events_total',
      help: 'Security events (refresh_token_reuse, api_signature_replay, account_locked_by_throttle, …)',
      labelNames: ['event'],
      registers: r,
    }),
    apiKeyVerifications: new promClient.Counter({
      name: 'auth_api_key_verifications_total',
      help: 'API-key request verifications by result',
      labelNames: ['result'],
      registers: r,
    }),
    tokensIssued: new promClient.Counter({
      name: 'auth_tokens_issued_total',
      help: 'Access tokens issued by kind (login, refresh, step_up, mfa_enable)',
      labelNames: ['kind'],
      registers: r,
    }),
  };
}

export interface AuthContext {
  pool: pg.Pool;
  config: Config;
  keys: KeyStore;
  /** Seals API-key secrets and TOTP secrets (API_KEY_ENCRYPTION_KEY). */
  sealer: Sealer;
  passwords: Passwords;
  /** Emailed single-use tokens (verification, password reset). */
  emailTokens: EmailTokens;
  throttle: Throttle;
  metrics: AuthMetrics;
  accountLimits: ThrottleLimits;
  ipLimits: ThrottleLimits;
}

/** Who calls a user's route: the user, and the session of their token (none for an API key). */
export type Caller = Pick<Principal, 'id' | 'sessionId'>;

declare module 'fastify' {
  interface FastifyInstance {
    authContext: AuthContext;
  }
}

export interface UserRow {
  id: string;
  email: string;
  password_hash: string;
  roles: Role[];
  locked_at: Date | null;
  locked_reason: string | null;
  totp_secret_enc: string | null;
  totp_pending_secret_enc: string | null;
  totp_enabled_at: Date | null;
  totp_last_step: string | null;
  email_verified_at: Date | null;
  created_at: Date;
}

export const USER_COLUMNS = `id, email, password_hash, roles, locked_at, locked_reason, totp_secret_enc,
  totp_pending_secret_enc, totp_enabled_at, totp_last_step, email_verified_at, created_at`;

export function userView(u: UserRow) {
  return {
    id: u.id,
    email: u.email,
    roles: u.roles,
    mfaEnabled: u.totp_enabled_at !== null,
    emailVerified: u.email_verified_at !== null,
    locked: u.locked_at !== null,
    createdAt: u.created_at.toISOString(),
  };
}

export const normaliseEmail = (email: string) => email.trim().toLowerCase();
