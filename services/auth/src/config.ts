import {
  amqpEnv,
  baseEnv,
  databaseEnv,
  internalCallersEnv,
  internalEnv,
  loadConfigOrExit,
  proxyEnv,
  Type,
  type Static,
} from '@exchange/config';

const Key32 = (description: string) =>
  Type.String({
    pattern: '^[A-Za-z0-9+/]{43}=$',
    description: `${description} (32 random bytes, base64: \`openssl rand -base64 32\`)`,
  });

export const ConfigSchema = Type.Object({
  ...baseEnv(3001),
  ...databaseEnv,
  ...amqpEnv,
  ...internalEnv,
  ...internalCallersEnv,
  JWT_ISSUER: Type.String({ default: 'exchange-auth', description: '`iss` of access tokens' }),
  JWT_AUDIENCE: Type.String({ default: 'exchange-api', description: '`aud` of access tokens' }),
  ACCESS_TOKEN_TTL_SECONDS: Type.Integer({
    minimum: 60,
    maximum: 900,
    default: 900,
    description: 'Access token lifetime (≤ 15 min)',
  }),
  REFRESH_TOKEN_TTL_SECONDS: Type.Integer({
    minimum: 300,
    default: 30 * 24 * 3600,
    description: 'Absolute lifetime of a session (refresh-token family)',
  }),
  SIGNING_KEY_ENCRYPTION_KEY: Key32(
    'AES-256-GCM key encrypting the JWT signing private keys stored in auth.signing_keys',
  ),
  API_KEY_ENCRYPTION_KEY: Key32('AES-256-GCM key encrypting API-key secrets and TOTP secrets at rest'),
  SIGNING_KEY_ACTIVATION_DELAY_SECONDS: Type.Integer({
    minimum: 0,
    default: 60,
    description:
      'After rotate-keys, the new key is published at once and signs only after this delay (publish before use)',
  }),
  MFA_FRESH_SECONDS: Type.Integer({
    minimum: 30,
    default: 300,
    description: 'How recent a 2FA check must be for sensitive actions (API key creation, admin writes, backups)',
  }),
  LOGIN_ACCOUNT_SOFT_LIMIT: Type.Integer({
    minimum: 1,
    default: 3,
    description: 'Failures per (account, client IP) before that client backs off',
  }),
  LOGIN_ACCOUNT_LOCK_LIMIT: Type.Integer({
    minimum: 2,
    default: 10,
    description: 'Failures per (account, client IP) before that client is locked out of that account',
  }),
  LOGIN_ACCOUNT_POW_LIMIT: Type.Integer({
    minimum: 1,
    default: 10,
    description:
      'Failures on an account from all clients together after which its logins need a proof of work (the owner ' +
      'solves one in a second or two; an account is never locked from outside)',
  }),
  LOGIN_POW_HEX_ZEROS: Type.Integer({
    minimum: 1,
    maximum: 8,
    default: 4,
    description:
      'Proof-of-work difficulty: leading zero hex digits of the SHA-256 key (4 ≈ 65 k hashes, ~1-2 s in altcha-lib’s solver; each digit ×16)',
  }),
  MFA_SESSION_MAX_FAILURES: Type.Integer({
    minimum: 1,
    default: 20,
    description:
      'Wrong 2FA codes one session may send over its whole life (step-up, enrolment); then that session can no longer try',
  }),
  LOGIN_IP_SOFT_LIMIT: Type.Integer({ minimum: 1, default: 20, description: 'Failures per IP before backoff starts' }),
  LOGIN_IP_LOCK_LIMIT: Type.Integer({ minimum: 2, default: 100, description: 'Failures per IP before it is locked' }),
  LOGIN_BACKOFF_BASE_MS: Type.Integer({
    minimum: 0,
    default: 1000,
    description: 'First backoff delay; doubles per failure, capped at 60 s',
  }),
  LOGIN_LOCK_SECONDS: Type.Integer({
    minimum: 1,
    default: 900,
    description: 'How long a lock lasts; also the failure-counting window',
  }),
  ARGON2_MEMORY_KIB: Type.Integer({ minimum: 8192, default: 19456, description: 'argon2id memory cost (KiB)' }),
  ARGON2_TIME_COST: Type.Integer({ minimum: 1, default: 2, description: 'argon2id iterations' }),
  ARGON2_PARALLELISM: Type.Integer({ minimum: 1, default: 1, description: 'argon2id lanes' }),
  BACKUP_DIR: Type.String({
    default: './backups',
    description: 'Where POST /api/v1/admin/backups writes pg_dump files',
  }),
  PG_DUMP_PATH: Type.String({ default: 'pg_dump', description: 'pg_dump binary' }),
  AGE_PATH: Type.String({ default: 'age', description: 'age binary (encrypts the backups)' }),
  BACKUP_AGE_RECIPIENTS: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        'age public keys (age1…, separated by commas or spaces) every admin backup is encrypted to while it streams ' +
        'out of pg_dump; without them POST /api/v1/admin/backups refuses (no plaintext dump is ever written)',
    }),
  ),
  BACKUP_DATABASE_URL: Type.Optional(
    Type.String({
      pattern: '^postgres(ql)?://',
      description:
        'Role admin backups dump the whole database as (read-only, pg_read_all_data): with per-service roles, ' +
        "auth's own role reads only the auth schema. Default: DATABASE_URL",
    }),
  ),
  EMAIL_PREVERIFIED: Type.String({
    default: '',
    description:
      'Comma-separated emails that count as verified from registration, without a mail (host mode: the demo market ' +
      'maker accounts). Leave empty in production',
  }),
  ADMIN_EMAIL: Type.Optional(
    Type.String({ description: 'Seed this admin at start (idempotent), with ADMIN_PASSWORD' }),
  ),
  ADMIN_PASSWORD: Type.Optional(
    Type.String({ description: 'Password for ADMIN_EMAIL (only used when the user is created)' }),
  ),
  EMAIL_VERIFICATION_TTL_SECONDS: Type.Integer({
    minimum: 300,
    default: 48 * 3600,
    description: 'How long an email verification link works',
  }),
  PASSWORD_RESET_TTL_SECONDS: Type.Integer({
    minimum: 60,
    maximum: 3600,
    default: 1800,
    description: 'How long a password reset link works (30 min)',
  }),
  EMAIL_RESEND_LIMIT: Type.Integer({
    minimum: 1,
    default: 5,
    description:
      'Verification mails a user may ask for per hour (POST /api/v1/auth/email/resend; then 429 RATE_LIMITED)',
  }),
  PASSWORD_FORGOT_EMAIL_LIMIT: Type.Integer({
    minimum: 1,
    default: 5,
    description: 'Password reset requests per email address per hour (then 429 RATE_LIMITED)',
  }),
  PASSWORD_FORGOT_IP_LIMIT: Type.Integer({
    minimum: 1,
    default: 20,
    description: 'Password reset requests per client IP per hour (then 429 RATE_LIMITED)',
  }),
  PASSWORD_FORGOT_MIN_MS: Type.Integer({
    minimum: 0,
    default: 400,
    description:
      'POST /api/v1/auth/password/forgot answers no sooner than this, so known and unknown emails take the same time',
  }),
  ...proxyEnv,
});
export type Config = Static<typeof ConfigSchema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return loadConfigOrExit('auth', ConfigSchema, env);
}

export { trustProxyOption } from '@exchange/config';
