import { amqpEnv, baseEnv, databaseEnv, internalEnv, loadConfigOrExit, Type, type Static } from '@exchange/config';

export const ConfigSchema = Type.Object({
  ...baseEnv(3005),
  ...databaseEnv,
  ...amqpEnv,
  ...internalEnv,
  AUTH_URL: Type.String({
    pattern: '^https?://',
    default: 'http://127.0.0.1:3001',
    description:
      'Auth service base URL: GET /internal/users/:id/contact finds the address for events that carry only a user id ' +
      '(withdrawals); this service is the caller `notification` in auth’s INTERNAL_CALLERS',
  }),
  SMTP_HOST: Type.String({
    default: '127.0.0.1',
    description: 'SMTP server (MailDev in development, your relay in production)',
  }),
  SMTP_PORT: Type.Integer({
    minimum: 1,
    maximum: 65535,
    default: 1025,
    description: 'SMTP port (1025 MailDev, 587 submission, 465 TLS)',
  }),
  SMTP_SECURE: Type.Boolean({
    default: false,
    description:
      'Implicit TLS from the first byte (port 465). Off: plain connection upgraded with STARTTLS when offered',
  }),
  SMTP_REQUIRE_TLS: Type.Boolean({
    default: false,
    description: 'Refuse to send unless the server upgrades with STARTTLS (set it for any relay outside the cluster)',
  }),
  SMTP_USER: Type.Optional(Type.String({ description: 'SMTP AUTH user (unset: no authentication)' })),
  SMTP_PASSWORD: Type.Optional(Type.String({ description: 'SMTP AUTH password (from a Secret)' })),
  SMTP_TIMEOUT_MS: Type.Integer({
    minimum: 1000,
    default: 15_000,
    description: 'Connection/greeting/socket timeout of one SMTP attempt',
  }),
  MAIL_FROM: Type.String({
    default: 'Exchange <no-reply@exchange.local>',
    description: 'From header of every mail, e.g. `Exchange <no-reply@example.com>`',
  }),
  MAIL_PRODUCT_NAME: Type.String({ default: 'Exchange', description: 'Product name in subjects and bodies' }),
  PUBLIC_WEB_URL: Type.String({
    pattern: '^https?://',
    default: 'http://localhost:8000',
    description:
      'Base URL of the web app for mail links: /verify-email?token=…, /reset-password?token=…, /confirm-withdrawal?token=…',
  }),
  MAIL_MAX_ATTEMPTS: Type.Integer({
    minimum: 1,
    default: 20,
    description: 'SMTP attempts per mail before it is marked failed (with the backoff, about a day of retrying)',
  }),
  MAIL_RETRY_BASE_MS: Type.Integer({
    minimum: 100,
    default: 5_000,
    description: 'First retry delay after a failed send; doubles per attempt, capped at MAIL_RETRY_MAX_MS',
  }),
  MAIL_RETRY_MAX_MS: Type.Integer({ minimum: 1000, default: 3_600_000, description: 'Longest delay between attempts' }),
  MAIL_POLL_MS: Type.Integer({ minimum: 50, default: 1_000, description: 'How often the sender looks for due mails' }),
  MAIL_SEND_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 20, default: 2, description: 'Mails sent at once' }),
  MAIL_RETENTION_DAYS: Type.Integer({
    minimum: 1,
    default: 30,
    description: 'Sent and failed mail rows (without bodies) are deleted after this many days',
  }),
});
export type Config = Static<typeof ConfigSchema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return loadConfigOrExit('notification', ConfigSchema, env);
}
