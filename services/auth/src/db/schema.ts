import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  cidr,
  index,
  inet,
  integer,
  jsonb,
  pgSchema,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import { idempotencyKeysTable } from '@exchange/platform';
import { outboxTable } from '@exchange/messaging';

export const AUTH_SCHEMA = 'auth';
export const authSchema = pgSchema(AUTH_SCHEMA);

const ts = (name: string) => timestamp(name, { withTimezone: true });

export const users = authSchema.table(
  'users',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    /** Normalised (trimmed, lower-case). */
    email: text('email').notNull(),
    passwordHash: text('password_hash').notNull(),
    roles: text('roles')
      .array()
      .notNull()
      .default(sql`ARRAY['user']::text[]`),
    /** Locked by an operator (until unlocked); distinct from the automatic login lockout in login_throttle. */
    lockedAt: ts('locked_at'),
    lockedReason: text('locked_reason'),
    /** AES-256-GCM encrypted base32 TOTP secret once 2FA is enabled. */
    totpSecretEnc: text('totp_secret_enc'),
    totpPendingSecretEnc: text('totp_pending_secret_enc'),
    totpEnabledAt: ts('totp_enabled_at'),
    /** RFC 6238 time step of the last accepted code: a code is accepted once. */
    totpLastStep: bigint('totp_last_step', { mode: 'number' }),
    /** When the owner proved the address (verification link); null = unverified (no withdrawals, no withdraw keys). */
    emailVerifiedAt: ts('email_verified_at'),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [uniqueIndex('users_email_key').on(t.email)],
);

/** A session is one refresh-token family. Revoking it kills every refresh token and (via the revocation list) every access token of it. */
export const sessions = authSchema.table(
  'sessions',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id),
    createdAt: ts('created_at').notNull().defaultNow(),
    lastUsedAt: ts('last_used_at').notNull().defaultNow(),
    expiresAt: ts('expires_at').notNull(),
    /** Last successful 2FA check in this session (login with code, or step-up). */
    mfaAt: ts('mfa_at'),
    revokedAt: ts('revoked_at'),
    revokedReason: text('revoked_reason'),
    ip: inet('ip'),
    userAgent: text('user_agent'),
  },
  (t) => [index('sessions_user_idx').on(t.userId), index('sessions_revoked_idx').on(t.revokedAt)],
);

export const refreshTokens = authSchema.table(
  'refresh_tokens',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    sessionId: uuid('session_id')
      .notNull()
      .references(() => sessions.id),
    /** SHA-256 of the opaque token (256 random bits, so a fast hash is enough). */
    tokenHash: text('token_hash').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
    /** Set when rotated; presenting it again is reuse. */
    usedAt: ts('used_at'),
  },
  (t) => [uniqueIndex('refresh_tokens_hash_key').on(t.tokenHash), index('refresh_tokens_session_idx').on(t.sessionId)],
);

export const recoveryCodes = authSchema.table(
  'recovery_codes',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id),
    codeHash: text('code_hash').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
    usedAt: ts('used_at'),
  },
  (t) => [index('recovery_codes_user_idx').on(t.userId)],
);

export const apiKeys = authSchema.table(
  'api_keys',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id),
    /** SHA-256 of the public key id, for lookup. */
    keyIdHash: text('key_id_hash').notNull(),
    /** First characters of the key id, to recognise it in lists. */
    keyPrefix: text('key_prefix').notNull(),
    /** AES-256-GCM(API_KEY_ENCRYPTION_KEY) of the HMAC secret; AAD binds it to this row's key id hash. */
    secretEnc: text('secret_enc').notNull(),
    scopes: text('scopes').array().notNull(),
    label: text('label').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
    lastUsedAt: ts('last_used_at'),
    revokedAt: ts('revoked_at'),
    /** Why it stopped working: user, password_changed, 2fa_disabled, account_locked. */
    revokedReason: text('revoked_reason'),
    /** Optional end of life; a key past it is refused like a revoked one. */
    expiresAt: ts('expires_at'),
    /** Client IPs/CIDRs the key may be used from (NULL = anywhere; required for withdraw scope). */
    allowedIps: cidr('allowed_ips').array(),
  },
  (t) => [uniqueIndex('api_keys_key_id_hash_key').on(t.keyIdHash), index('api_keys_user_idx').on(t.userId)],
);

/** Replay store: each accepted API-key signature once, kept for the ±30 s window (and a margin). */
export const apiKeySignatures = authSchema.table('api_key_signatures', {
  signatureHash: text('signature_hash').primaryKey(),
  expiresAt: ts('expires_at').notNull(),
});

/** Failed-login counters per account (normalised email, existing or not) and per client IP. */
export const loginThrottle = authSchema.table(
  'login_throttle',
  {
    kind: text('kind').notNull(),
    key: text('key').notNull(),
    failures: integer('failures').notNull().default(0),
    windowStartedAt: ts('window_started_at').notNull().defaultNow(),
    nextAllowedAt: ts('next_allowed_at'),
    lockedUntil: ts('locked_until'),
  },
  (t) => [primaryKey({ columns: [t.kind, t.key] })],
);

/** Proof-of-work challenges already spent on a login (each solution opens one attempt), until they expire. */
export const spentChallenges = authSchema.table('spent_challenges', {
  signature: text('signature').primaryKey(),
  expiresAt: ts('expires_at').notNull(),
});

/** RS256 signing keys. The newest unretired key signs; retired keys stay in the JWKS until their tokens expired. */
export const signingKeys = authSchema.table('signing_keys', {
  kid: text('kid').primaryKey(),
  /** AES-256-GCM(SIGNING_KEY_ENCRYPTION_KEY) of the PKCS#8 PEM private key. */
  privateKeyEnc: text('private_key_enc').notNull(),
  publicJwk: jsonb('public_jwk').notNull(),
  createdAt: ts('created_at').notNull().defaultNow(),
  /** Published in the JWKS at once, signs only from here on: every replica and verifier can know it before it is used. */
  activatesAt: ts('activates_at').notNull().defaultNow(),
  /** Stops signing (when its successor activates); stays published for the access-token lifetime after. */
  retiredAt: ts('retired_at'),
  /** Emergency revocation (`cli.ts revoke-key`): dropped from the JWKS and refused by every verifier at once. */
  revokedAt: ts('revoked_at'),
});

/** Append-only (a trigger rejects UPDATE, DELETE and TRUNCATE). */
export const auditLog = authSchema.table(
  'audit_log',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    at: ts('at').notNull().defaultNow(),
    actorId: uuid('actor_id'),
    targetId: uuid('target_id'),
    action: text('action').notNull(),
    ip: inet('ip'),
    userAgent: text('user_agent'),
    requestId: text('request_id'),
    details: jsonb('details')
      .notNull()
      .default(sql`'{}'::jsonb`),
  },
  (t) => [
    index('audit_log_actor_idx').on(t.actorId, t.id),
    index('audit_log_target_idx').on(t.targetId, t.id),
    index('audit_log_action_idx').on(t.action, t.id),
  ],
);

export const idempotencyKeys = idempotencyKeysTable(authSchema);

/**
 * Single-use emailed tokens (email verification, password reset): only the SHA-256 of the token is stored. A token is
 * spent by setting used_at (atomically, `WHERE used_at IS NULL`); issuing a new one of the same purpose spends the
 * older ones.
 */
export const emailTokens = authSchema.table(
  'email_tokens',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id),
    /** verify_email | reset_password */
    purpose: text('purpose').notNull(),
    tokenHash: text('token_hash').notNull(),
    expiresAt: ts('expires_at').notNull(),
    usedAt: ts('used_at'),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [uniqueIndex('email_tokens_hash_key').on(t.tokenHash), index('email_tokens_user_idx').on(t.userId, t.purpose)],
);

/** Domain events for other services (the notification service mails them), published by the outbox relay. */
export const outbox = outboxTable(authSchema);
