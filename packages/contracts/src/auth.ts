/**
 * Events the auth service publishes (through its outbox, on the events exchange, routing key = type). Consumed by
 * the notification service, which mails the account holder. `context` is the request that caused the event: the
 * client IP and user agent shown in the mail ("was this you?").
 *
 * Tokens (verification, reset) travel in the payload because the mail must carry them; they are single use and
 * short-lived, only their SHA-256 is stored by auth, and the notification service keeps them only until the mail
 * is sent (see services/notification/README.md).
 */
import { Type, type Static } from '@sinclair/typebox';
import { defineMessage, IsoDateTime, Uuid } from './envelope.ts';

export const RequestContext = Type.Object({
  ip: Type.Union([Type.String({ maxLength: 64 }), Type.Null()]),
  userAgent: Type.Union([Type.String({ maxLength: 512 }), Type.Null()]),
});
export type RequestContext = Static<typeof RequestContext>;

const Email = Type.String({ minLength: 3, maxLength: 254 });
const Token = Type.String({ minLength: 20, maxLength: 300 });

export const UserRegisteredV1 = defineMessage({
  type: 'user.registered',
  version: 1,
  description: 'A new account; carries the email verification token (single use, expires at expiresAt)',
  payload: Type.Object({
    userId: Uuid(),
    email: Email,
    verificationToken: Token,
    expiresAt: IsoDateTime(),
    context: RequestContext,
  }),
});

export const EmailVerificationRequestedV1 = defineMessage({
  type: 'email_verification.requested',
  version: 1,
  description: 'The user asked for a new verification link (resend); earlier links stop working',
  payload: Type.Object({
    userId: Uuid(),
    email: Email,
    verificationToken: Token,
    expiresAt: IsoDateTime(),
    context: RequestContext,
  }),
});

export const PasswordResetRequestedV1 = defineMessage({
  type: 'password_reset.requested',
  version: 1,
  description: 'Someone asked to reset the password of an existing account (never published for unknown emails)',
  payload: Type.Object({
    userId: Uuid(),
    email: Email,
    resetToken: Token,
    expiresAt: IsoDateTime(),
    context: RequestContext,
  }),
});

export const PasswordResetCompletedV1 = defineMessage({
  type: 'password_reset.completed',
  version: 1,
  description: 'The password was reset by link; every session and API key of the user was revoked',
  payload: Type.Object({ userId: Uuid(), email: Email, context: RequestContext }),
});

export const LoginNewDeviceV1 = defineMessage({
  type: 'login.new_device',
  version: 1,
  description: 'A successful login from an IP + user agent this account has not logged in from before',
  payload: Type.Object({ userId: Uuid(), email: Email, sessionId: Uuid(), context: RequestContext }),
});

export const MfaEnabledV1 = defineMessage({
  type: 'mfa.enabled',
  version: 1,
  payload: Type.Object({ userId: Uuid(), email: Email, context: RequestContext }),
});

export const MfaDisabledV1 = defineMessage({
  type: 'mfa.disabled',
  version: 1,
  payload: Type.Object({ userId: Uuid(), email: Email, context: RequestContext }),
});

export const ApiKeyCreatedV1 = defineMessage({
  type: 'api_key.created',
  version: 1,
  payload: Type.Object({
    userId: Uuid(),
    email: Email,
    apiKeyId: Uuid(),
    label: Type.String({ maxLength: 200 }),
    scopes: Type.Array(Type.String({ maxLength: 20 })),
    context: RequestContext,
  }),
});

export const AccountLockedV1 = defineMessage({
  type: 'account.locked',
  version: 1,
  description: 'An operator locked the account (logins, refresh and API keys stop)',
  payload: Type.Object({
    userId: Uuid(),
    email: Email,
    reason: Type.Union([Type.String({ maxLength: 500 }), Type.Null()]),
    context: RequestContext,
  }),
});

/** Every auth event type (the notification queue binds each). */
export const AUTH_EVENTS = [
  UserRegisteredV1,
  EmailVerificationRequestedV1,
  PasswordResetRequestedV1,
  PasswordResetCompletedV1,
  LoginNewDeviceV1,
  MfaEnabledV1,
  MfaDisabledV1,
  ApiKeyCreatedV1,
  AccountLockedV1,
] as const;
