/**
 * Which event makes which mail. The queue `notification.mails` (queues.ts) is bound to every type listed here; the
 * handler (mails.ts) turns
 * an event into one row of notification.mails in the same transaction as its inbox row, so each event id yields at
 * most one mail however often the broker delivers it.
 */
import {
  AccountLockedV1,
  ApiKeyCreatedV1,
  EmailVerificationRequestedV1,
  LoginNewDeviceV1,
  MfaDisabledV1,
  MfaEnabledV1,
  PasswordResetCompletedV1,
  PasswordResetRequestedV1,
  UserRegisteredV1,
} from '@exchange/contracts/auth';
import {
  WithdrawalConfirmationRequestedV1,
  WithdrawalFailedV1,
  WithdrawalRequestedV1,
  WithdrawalSentV1,
} from '@exchange/contracts/wallet';
import type { Envelope, MessageContract, PayloadOf } from '@exchange/contracts';
import { PermanentError } from '@exchange/messaging';
import type { TemplateData, TemplateName } from '../templates/index.ts';

/** What the handler needs to write a mail row. `to` is either the address or the user id to look it up by. */
export interface MailIntent<K extends TemplateName = TemplateName> {
  template: K;
  userId: string;
  email?: string;
  ip: string | null;
  userAgent: string | null;
  data: TemplateData[K];
}

/** The mail itself: which template, with what. Who it goes to and the request context come from the event. */
type Mail = { [K in TemplateName]: { template: K; data: TemplateData[K] } }[TemplateName];

/** What every mail-making event carries: the user, and for account events their address and request context. */
interface MailPayload {
  userId: string;
  email?: string;
  context?: { ip: string | null; userAgent: string | null };
}

interface MailRule {
  contract: MessageContract;
  mail(payload: never): Mail | undefined;
}

/** One line per event type: its contract and the mail it asks for (undefined: none). */
const rule = <C extends MessageContract>(contract: C, mail: (p: PayloadOf<C>) => Mail | undefined): MailRule => ({
  contract,
  mail,
});

const RULES: MailRule[] = [
  rule(UserRegisteredV1, (p) => ({
    template: 'verify_email',
    data: { token: p.verificationToken, expiresAt: new Date(p.expiresAt), welcome: true },
  })),
  rule(EmailVerificationRequestedV1, (p) => ({
    template: 'verify_email',
    data: { token: p.verificationToken, expiresAt: new Date(p.expiresAt), welcome: false },
  })),
  rule(PasswordResetRequestedV1, (p) => ({
    template: 'password_reset',
    data: { token: p.resetToken, expiresAt: new Date(p.expiresAt) },
  })),
  rule(PasswordResetCompletedV1, () => ({ template: 'password_reset_done', data: {} })),
  rule(LoginNewDeviceV1, () => ({ template: 'login_new_device', data: {} })),
  rule(MfaEnabledV1, () => ({ template: 'mfa_enabled', data: {} })),
  rule(MfaDisabledV1, () => ({ template: 'mfa_disabled', data: {} })),
  rule(ApiKeyCreatedV1, (p) => ({ template: 'api_key_created', data: { label: p.label, scopes: p.scopes } })),
  rule(AccountLockedV1, (p) => ({ template: 'account_locked', data: { reason: p.reason } })),
  // a withdrawal waiting for its link gets the confirmation mail instead (one mail, not two)
  rule(WithdrawalRequestedV1, (p) =>
    p.awaitingConfirmation
      ? undefined
      : {
          template: 'withdrawal_requested',
          data: { asset: p.asset, amount: p.amount, fee: p.fee, address: p.address },
        },
  ),
  rule(WithdrawalConfirmationRequestedV1, (p) => ({
    template: 'withdrawal_confirm',
    data: {
      asset: p.asset,
      amount: p.amount,
      fee: p.fee,
      address: p.address,
      token: p.confirmationToken,
      expiresAt: new Date(p.expiresAt),
    },
  })),
  rule(WithdrawalSentV1, (p) => ({
    template: 'withdrawal_sent',
    data: { asset: p.asset, amount: p.amount, address: p.address, railTxId: p.railTxId },
  })),
  rule(WithdrawalFailedV1, (p) => ({
    template: 'withdrawal_failed',
    data: { asset: p.asset, amount: p.amount, reason: p.reason },
  })),
];

const RULE_BY_TYPE = new Map(RULES.map((r) => [r.contract.type, r]));

/** The mail an event asks for, or undefined when it asks for none. Throws PermanentError on an unknown type. */
export function intentFor(event: Envelope): MailIntent | undefined {
  const r = RULE_BY_TYPE.get(event.type);
  if (!r) throw new PermanentError(`notification.mails: no mail for event type ${event.type}`);
  const payload = r.contract.validate(event).payload;
  const m = r.mail(payload as never);
  if (!m) return undefined;
  const p = payload as MailPayload;
  return {
    template: m.template,
    userId: p.userId,
    ...(p.email !== undefined ? { email: p.email } : {}),
    ip: p.context?.ip ?? null,
    userAgent: p.context?.userAgent ?? null,
    data: m.data,
  } as MailIntent;
}
