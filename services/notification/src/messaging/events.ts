/**
 * Which event makes which mail. The queue `notification.mails` is bound to every type listed here; the handler turns
 * an event into one row of notification.mails in the same transaction as its inbox row, so each event id yields at
 * most one mail however often the broker delivers it.
 */
import {
  AccountLockedV1,
  ApiKeyCreatedV1,
  AUTH_EVENTS,
  EmailVerificationRequestedV1,
  LoginNewDeviceV1,
  MfaDisabledV1,
  MfaEnabledV1,
  PasswordResetCompletedV1,
  PasswordResetRequestedV1,
  UserRegisteredV1,
} from '@exchange/contracts/auth';
import {
  WITHDRAWAL_EVENTS,
  WithdrawalConfirmationRequestedV1,
  WithdrawalFailedV1,
  WithdrawalRequestedV1,
  WithdrawalSentV1,
} from '@exchange/contracts/wallet';
import type { Envelope } from '@exchange/contracts';
import { EVENTS_EXCHANGE, PermanentError, type QueueSpec } from '@exchange/messaging';
import type { TemplateData, TemplateName } from '../templates/index.ts';

export const MAIL_QUEUE: QueueSpec = {
  name: 'notification.mails',
  bindings: [...AUTH_EVENTS, ...WITHDRAWAL_EVENTS].map((c) => ({ exchange: EVENTS_EXCHANGE, routingKey: c.type })),
  deliveryLimit: 10,
  // turning an event into a mail row only fails when the database or the auth service (address lookup) is away
  retry: { attempts: 8, backoffMs: [1_000, 5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 3_600_000] },
};

/** What the handler needs to write a mail row. `to` is either the address or the user id to look it up by. */
export interface MailIntent<K extends TemplateName = TemplateName> {
  template: K;
  userId: string;
  email?: string;
  ip: string | null;
  userAgent: string | null;
  data: TemplateData[K];
}

const mail = <K extends TemplateName>(m: MailIntent<K>): MailIntent => m as unknown as MailIntent;

/** The mail an event asks for, or undefined when it asks for none. Throws PermanentError on an unknown type. */
export function intentFor(event: Envelope): MailIntent | undefined {
  switch (event.type) {
    case UserRegisteredV1.type: {
      const p = UserRegisteredV1.validate(event).payload;
      return mail({
        template: 'verify_email',
        userId: p.userId,
        email: p.email,
        ...p.context,
        data: { token: p.verificationToken, expiresAt: new Date(p.expiresAt), welcome: true },
      });
    }
    case EmailVerificationRequestedV1.type: {
      const p = EmailVerificationRequestedV1.validate(event).payload;
      return mail({
        template: 'verify_email',
        userId: p.userId,
        email: p.email,
        ...p.context,
        data: { token: p.verificationToken, expiresAt: new Date(p.expiresAt), welcome: false },
      });
    }
    case PasswordResetRequestedV1.type: {
      const p = PasswordResetRequestedV1.validate(event).payload;
      return mail({
        template: 'password_reset',
        userId: p.userId,
        email: p.email,
        ...p.context,
        data: { token: p.resetToken, expiresAt: new Date(p.expiresAt) },
      });
    }
    case PasswordResetCompletedV1.type: {
      const p = PasswordResetCompletedV1.validate(event).payload;
      return mail({ template: 'password_reset_done', userId: p.userId, email: p.email, ...p.context, data: {} });
    }
    case LoginNewDeviceV1.type: {
      const p = LoginNewDeviceV1.validate(event).payload;
      return mail({ template: 'login_new_device', userId: p.userId, email: p.email, ...p.context, data: {} });
    }
    case MfaEnabledV1.type: {
      const p = MfaEnabledV1.validate(event).payload;
      return mail({ template: 'mfa_enabled', userId: p.userId, email: p.email, ...p.context, data: {} });
    }
    case MfaDisabledV1.type: {
      const p = MfaDisabledV1.validate(event).payload;
      return mail({ template: 'mfa_disabled', userId: p.userId, email: p.email, ...p.context, data: {} });
    }
    case ApiKeyCreatedV1.type: {
      const p = ApiKeyCreatedV1.validate(event).payload;
      return mail({
        template: 'api_key_created',
        userId: p.userId,
        email: p.email,
        ...p.context,
        data: { label: p.label, scopes: p.scopes },
      });
    }
    case AccountLockedV1.type: {
      const p = AccountLockedV1.validate(event).payload;
      return mail({
        template: 'account_locked',
        userId: p.userId,
        email: p.email,
        ...p.context,
        data: { reason: p.reason },
      });
    }
    case WithdrawalRequestedV1.type: {
      const p = WithdrawalRequestedV1.validate(event).payload;
      // a withdrawal waiting for its link gets the confirmation mail instead (one mail, not two)
      if (p.awaitingConfirmation) return undefined;
      return mail({
        template: 'withdrawal_requested',
        userId: p.userId,
        ip: null,
        userAgent: null,
        data: { asset: p.asset, amount: p.amount, fee: p.fee, address: p.address },
      });
    }
    case WithdrawalConfirmationRequestedV1.type: {
      const p = WithdrawalConfirmationRequestedV1.validate(event).payload;
      return mail({
        template: 'withdrawal_confirm',
        userId: p.userId,
        ip: null,
        userAgent: null,
        data: {
          asset: p.asset,
          amount: p.amount,
          fee: p.fee,
          address: p.address,
          token: p.confirmationToken,
          expiresAt: new Date(p.expiresAt),
        },
      });
    }
    case WithdrawalSentV1.type: {
      const p = WithdrawalSentV1.validate(event).payload;
      return mail({
        template: 'withdrawal_sent',
        userId: p.userId,
        ip: null,
        userAgent: null,
        data: { asset: p.asset, amount: p.amount, address: p.address, railTxId: p.railTxId },
      });
    }
    case WithdrawalFailedV1.type: {
      const p = WithdrawalFailedV1.validate(event).payload;
      return mail({
        template: 'withdrawal_failed',
        userId: p.userId,
        ip: null,
        userAgent: null,
        data: { asset: p.asset, amount: p.amount, reason: p.reason },
      });
    }
    default:
      throw new PermanentError(`notification.mails: no mail for event type ${event.type}`);
  }
}
