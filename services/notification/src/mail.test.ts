/**
 * Account mails end to end, against a real SMTP server started here (smtp-server + mailparser), real PostgreSQL and
 * RabbitMQ: the auth service (its outbox relayed to a private vhost), the wallet, and this service's consumer and
 * sender. Every mail is found by its recipient, so the tests do not see each other's mails.
 */
import { randomBytes } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '@exchange/db/testing';
import { createMessaging, silentLogger, type Messaging } from '@exchange/messaging';
import { createTestVhost, type TestVhost } from '@exchange/messaging/testing';
import { promClient } from '@exchange/platform';
import { bearer, enrolTotp, INTERNAL_TOKEN, newAdmin, PASSWORD, startAuth, type Harness } from '@exchange/auth/testing';
import { assertLedgerInvariants, fundUser, startTestWallet, type TestWallet } from '@exchange/wallet/testing';
import { signApiRequest } from '@exchange/auth-client';
import { authContacts } from './contacts.ts';
import { runMigrations } from './migrate.ts';
import { createRuntime, type Runtime } from './runtime.ts';
import { smtpTransport } from './sender.ts';
import { plainAmount } from './templates/index.ts';
import { startTestSmtp, type CaughtMail, type TestSmtp } from './testing/index.ts';

const WEB = 'https://exchange.test';
const UA = 'Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0';
const BTC_ADDRESS = 'bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq';
const FORGOT_MIN_MS = 300;

let smtp: TestSmtp;
let vhost: TestVhost;
let auth: Harness;
let authUrl: string;
let authRelay: Messaging;
let db: TestDatabase;
let rt: Runtime;
let registry: promClient.Registry;
let wallet: TestWallet;

const email = (tag: string) => `${tag}-${randomBytes(4).toString('hex')}@example.com`;
const tokenIn = (m: CaughtMail, path: string) => {
  const match = new RegExp(`${WEB.replace(/\./g, '\\.')}${path}\\?token=([A-Za-z0-9._%-]+)`).exec(m.text);
  if (!match) throw new Error(`no ${path} link in mail "${m.subject}":\n${m.text}`);
  return decodeURIComponent(match[1]!);
};
const mailTo = (to: string, template: string, timeoutMs?: number) =>
  smtp.waitFor((m) => m.to === to && m.template === template, timeoutMs);

async function call(
  base: 'auth' | 'wallet',
  method: string,
  url: string,
  opts: { token?: string; body?: unknown } = {},
) {
  const inject = base === 'auth' ? auth.app : wallet.app;
  const res = await inject.inject({
    method: method as 'GET',
    url,
    headers: { 'user-agent': UA, ...(opts.token ? bearer(opts.token) : {}) },
    ...(opts.body !== undefined ? { payload: opts.body as object } : {}),
  });
  return { status: res.statusCode, json: res.body ? (res.json() as Record<string, any>) : {} };
}

async function register(addr: string) {
  const r = await call('auth', 'POST', '/api/v1/auth/register', { body: { email: addr, password: PASSWORD } });
  expect(r.status).toBe(202);
}
async function login(addr: string, password = PASSWORD) {
  const r = await call('auth', 'POST', '/api/v1/auth/login', { body: { email: addr, password } });
  if (r.status !== 200) throw new Error(`login ${r.status} ${JSON.stringify(r.json)}`);
  return r.json as { accessToken: string; refreshToken: string; user: { id: string } };
}
/** Register, follow the verification link, log in. */
async function verifiedUser(tag: string) {
  const addr = email(tag);
  await register(addr);
  const token = tokenIn(await mailTo(addr, 'verify_email'), '/verify-email');
  expect((await call('auth', 'POST', '/api/v1/auth/email/verify', { body: { token } })).status).toBe(200);
  return { email: addr, ...(await login(addr)) };
}

beforeAll(async () => {
  smtp = await startTestSmtp();
  vhost = await createTestVhost('notification');
  auth = await startAuth({
    AMQP_URL: vhost.url,
    PASSWORD_FORGOT_MIN_MS: String(FORGOT_MIN_MS),
    PASSWORD_FORGOT_EMAIL_LIMIT: '3',
    EMAIL_RESEND_LIMIT: '3',
  });
  authUrl = await auth.app.listen({ host: '127.0.0.1', port: 0 });
  db = await createTestDatabase('notification');
  await runMigrations(db.pool);
  registry = new promClient.Registry();
  rt = createRuntime({
    pool: db.pool,
    amqpUrl: vhost.url,
    registry,
    logger: silentLogger,
    contacts: authContacts({ authUrl, internalToken: INTERNAL_TOKEN }),
    transport: smtpTransport({
      host: '127.0.0.1',
      port: smtp.port,
      secure: false,
      requireTls: false,
      timeoutMs: 2_000,
    }),
    from: 'Exchange Test <no-reply@exchange.test>',
    product: 'Exchange Test',
    webUrl: WEB,
    maxAttempts: 100,
    retryBaseMs: 200,
    retryMaxMs: 1_000,
    pollMs: 100,
    queueOverrides: { retry: { attempts: 3, backoffMs: [200, 500, 1_000] } },
  });
  await rt.start();
  wallet = await startTestWallet({
    pool: db.pool,
    amqpUrl: vhost.url,
    auth: {
      jwksUrl: `${authUrl}/.well-known/jwks.json`,
      issuer: auth.config.JWT_ISSUER,
      audience: auth.config.JWT_AUDIENCE,
      internalToken: INTERNAL_TOKEN,
      revocation: { refreshMs: 0 },
    },
    settings: {
      withdrawalEmailConfirmThresholds: '{"BTC":"0.5"}',
      withdrawalEmailConfirmTtlS: 600,
      // confirmed withdrawals stay pending (no payment-processor here)
      withdrawalDispatchDelayMs: 600_000,
    },
  });
  // after the consumer declared and bound its queue: nothing the relay publishes is unrouted
  authRelay = createMessaging({
    url: vhost.url,
    service: 'auth',
    pool: auth.db.pool,
    schema: 'auth',
    logger: silentLogger,
    relay: { pollIntervalMs: 100, inboxRetentionMs: 0 },
  });
  await authRelay.start();
}, 120_000);

afterAll(async () => {
  await wallet?.close();
  await authRelay?.close();
  await rt?.stop();
  await auth?.close();
  await db?.drop();
  await vhost?.drop();
  await smtp?.close();
});

describe('email verification', () => {
  test('register → a mail with a working link; reused, altered and expired links are refused', async () => {
    const addr = email('verify');
    await register(addr);
    const mail = await mailTo(addr, 'verify_email');
    expect(mail.subject).toBe('Welcome to Exchange Test — confirm your email');
    expect(mail.text).toContain('Firefox on Linux');
    expect(mail.text).toContain('IP address: 127.0.0.1');
    expect(mail.text).toMatch(/When: \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC/);
    expect(mail.html).toContain(`href="${WEB}/verify-email?token=`);
    expect(mail.messageId).toBe(`<${mail.eventId}@exchange.test>`);
    const token = tokenIn(mail, '/verify-email');

    const session = await login(addr);
    const me = await call('auth', 'GET', '/api/v1/auth/me', { token: session.accessToken });
    expect(me.json.emailVerified).toBe(false);

    const altered = token.slice(0, -2) + (token.endsWith('AA') ? 'BB' : 'AA');
    const bad = await call('auth', 'POST', '/api/v1/auth/email/verify', { body: { token: altered } });
    expect([bad.status, bad.json.error.code]).toEqual([400, 'INVALID_TOKEN']);

    const ok = await call('auth', 'POST', '/api/v1/auth/email/verify', { body: { token } });
    expect([ok.status, ok.json]).toEqual([200, { emailVerified: true }]);
    const again = await call('auth', 'POST', '/api/v1/auth/email/verify', { body: { token } });
    expect([again.status, again.json.error.code]).toEqual([400, 'INVALID_TOKEN']);
    expect((await call('auth', 'GET', '/api/v1/auth/me', { token: session.accessToken })).json.emailVerified).toBe(
      true,
    );

    // expired: a resent link (the first one stops working), past its expiry
    const other = email('expired');
    await register(other);
    const first = tokenIn(await mailTo(other, 'verify_email'), '/verify-email');
    const s2 = await login(other);
    const resend = await call('auth', 'POST', '/api/v1/auth/email/resend', { token: s2.accessToken });
    expect([resend.status, resend.json]).toEqual([202, { sent: true }]);
    const second = await smtp.waitFor(
      (m) => m.to === other && m.template === 'verify_email' && !m.text.includes(encodeURIComponent(first)),
    );
    expect(second.subject).toBe('Confirm your email for Exchange Test');
    const stale = await call('auth', 'POST', '/api/v1/auth/email/verify', { body: { token: first } });
    expect([stale.status, stale.json.error.code]).toEqual([400, 'INVALID_TOKEN']);
    await auth.db.pool.query(
      `UPDATE auth.email_tokens SET expires_at = now() - interval '1 second'
        WHERE user_id = $1 AND used_at IS NULL`,
      [s2.user.id],
    );
    const expired = await call('auth', 'POST', '/api/v1/auth/email/verify', {
      body: { token: tokenIn(second, '/verify-email') },
    });
    expect([expired.status, expired.json.error.code]).toEqual([400, 'TOKEN_EXPIRED']);
    expect((await call('auth', 'GET', '/api/v1/auth/me', { token: s2.accessToken })).json.emailVerified).toBe(false);
  });

  test('resend is rate-limited', async () => {
    const addr = email('resend');
    await register(addr);
    const s = await login(addr);
    const codes: number[] = [];
    for (let i = 0; i < 4; i++)
      codes.push((await call('auth', 'POST', '/api/v1/auth/email/resend', { token: s.accessToken })).status);
    expect(codes).toEqual([202, 202, 202, 429]);
    const r = await call('auth', 'POST', '/api/v1/auth/email/resend', { token: s.accessToken });
    expect(r.json.error.code).toBe('RATE_LIMITED');
  });

  test('unverified users cannot withdraw; after the link they can, even on their old token', async () => {
    const addr = email('unverified');
    await register(addr);
    const s = await login(addr);
    await fundUser(db.pool, s.user.id, 'BTC', 100_000_000n);
    const w = { asset: 'BTC', amount: '0.1', address: BTC_ADDRESS };
    const refused = await call('wallet', 'POST', '/api/v1/wallet/withdrawals', { token: s.accessToken, body: w });
    expect([refused.status, refused.json.error.code]).toEqual([403, 'EMAIL_NOT_VERIFIED']);
    // the token still says unverified (claim ev=false); the wallet asks auth and lets the verified user through
    const token = tokenIn(await mailTo(addr, 'verify_email'), '/verify-email');
    expect((await call('auth', 'POST', '/api/v1/auth/email/verify', { body: { token } })).status).toBe(200);
    const ok = await call('wallet', 'POST', '/api/v1/wallet/withdrawals', { token: s.accessToken, body: w });
    expect([ok.status, ok.json.status]).toEqual([201, 'pending']);
    const mail = await mailTo(addr, 'withdrawal_requested');
    expect(mail.subject).toBe('Withdrawal of 0.1 BTC requested');
  });
});

describe('password reset', () => {
  test('end to end: same answer for unknown emails and no mail; sessions, refresh tokens and API keys die', async () => {
    const u = await verifiedUser('reset');
    const other = await login(u.email); // a second session
    const key = await call('auth', 'POST', '/api/v1/auth/api-keys', {
      token: u.accessToken,
      body: { label: 'bot', scopes: ['read'] },
    });
    expect(key.status).toBe(201);
    const apiGet = async () => {
      const path = '/api/v1/wallet/balances';
      const headers = signApiRequest({
        apiKey: key.json.apiKey,
        secret: key.json.secret,
        method: 'GET',
        path,
        body: '',
      });
      const res = await wallet.app.inject({ method: 'GET', url: path, headers });
      return { status: res.statusCode, code: res.statusCode === 200 ? 'OK' : (res.json() as any).error.code };
    };
    expect((await apiGet()).status).toBe(200);

    const unknown = email('nobody');
    const t0 = Date.now();
    const a = await call('auth', 'POST', '/api/v1/auth/password/forgot', { body: { email: unknown } });
    const tUnknown = Date.now() - t0;
    const t1 = Date.now();
    const b = await call('auth', 'POST', '/api/v1/auth/password/forgot', { body: { email: u.email } });
    const tKnown = Date.now() - t1;
    expect([a.status, a.json]).toEqual([202, { accepted: true }]);
    expect([b.status, b.json]).toEqual([202, { accepted: true }]);
    expect(tUnknown).toBeGreaterThanOrEqual(FORGOT_MIN_MS - 5);
    expect(tKnown).toBeGreaterThanOrEqual(FORGOT_MIN_MS - 5);

    const mail = await mailTo(u.email, 'password_reset');
    expect(mail.subject).toBe('Reset your Exchange Test password');
    const token = tokenIn(mail, '/reset-password');

    // a weak password is refused without spending the link
    const weak = await call('auth', 'POST', '/api/v1/auth/password/reset', { body: { token, newPassword: 'short' } });
    expect([weak.status, weak.json.error.code]).toEqual([400, 'WEAK_PASSWORD']);
    const newPassword = 'a brand new passphrase 2026';
    const reset = await call('auth', 'POST', '/api/v1/auth/password/reset', { body: { token, newPassword } });
    expect([reset.status, reset.json]).toEqual([200, { reset: true }]);
    const reused = await call('auth', 'POST', '/api/v1/auth/password/reset', { body: { token, newPassword } });
    expect([reused.status, reused.json.error.code]).toEqual([400, 'INVALID_TOKEN']);

    // old sessions: access tokens and refresh tokens; API keys
    expect((await call('auth', 'GET', '/api/v1/auth/me', { token: u.accessToken })).status).toBe(401);
    expect((await call('auth', 'GET', '/api/v1/auth/me', { token: other.accessToken })).status).toBe(401);
    const refresh = await call('auth', 'POST', '/api/v1/auth/refresh', { body: { refreshToken: other.refreshToken } });
    expect([refresh.status, refresh.json.error.code]).toEqual([401, 'SESSION_REVOKED']);
    expect((await call('wallet', 'GET', '/api/v1/wallet/balances', { token: u.accessToken })).status).toBe(401);
    expect(await apiGet()).toEqual({ status: 401, code: 'INVALID_API_KEY' });
    // the old password is gone, the new one works
    const old = await call('auth', 'POST', '/api/v1/auth/login', { body: { email: u.email, password: PASSWORD } });
    expect(old.status).toBe(401);
    await login(u.email, newPassword);
    await mailTo(u.email, 'password_reset_done');

    // nothing was mailed to, nor published for, the unknown address
    await authRelay.relay!.drained();
    const { rows } = await auth.db.pool.query(`SELECT 1 FROM auth.outbox WHERE message->'payload'->>'email' = $1`, [
      unknown,
    ]);
    expect(rows).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 500));
    expect(smtp.mails.filter((m) => m.to === unknown)).toHaveLength(0);
  });

  test('an expired reset link is refused; forgot is rate-limited per email', async () => {
    const u = await verifiedUser('reset-expiry');
    await call('auth', 'POST', '/api/v1/auth/password/forgot', { body: { email: u.email } });
    const token = tokenIn(await mailTo(u.email, 'password_reset'), '/reset-password');
    await auth.db.pool.query(
      `UPDATE auth.email_tokens SET expires_at = now() - interval '1 second' WHERE user_id = $1 AND used_at IS NULL`,
      [u.user.id],
    );
    const r = await call('auth', 'POST', '/api/v1/auth/password/reset', {
      body: { token, newPassword: 'another fine passphrase 77' },
    });
    expect([r.status, r.json.error.code]).toEqual([400, 'TOKEN_EXPIRED']);
    expect((await call('auth', 'GET', '/api/v1/auth/me', { token: u.accessToken })).status).toBe(200);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      statuses.push((await call('auth', 'POST', '/api/v1/auth/password/forgot', { body: { email: u.email } })).status);
    }
    // 1 above + 2 more pass (limit 3 per hour), the next is refused
    expect(statuses).toEqual([202, 202, 429]);
  });
});

describe('withdrawal confirmation by email', () => {
  test('above the threshold it waits for the link; an expired link cancels it and releases the hold exactly', async () => {
    const u = await verifiedUser('withdraw');
    await fundUser(db.pool, u.user.id, 'BTC', 200_000_000n); // 2 BTC
    const balances = async () => {
      const r = await call('wallet', 'GET', '/api/v1/wallet/balances', { token: u.accessToken });
      const b = (r.json.balances as Array<{ asset: string; available: string; held: string }>).find(
        (x) => x.asset === 'BTC',
      )!;
      return { available: plainAmount(b.available), held: plainAmount(b.held) };
    };
    // 0.5 is the threshold (at or above waits); two of them fit the 1 BTC daily limit of KYC tier 0
    const body = { asset: 'BTC', amount: '0.5', address: BTC_ADDRESS };

    const first = await call('wallet', 'POST', '/api/v1/wallet/withdrawals', { token: u.accessToken, body });
    expect(first.status).toBe(201);
    expect(first.json.status).toBe('awaiting_confirmation');
    expect(first.json.confirmationExpiresAt).toEqual(expect.any(String));
    const mail = await mailTo(u.email, 'withdrawal_confirm');
    expect(mail.subject).toBe('Confirm your withdrawal of 0.5 BTC');
    expect(mail.text).toContain(BTC_ADDRESS);
    const token = tokenIn(mail, '/confirm-withdrawal');
    // it waits: scheduler passes do not dispatch it, and no "requested" mail besides the confirmation
    await wallet.scheduler.tick();
    const waiting = await call('wallet', 'GET', `/api/v1/wallet/withdrawals/${first.json.id}`, {
      token: u.accessToken,
    });
    expect(waiting.json.status).toBe('awaiting_confirmation');

    const altered = await call('wallet', 'POST', '/api/v1/wallet/withdrawals/confirm', {
      body: { token: token + 'x' },
    });
    expect([altered.status, altered.json.error.code]).toEqual([400, 'INVALID_TOKEN']);
    const confirmed = await call('wallet', 'POST', '/api/v1/wallet/withdrawals/confirm', { body: { token } });
    expect(confirmed.status).toBe(200);
    expect(confirmed.json).toEqual({
      ...waiting.json,
      status: 'pending',
      confirmationExpiresAt: null,
      updatedAt: expect.any(String),
    });
    const reused = await call('wallet', 'POST', '/api/v1/wallet/withdrawals/confirm', { body: { token } });
    expect([reused.status, reused.json.error.code]).toEqual([400, 'INVALID_TOKEN']);
    const afterFirst = await balances();
    expect(afterFirst).toMatchObject({ available: '1.4999', held: '0.5001' });

    // the second one is never confirmed: its link expires, the sweeper cancels it and releases exactly its hold
    await wallet.scheduler.stop();
    const second = await call('wallet', 'POST', '/api/v1/wallet/withdrawals', { token: u.accessToken, body });
    expect(second.json.status).toBe('awaiting_confirmation');
    expect(await balances()).toMatchObject({ available: '0.9998', held: '1.0002' });
    const secondToken = tokenIn(
      await smtp.waitFor((m) => m.to === u.email && m.template === 'withdrawal_confirm' && m.eventId !== mail.eventId),
      '/confirm-withdrawal',
    );
    await db.pool.query(
      `UPDATE wallet.withdrawals SET confirm_expires_at = now() - interval '1 second' WHERE id = $1`,
      [second.json.id],
    );
    const late = await call('wallet', 'POST', '/api/v1/wallet/withdrawals/confirm', { body: { token: secondToken } });
    expect([late.status, late.json.error.code]).toEqual([400, 'TOKEN_EXPIRED']);
    wallet.scheduler.start(); // the sweeper cancels it on its next pass
    let cancelled = await call('wallet', 'GET', `/api/v1/wallet/withdrawals/${second.json.id}`, {
      token: u.accessToken,
    });
    for (let i = 0; i < 100 && cancelled.json.status === 'awaiting_confirmation'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      cancelled = await call('wallet', 'GET', `/api/v1/wallet/withdrawals/${second.json.id}`, { token: u.accessToken });
    }
    expect([cancelled.json.status, cancelled.json.failureReason]).toEqual(['cancelled', 'confirmation_expired']);
    expect(await balances()).toEqual(afterFirst);
    const again = await call('wallet', 'POST', '/api/v1/wallet/withdrawals/confirm', { body: { token: secondToken } });
    expect([again.status, again.json.error.code]).toEqual([400, 'INVALID_TOKEN']);
    const notice = await mailTo(u.email, 'withdrawal_failed');
    expect(notice.subject).toBe('Withdrawal of 0.5 BTC cancelled (not confirmed)');
    await assertLedgerInvariants(db.pool);

    // below the threshold: no link, the usual flow and mail
    const small = await call('wallet', 'POST', '/api/v1/wallet/withdrawals', {
      token: u.accessToken,
      body: { ...body, amount: '0.1' },
    });
    expect(small.json.status).toBe('pending');
    await mailTo(u.email, 'withdrawal_requested');
  });
});

describe('security notices', () => {
  test('new device, API key, 2FA on and off, account locked: each mailed once with time, IP and device', async () => {
    const u = await verifiedUser('notices');
    // the same browser again is not new; another device is
    await login(u.email);
    const other = await auth.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      headers: { 'user-agent': 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1' },
      payload: { email: u.email, password: PASSWORD },
    });
    expect(other.statusCode).toBe(200);
    const device = await mailTo(u.email, 'login_new_device');
    expect(device.subject).toBe('New sign-in to Exchange Test');
    expect(device.text).toContain('Device: Safari on iOS');
    expect(device.text).toContain('IP address: 127.0.0.1');

    const key = await call('auth', 'POST', '/api/v1/auth/api-keys', {
      token: u.accessToken,
      body: { label: 'my bot', scopes: ['read', 'trade'] },
    });
    expect(key.status).toBe(201);
    const keyMail = await mailTo(u.email, 'api_key_created');
    expect(keyMail.text).toContain('Label: my bot');
    expect(keyMail.text).toContain('Scopes: read, trade');

    const e = await enrolTotp(auth.app, u.accessToken);
    expect((await mailTo(u.email, 'mfa_enabled')).subject).toBe(
      'Two-factor authentication turned on for Exchange Test',
    );
    // the enrolment's token carries a fresh 2FA check
    const off = await call('auth', 'POST', '/api/v1/auth/2fa/disable', { token: e.accessToken });
    expect(off.status).toBe(204);
    expect((await mailTo(u.email, 'mfa_disabled')).subject).toBe(
      'Two-factor authentication turned OFF for Exchange Test',
    );

    const admin = await newAdmin(auth, email('admin'));
    const lock = await call('auth', 'POST', `/api/v1/admin/users/${u.user.id}/lock`, {
      token: admin.accessToken,
      body: { reason: 'suspicious activity' },
    });
    expect(lock.status).toBe(200);
    const locked = await mailTo(u.email, 'account_locked');
    expect(locked.text).toContain('Reason: suspicious activity');

    await new Promise((r) => setTimeout(r, 500));
    const mine = smtp.mails.filter((m) => m.to === u.email);
    expect(mine.map((m) => m.template).sort()).toEqual(
      ['account_locked', 'api_key_created', 'login_new_device', 'mfa_disabled', 'mfa_enabled', 'verify_email'].sort(),
    );
  });
});

describe('SMTP outage', () => {
  test('events during the outage lose nothing: the mails go out when SMTP returns, each exactly once', async () => {
    const before = smtp.mails.length;
    await smtp.stop();
    const addrs = [email('outage-a'), email('outage-b'), email('outage-c')];
    // requests succeed while mail is down
    for (const a of addrs) await register(a);
    const s = await login(addrs[0]!);
    expect((await call('auth', 'POST', '/api/v1/auth/password/forgot', { body: { email: addrs[1]! } })).status).toBe(
      202,
    );
    // every mail exists and has failed at least once
    const deadline = Date.now() + 30_000;
    for (;;) {
      const { rows } = await db.pool.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM notification.mails WHERE to_address = ANY($1) AND status = 'pending' AND attempts > 0`,
        [addrs],
      );
      if (Number(rows[0]!.n) === 4) break;
      if (Date.now() > deadline) throw new Error(`expected 4 failed-and-pending mails, have ${rows[0]!.n}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(smtp.mails.length).toBe(before);
    const failed = (await registry.getSingleMetricAsString('mail_failed_total')).match(
      /template="verify_email"} (\d+)/,
    );
    expect(Number(failed?.[1] ?? 0)).toBeGreaterThan(0);

    await smtp.start();
    for (const a of addrs) await mailTo(a, 'verify_email');
    await mailTo(addrs[1]!, 'password_reset');
    await new Promise((r) => setTimeout(r, 1_500)); // room for any duplicate to show up
    const got = smtp.mails.filter((m) => addrs.includes(m.to));
    expect(got).toHaveLength(4);
    expect(new Set(got.map((m) => m.eventId)).size).toBe(4);
    const { rows } = await db.pool.query<{ status: string; body_cleared: boolean }>(
      `SELECT status, text_body IS NULL AND html_body IS NULL AS body_cleared FROM notification.mails
        WHERE to_address = ANY($1)`,
      [addrs],
    );
    expect(rows).toHaveLength(4);
    expect(rows.every((r) => r.status === 'sent' && r.body_cleared)).toBe(true);
    expect(s.accessToken).toBeTruthy();
  });
});
