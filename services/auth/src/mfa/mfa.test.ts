import { generate } from 'otplib';
import jwt from 'jsonwebtoken';
import { signApiRequest } from '@exchange/auth-client';
import { bearer, login, newUser, PASSWORD, startAuth, type Harness } from '../testing/index.ts';

let h: Harness;
beforeAll(async () => {
  h = await startAuth({ MFA_FRESH_SECONDS: '60' });
});
afterAll(async () => {
  await h.close();
});

const now = () => Math.floor(Date.now() / 1000);
// A code for the step `offset` steps away; the server accepts one step either side, and each step only once.
const code = (secret: string, offset = 0) => generate({ secret, epoch: now() + offset * 30 });
const post = (url: string, token: string | undefined, payload?: object) =>
  h.app.inject({ method: 'POST', url, headers: token ? bearer(token) : {}, ...(payload ? { payload } : {}) });

async function enrol(email: string) {
  const s = await newUser(h.app, email);
  const setup = await post('/api/v1/auth/2fa/setup', s.accessToken, { password: PASSWORD });
  expect(setup.statusCode).toBe(200);
  const { secret, otpauthUri } = setup.json();
  expect(otpauthUri).toMatch(/^otpauth:\/\/totp\/.*secret=/);
  const verify = await post('/api/v1/auth/2fa/verify', s.accessToken, { totpCode: await code(secret) });
  expect(verify.statusCode).toBe(200);
  return { s, secret, ...(verify.json() as { accessToken: string; recoveryCodes: string[] }) };
}

describe('TOTP 2FA', () => {
  test('setup + verify enables 2FA, returns 10 recovery codes and a token with mfa_at', async () => {
    const e = await enrol('totp@example.com');
    expect(e.recoveryCodes).toHaveLength(10);
    const claims = jwt.decode(e.accessToken) as jwt.JwtPayload;
    expect(claims.mfa).toBe(true);
    expect(Math.abs(claims.mfa_at - now())).toBeLessThan(5);
    const me = await h.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: bearer(e.accessToken) });
    expect(me.json().mfaEnabled).toBe(true);
    const { rows } = await h.db.pool.query('SELECT totp_secret_enc FROM auth.users WHERE id = $1', [e.s.user.id]);
    expect(rows[0].totp_secret_enc).not.toContain(e.secret); // encrypted at rest
    expect((await post('/api/v1/auth/2fa/setup', e.accessToken, { password: PASSWORD })).json().error.code).toBe(
      'MFA_ALREADY_ENABLED',
    );
  });

  test('setup needs the current password (a stolen access token cannot enrol another authenticator)', async () => {
    const s = await newUser(h.app, 'thief-target@example.com');
    const res = await post('/api/v1/auth/2fa/setup', s.accessToken, { password: 'not the password at all' });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('INVALID_CREDENTIALS');
    expect((await post('/api/v1/auth/2fa/setup', s.accessToken)).statusCode).toBe(400);
  });

  test('a wrong code does not enable 2FA', async () => {
    const s = await newUser(h.app, 'wrongcode@example.com');
    await post('/api/v1/auth/2fa/setup', s.accessToken, { password: PASSWORD });
    const res = await post('/api/v1/auth/2fa/verify', s.accessToken, { totpCode: '000000' });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('INVALID_MFA_CODE');
    expect((await post('/api/v1/auth/2fa/verify', s.accessToken, { totpCode: 'abc' })).statusCode).toBe(400);
  });

  test('login then asks for the code; a code works once', async () => {
    const e = await enrol('login2fa@example.com');
    const ask = await post('/api/v1/auth/login', undefined, { email: 'login2fa@example.com', password: PASSWORD });
    expect(ask.statusCode).toBe(401);
    expect(ask.json().error.code).toBe('MFA_REQUIRED');
    const c = await code(e.secret, 1); // the enrolment used the current step
    const ok = await login(h.app, 'login2fa@example.com', PASSWORD, { totpCode: c });
    expect((jwt.decode(ok.accessToken) as jwt.JwtPayload).mfa_at).toBeGreaterThan(now() - 5);
    const replay = await post('/api/v1/auth/login', undefined, {
      email: 'login2fa@example.com',
      password: PASSWORD,
      totpCode: c,
    });
    expect(replay.statusCode).toBe(401);
    expect(replay.json().error.code).toBe('INVALID_MFA_CODE');
  });

  test('recovery codes log in, each only once', async () => {
    const e = await enrol('recovery@example.com');
    const rc = e.recoveryCodes[0]!;
    const ok = await login(h.app, 'recovery@example.com', PASSWORD, { recoveryCode: rc.toLowerCase() });
    expect(ok.accessToken).toBeTruthy();
    const again = await post('/api/v1/auth/login', undefined, {
      email: 'recovery@example.com',
      password: PASSWORD,
      recoveryCode: rc,
    });
    expect(again.statusCode).toBe(401);
    expect(again.json().error.code).toBe('INVALID_MFA_CODE');
    await login(h.app, 'recovery@example.com', PASSWORD, { recoveryCode: e.recoveryCodes[1]! });
    const { rows } = await h.db.pool.query('SELECT code_hash FROM auth.recovery_codes WHERE user_id = $1', [
      e.s.user.id,
    ]);
    expect(rows.map((r) => r.code_hash)).not.toContain(rc); // stored hashed
  });
});

describe('step-up (fresh 2FA) for sensitive actions', () => {
  test('API key creation needs a fresh 2FA check; 2fa/challenge issues a token with a new mfa_at', async () => {
    const e = await enrol('stepup@example.com');
    // a session whose 2FA check is older than MFA_FRESH_SECONDS (60 s): simulate by backdating mfa_at
    const old = await login(h.app, 'stepup@example.com', PASSWORD, { recoveryCode: e.recoveryCodes[0]! });
    await h.db.pool.query(`UPDATE auth.sessions SET mfa_at = now() - interval '10 minutes' WHERE id = $1`, [
      old.sessionId,
    ]);
    const refreshed = (await post('/api/v1/auth/refresh', undefined, { refreshToken: old.refreshToken })).json();
    const create = (token: string) => post('/api/v1/auth/api-keys', token, { label: 'bot', scopes: ['read', 'trade'] });
    const denied = await create(refreshed.accessToken);
    expect(denied.statusCode).toBe(403);
    expect(denied.json().error.code).toBe('MFA_REQUIRED');

    expect(
      (await post('/api/v1/auth/2fa/challenge', refreshed.accessToken, { totpCode: '123456' })).json().error.code,
    ).toBe('INVALID_MFA_CODE');
    const step = await post('/api/v1/auth/2fa/challenge', refreshed.accessToken, {
      totpCode: await code(e.secret, 1),
    });
    expect(step.statusCode).toBe(200);
    const fresh = step.json().accessToken;
    expect((jwt.decode(fresh) as jwt.JwtPayload).sid).toBe(old.sessionId);
    const created = await create(fresh);
    expect(created.statusCode).toBe(201);

    // the step-up is remembered by the session: a refresh keeps the new mfa_at
    const after = (await post('/api/v1/auth/refresh', undefined, { refreshToken: refreshed.refreshToken })).json();
    expect((await create(after.accessToken)).statusCode).toBe(201);
  });

  test('step-up with a recovery code; without 2FA the challenge is 409', async () => {
    const e = await enrol('stepup2@example.com');
    const res = await post('/api/v1/auth/2fa/challenge', e.accessToken, { recoveryCode: e.recoveryCodes[3]! });
    expect(res.statusCode).toBe(200);
    const plain = await newUser(h.app, 'no2fa@example.com');
    expect(
      (await post('/api/v1/auth/2fa/challenge', plain.accessToken, { totpCode: '123456' })).json().error.code,
    ).toBe('MFA_NOT_ENABLED');
    // users without 2FA are not asked for it
    expect((await post('/api/v1/auth/api-keys', plain.accessToken, { label: 'b', scopes: ['read'] })).statusCode).toBe(
      201,
    );
  });

  test('API keys are not accepted by the auth service itself', async () => {
    const res = await h.app.inject({
      method: 'GET',
      url: '/api/v1/auth/me',
      headers: signApiRequest({ apiKey: 'ak_x', secret: 'y', method: 'GET', path: '/api/v1/auth/me' }),
    });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('API_KEY_NOT_ACCEPTED');
  });
});

describe('guessing codes', () => {
  /** A well-formed code that is none of the three the server would accept right now. */
  const wrong = async (secret: string, i: number) => {
    const valid = new Set(await Promise.all([-1, 0, 1].map((o) => code(secret, o))));
    let c = (100000 + i * 7919) % 1_000_000;
    while (valid.has(String(c).padStart(6, '0'))) c = (c + 1) % 1_000_000;
    return String(c).padStart(6, '0');
  };

  test('50 parallel wrong step-up codes: only the backoff allowance is checked', async () => {
    const e = await enrol('parallel-mfa@example.com');
    const codes = await Promise.all(Array.from({ length: 50 }, (_, i) => wrong(e.secret, i)));
    const results = await Promise.all(
      codes.map((c) => post('/api/v1/auth/2fa/challenge', e.accessToken, { totpCode: c })),
    );
    const checked = results.filter((r) => r.json().error.code === 'INVALID_MFA_CODE').length;
    const throttled = results.filter((r) => r.json().error.code === 'MFA_THROTTLED').length;
    expect(checked + throttled).toBe(50);
    expect(checked).toBeLessThanOrEqual(3); // LOGIN_ACCOUNT_SOFT_LIMIT (default 3), backoff ≥ 1 s after that
  });

  test('one session has a lifetime budget of wrong codes, whatever the per-user window does', async () => {
    const p = await startAuth({
      MFA_SESSION_MAX_FAILURES: '4',
      LOGIN_BACKOFF_BASE_MS: '0',
      LOGIN_ACCOUNT_SOFT_LIMIT: '50',
      LOGIN_ACCOUNT_LOCK_LIMIT: '50',
    });
    try {
      const s = await newUser(p.app, 'budget@example.com');
      const setup = await p.app.inject({
        method: 'POST',
        url: '/api/v1/auth/2fa/setup',
        headers: bearer(s.accessToken),
        payload: { password: PASSWORD },
      });
      const secret = setup.json().secret as string;
      const seen: string[] = [];
      for (let i = 0; i < 6; i++) {
        const r = await p.app.inject({
          method: 'POST',
          url: '/api/v1/auth/2fa/verify',
          headers: bearer(s.accessToken),
          payload: { totpCode: await wrong(secret, i) },
        });
        seen.push(r.json().error.code);
      }
      expect(seen).toEqual([
        'INVALID_MFA_CODE',
        'INVALID_MFA_CODE',
        'INVALID_MFA_CODE',
        'INVALID_MFA_CODE',
        'MFA_THROTTLED',
        'MFA_THROTTLED',
      ]);
      // the right code does not help this session any more either
      const right = await p.app.inject({
        method: 'POST',
        url: '/api/v1/auth/2fa/verify',
        headers: bearer(s.accessToken),
        payload: { totpCode: await code(secret) },
      });
      expect(right.json().error.code).toBe('MFA_THROTTLED');
      // a new session (which needs the password again) starts a new budget
      const s2 = await login(p.app, 'budget@example.com');
      const ok = await p.app.inject({
        method: 'POST',
        url: '/api/v1/auth/2fa/verify',
        headers: bearer(s2.accessToken),
        payload: { totpCode: await code(secret) },
      });
      expect(ok.statusCode).toBe(200);
    } finally {
      await p.close();
    }
  });
});

test('enabling 2FA revokes every other session of the user', async () => {
  const first = await newUser(h.app, 'two-sessions@example.com');
  const other = await login(h.app, 'two-sessions@example.com');
  const setup = await post('/api/v1/auth/2fa/setup', first.accessToken, { password: PASSWORD });
  const verify = await post('/api/v1/auth/2fa/verify', first.accessToken, {
    totpCode: await code(setup.json().secret),
  });
  expect(verify.statusCode).toBe(200);
  const me = (token: string) => h.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: bearer(token) });
  expect((await me(other.accessToken)).json().error.code).toBe('SESSION_REVOKED');
  expect((await me(verify.json().accessToken)).statusCode).toBe(200);
});
