/**
 * Every mail the exchange sends, in one place: subject, plain text and HTML of each template. Each mail names the
 * product, says when the event happened (UTC) and, for account events, from which IP and device, and carries at most
 * one link, built from PUBLIC_WEB_URL. Texts are short and plain on purpose: they are read on phones, and a security
 * mail that looks like marketing gets ignored.
 */

export type TemplateName =
  | 'verify_email'
  | 'password_reset'
  | 'password_reset_done'
  | 'login_new_device'
  | 'mfa_enabled'
  | 'mfa_disabled'
  | 'api_key_created'
  | 'account_locked'
  | 'withdrawal_requested'
  | 'withdrawal_confirm'
  | 'withdrawal_sent'
  | 'withdrawal_failed';

export const TEMPLATES: readonly TemplateName[] = [
  'verify_email',
  'password_reset',
  'password_reset_done',
  'login_new_device',
  'mfa_enabled',
  'mfa_disabled',
  'api_key_created',
  'account_locked',
  'withdrawal_requested',
  'withdrawal_confirm',
  'withdrawal_sent',
  'withdrawal_failed',
];

export interface MailContext {
  product: string;
  webUrl: string;
  /** When the event happened. */
  at: Date;
  ip?: string | null;
  userAgent?: string | null;
}

export interface RenderedMail {
  subject: string;
  text: string;
  html: string;
}

/** A paragraph, a labelled fact, or the call-to-action link. */
type Block = { p: string } | { fact: [string, string] } | { link: [string, string] };

interface Content {
  subject: string;
  heading: string;
  blocks: Block[];
  /** Shown under the facts of account events. */
  notYou?: string;
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** "Firefox on Windows"-style label from a user agent (no library: a rough, honest guess is enough for a mail). */
export function describeDevice(userAgent: string | null | undefined): string {
  if (!userAgent) return 'unknown device';
  const ua = userAgent;
  const browser = /Edg\//.test(ua)
    ? 'Edge'
    : /OPR\/|Opera/.test(ua)
      ? 'Opera'
      : /Firefox\//.test(ua)
        ? 'Firefox'
        : /Chrome\//.test(ua)
          ? 'Chrome'
          : /Safari\//.test(ua)
            ? 'Safari'
            : /curl\//i.test(ua)
              ? 'curl'
              : /node|undici|axios|python|go-http/i.test(ua)
                ? 'an API client'
                : undefined;
  const os = /Windows/.test(ua)
    ? 'Windows'
    : /iPhone|iPad|iOS/.test(ua)
      ? 'iOS'
      : /Android/.test(ua)
        ? 'Android'
        : /Mac OS X|Macintosh/.test(ua)
          ? 'macOS'
          : /Linux/.test(ua)
            ? 'Linux'
            : undefined;
  if (browser && os) return `${browser} on ${os}`;
  return browser ?? os ?? ua.slice(0, 80);
}

/** "0.60000000" → "0.6", "12.00" → "12": amounts read as people write them. */
export const plainAmount = (a: string) => (a.includes('.') ? a.replace(/\.?0+$/, '') : a);

const when = (d: Date) => `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;

function requestFacts(c: MailContext): Block[] {
  return [
    { fact: ['When', when(c.at)] },
    { fact: ['IP address', c.ip ?? 'unknown'] },
    { fact: ['Device', describeDevice(c.userAgent)] },
  ];
}

const link = (c: MailContext, path: string, token: string) =>
  `${c.webUrl.replace(/\/$/, '')}${path}?token=${encodeURIComponent(token)}`;

export interface TemplateData {
  verify_email: { token: string; expiresAt: Date; welcome: boolean };
  password_reset: { token: string; expiresAt: Date };
  password_reset_done: Record<string, never>;
  login_new_device: Record<string, never>;
  mfa_enabled: Record<string, never>;
  mfa_disabled: Record<string, never>;
  api_key_created: { label: string; scopes: string[] };
  account_locked: { reason: string | null };
  withdrawal_requested: { asset: string; amount: string; fee: string; address: string };
  withdrawal_confirm: { asset: string; amount: string; fee: string; address: string; token: string; expiresAt: Date };
  withdrawal_sent: { asset: string; amount: string; address: string; railTxId: string };
  withdrawal_failed: { asset: string; amount: string; reason: string };
}

const NOT_YOU = 'If this was not you, change your password at once and contact support.';

const builders: { [K in TemplateName]: (c: MailContext, d: TemplateData[K]) => Content } = {
  verify_email: (c, d) => ({
    subject: d.welcome ? `Welcome to ${c.product} — confirm your email` : `Confirm your email for ${c.product}`,
    heading: d.welcome ? `Welcome to ${c.product}` : 'Confirm your email address',
    blocks: [
      {
        p: 'Please confirm that this is your email address. Until you do, you can trade with sandbox funds but not withdraw.',
      },
      { link: ['Confirm my email', link(c, '/verify-email', d.token)] },
      { p: `The link works once, until ${when(d.expiresAt)}.` },
      ...requestFacts(c),
    ],
    notYou: 'If you did not create this account, ignore this mail: nothing happens without the link.',
  }),
  password_reset: (c, d) => ({
    subject: `Reset your ${c.product} password`,
    heading: 'Reset your password',
    blocks: [
      { p: 'Someone (hopefully you) asked to reset the password of this account.' },
      { link: ['Choose a new password', link(c, '/reset-password', d.token)] },
      {
        p: `The link works once, until ${when(d.expiresAt)}. Setting a new password signs you out everywhere and revokes your API keys.`,
      },
      ...requestFacts(c),
    ],
    notYou: 'If you did not ask for this, ignore this mail: your password stays as it is.',
  }),
  password_reset_done: (c) => ({
    subject: `Your ${c.product} password was reset`,
    heading: 'Your password was reset',
    blocks: [{ p: 'Every session was signed out and every API key revoked.' }, ...requestFacts(c)],
    notYou: NOT_YOU,
  }),
  login_new_device: (c) => ({
    subject: `New sign-in to ${c.product}`,
    heading: 'New sign-in from a device we have not seen',
    blocks: requestFacts(c),
    notYou: NOT_YOU,
  }),
  mfa_enabled: (c) => ({
    subject: `Two-factor authentication turned on for ${c.product}`,
    heading: 'Two-factor authentication is on',
    blocks: [{ p: 'Your other sessions were signed out.' }, ...requestFacts(c)],
    notYou: NOT_YOU,
  }),
  mfa_disabled: (c) => ({
    subject: `Two-factor authentication turned OFF for ${c.product}`,
    heading: 'Two-factor authentication was turned off',
    blocks: [
      { p: 'Your account is now protected by its password only. Your API keys were revoked.' },
      ...requestFacts(c),
    ],
    notYou: NOT_YOU,
  }),
  api_key_created: (c, d) => ({
    subject: `New API key on ${c.product}`,
    heading: 'A new API key was created',
    blocks: [{ fact: ['Label', d.label] }, { fact: ['Scopes', d.scopes.join(', ')] }, ...requestFacts(c)],
    notYou: 'If this was not you, revoke the key, change your password and contact support.',
  }),
  account_locked: (c, d) => ({
    subject: `Your ${c.product} account was locked`,
    heading: 'Your account was locked',
    blocks: [
      {
        p: 'Our team locked this account: sign-ins, sessions and API keys no longer work. Contact support to unlock it.',
      },
      ...(d.reason ? [{ fact: ['Reason', d.reason] as [string, string] }] : []),
      { fact: ['When', when(c.at)] },
    ],
  }),
  withdrawal_requested: (c, d) => ({
    subject: `Withdrawal of ${plainAmount(d.amount)} ${d.asset} requested`,
    heading: 'Withdrawal requested',
    blocks: [
      { fact: ['Amount', `${plainAmount(d.amount)} ${d.asset} (fee ${plainAmount(d.fee)} ${d.asset})`] },
      { fact: ['To', d.address] },
      { fact: ['When', when(c.at)] },
      { p: 'You can still cancel it for a short while in your account.' },
    ],
    notYou: 'If this was not you, cancel it now, change your password and contact support.',
  }),
  withdrawal_confirm: (c, d) => ({
    subject: `Confirm your withdrawal of ${plainAmount(d.amount)} ${d.asset}`,
    heading: 'Confirm your withdrawal',
    blocks: [
      { fact: ['Amount', `${plainAmount(d.amount)} ${d.asset} (fee ${plainAmount(d.fee)} ${d.asset})`] },
      { fact: ['To', d.address] },
      { fact: ['When', when(c.at)] },
      { link: ['Confirm this withdrawal', link(c, '/confirm-withdrawal', d.token)] },
      { p: `Without confirmation by ${when(d.expiresAt)} the withdrawal is cancelled and the funds released.` },
    ],
    notYou: 'If this was not you, do not click: change your password and contact support.',
  }),
  withdrawal_sent: (c, d) => ({
    subject: `Withdrawal of ${plainAmount(d.amount)} ${d.asset} sent`,
    heading: 'Withdrawal sent',
    blocks: [
      { fact: ['Amount', `${plainAmount(d.amount)} ${d.asset}`] },
      { fact: ['To', d.address] },
      { fact: ['Transaction', d.railTxId] },
      { fact: ['When', when(c.at)] },
    ],
  }),
  withdrawal_failed: (c, d) => ({
    subject:
      d.reason === 'confirmation_expired'
        ? `Withdrawal of ${plainAmount(d.amount)} ${d.asset} cancelled (not confirmed)`
        : `Withdrawal of ${plainAmount(d.amount)} ${d.asset} failed`,
    heading: d.reason === 'confirmation_expired' ? 'Withdrawal cancelled' : 'Withdrawal failed',
    blocks: [
      { fact: ['Amount', `${plainAmount(d.amount)} ${d.asset}`] },
      {
        fact: ['Reason', d.reason === 'confirmation_expired' ? 'the confirmation link was not used in time' : d.reason],
      },
      { fact: ['When', when(c.at)] },
      { p: 'The funds are available in your account again.' },
    ],
  }),
};

export function render<K extends TemplateName>(name: K, c: MailContext, data: TemplateData[K]): RenderedMail {
  const content = builders[name](c, data);
  const text: string[] = [content.heading, ''];
  const html: string[] = [
    '<!doctype html><html><body style="font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1b1f24;max-width:560px;margin:0 auto;padding:24px">',
    `<p style="font-weight:600;color:#5b6470;margin:0 0 16px">${escapeHtml(c.product)}</p>`,
    `<h1 style="font-size:20px;margin:0 0 16px">${escapeHtml(content.heading)}</h1>`,
  ];
  let facts: string[] = [];
  const flushFacts = () => {
    if (facts.length) html.push(`<table style="border-collapse:collapse;margin:0 0 16px">${facts.join('')}</table>`);
    facts = [];
  };
  for (const b of content.blocks) {
    if ('fact' in b) {
      text.push(`${b.fact[0]}: ${b.fact[1]}`);
      facts.push(
        `<tr><td style="padding:2px 12px 2px 0;color:#5b6470">${escapeHtml(b.fact[0])}</td><td style="padding:2px 0">${escapeHtml(b.fact[1])}</td></tr>`,
      );
      continue;
    }
    flushFacts();
    if ('p' in b) {
      text.push(b.p, '');
      html.push(`<p style="margin:0 0 16px">${escapeHtml(b.p)}</p>`);
    } else {
      text.push(`${b.link[0]}: ${b.link[1]}`, '');
      html.push(
        `<p style="margin:0 0 16px"><a href="${escapeHtml(b.link[1])}" style="display:inline-block;background:#1f6feb;color:#fff;padding:10px 16px;border-radius:6px;text-decoration:none">${escapeHtml(b.link[0])}</a></p>`,
        `<p style="margin:0 0 16px;font-size:12px;color:#5b6470;word-break:break-all">${escapeHtml(b.link[1])}</p>`,
      );
    }
  }
  flushFacts();
  if (content.notYou) {
    text.push('', content.notYou);
    html.push(`<p style="margin:16px 0 0;color:#5b6470">${escapeHtml(content.notYou)}</p>`);
  }
  text.push('', `— ${c.product}`);
  html.push(
    `<p style="margin:24px 0 0;font-size:12px;color:#8b949e">${escapeHtml(c.product)} · automated account notice</p>`,
    '</body></html>',
  );
  return { subject: content.subject, text: text.join('\n'), html: html.join('\n') };
}
