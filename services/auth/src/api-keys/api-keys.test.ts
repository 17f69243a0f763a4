import { createHash } from 'node:crypto';
import { createApp, Type, type App } from '@exchange/platform';
import { registerAuth, requireAuth, requireScope, signApiRequest } from '@exchange/auth-client';
import {
  bearer,
  enrolTotp,
  INTERNAL_TOKEN,
  newUnverifiedUser,
  newUser,
  PASSWORD,
  startAuth,
  type Harness,
} from '../testing/index.ts';

// The auth service listens on a real port; a downstream service verifies through @exchange/auth-client exactly as
// wallet/order do: JWKS over HTTP, revoked sessions over HTTP, API keys via POST /internal/api-keys/verify.
let h: Harness;
let downstream: App;
let user: Awaited<ReturnType<typeof newUser>>;

beforeAll(async () => {
  h = await startAuth();
  const address = await h.app.listen({ host: '127.0.0.1', port: 0 });
  downstream = await createApp({ service: 'downstream', fastify: { logger: false } });
  registerAuth(downstream, {
    jwksUrl: `${address}/.well-known/jwks.json`,
    issuer: 'exchange-auth',
    audience: 'exchange-api',
    internalToken: INTERNAL_TOKEN,
    revocation: { refreshMs: 0 },
  });
  downstream.get('/api/v1/wallet/balances', { onRequest: requireScope('read') }, async (req) => ({
    user: req.principal!.id,
    via: req.principal!.via,
  }));
  downstream.post(
    '/api/v1/orders',
    {
      onRequest: [requireAuth, requireScope('trade')],
      schema: { body: Type.Object({ market: Type.String(), qty: Type.String() }) },
    },
    async (req) => ({ ok: true, qty: req.body.qty }),
  );
  await downstream.ready();
  user = await newUser(h.app, 'bot-owner@example.com');
});
afterAll(async () => {
  await downstream.close();
  await h.close();
});

const createKey = async (scopes: string[], token = user.accessToken) => {
  const res = await h.app.inject({
    method: 'POST',
    url: '/api/v1/auth/api-keys',
    headers: bearer(token),
    payload: { label: 'my bot', scopes },
  });
  expect(res.statusCode).toBe(201);
  return res.json() as { id: string; apiKey: string; secret: string; scopes: string[] };
};
const body = JSON.stringify({ market: 'BTC-USD', qty: '0.5' });
const order = (headers: Record<string, string>, payload = body, url = '/api/v1/orders?src=bot') =>
  downstream.inject({ method: 'POST', url, headers: { 'content-type': 'application/json', ...headers }, payload });
const sign = (
  k: { apiKey: string; secret: string },
  extra: { timestamp?: number; path?: string; body?: string } = {},
) =>
  signApiRequest({
    ...k,
    method: 'POST',
    path: extra.path ?? '/api/v1/orders?src=bot',
    body: extra.body ?? body,
    ...(extra.timestamp ? { timestamp: extra.timestamp } : {}),
  });

describe('API keys', () => {
  test('create (secret once), list (no secret), stored encrypted + looked up by hash', async () => {
    const k = await createKey(['read', 'trade']);
    expect(k.apiKey).toMatch(/^ak_[0-9a-f]{32}$/);
    expect(k.secret.length).toBeGreaterThanOrEqual(40);
    const list = await h.app.inject({ method: 'GET', url: '/api/v1/auth/api-keys', headers: bearer(user.accessToken) });
    expect(list.statusCode).toBe(200);
    expect(JSON.stringify(list.json())).not.toContain(k.secret);
    expect(list.json().apiKeys.find((x: { id: string }) => x.id === k.id)).toMatchObject({
      scopes: ['read', 'trade'],
      label: 'my bot',
      keyPrefix: k.apiKey.slice(0, 10),
    });
    const { rows } = await h.db.pool.query('SELECT * FROM auth.api_keys WHERE id = $1', [k.id]);
    expect(rows[0].key_id_hash).toBe(createHash('sha256').update(k.apiKey).digest('hex'));
    expect(JSON.stringify(rows[0])).not.toContain(k.secret);
    expect(JSON.stringify(rows[0])).not.toContain(k.apiKey);
    expect(rows[0].secret_enc).toMatch(/^v1\./);
  });

  test('a signed request passes; the body reaches the handler intact', async () => {
    const k = await createKey(['read', 'trade']);
    const res = await order(sign(k));
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ok: true, qty: '0.5' });
    const get = await downstream.inject({
      method: 'GET',
      url: '/api/v1/wallet/balances',
      headers: signApiRequest({ ...k, method: 'GET', path: '/api/v1/wallet/balances' }),
    });
    expect(get.json()).toEqual({ user: user.user.id, via: 'api_key' });
  });

  test.each([
    [
      'wrong secret',
      (k: { apiKey: string; secret: string }) => order(sign({ ...k, secret: 'not-the-secret' })),
      'INVALID_API_SIGNATURE',
    ],
    [
      'tampered body',
      (k: { apiKey: string; secret: string }) => order(sign(k), JSON.stringify({ market: 'BTC-USD', qty: '50' })),
      'INVALID_API_SIGNATURE',
    ],
    [
      'other path signed',
      (k: { apiKey: string; secret: string }) => order(sign(k, { path: '/api/v1/orders' })),
      'INVALID_API_SIGNATURE',
    ],
    [
      'timestamp 31 s old',
      (k: { apiKey: string; secret: string }) => order(sign(k, { timestamp: Date.now() - 31_000 })),
      'API_TIMESTAMP_OUT_OF_WINDOW',
    ],
    [
      'timestamp 31 s ahead',
      (k: { apiKey: string; secret: string }) => order(sign(k, { timestamp: Date.now() + 31_000 })),
      'API_TIMESTAMP_OUT_OF_WINDOW',
    ],
    [
      'unknown key',
      (k: { apiKey: string; secret: string }) => order(sign({ ...k, apiKey: 'ak_00000000000000000000000000000000' })),
      'INVALID_API_KEY',
    ],
  ])('%s → 401', async (_n, run, code) => {
    const k = await createKey(['trade']);
    const res = await run(k);
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe(code);
  });

  test('within the window still passes (29 s old)', async () => {
    const k = await createKey(['trade']);
    expect((await order(sign(k, { timestamp: Date.now() - 29_000 }))).statusCode).toBe(200);
  });

  test('a replayed signature is rejected and audited', async () => {
    const k = await createKey(['trade']);
    const headers = sign(k);
    expect((await order(headers)).statusCode).toBe(200);
    const replay = await order(headers);
    expect(replay.statusCode).toBe(401);
    expect(replay.json().error.code).toBe('API_SIGNATURE_REPLAYED');
    const { rows } = await h.db.pool.query(
      `SELECT details FROM auth.audit_log WHERE action = 'security.api_signature_replay'`,
    );
    expect(rows.some((r) => r.details.apiKeyId === k.id)).toBe(true);
  });

  test('scopes are enforced downstream', async () => {
    const k = await createKey(['read']);
    const res = await order(sign(k));
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe('INSUFFICIENT_SCOPE');
  });

  test('revoke: the key stops working; deleting again is 404; other users cannot delete it', async () => {
    const k = await createKey(['trade']);
    const other = await newUser(h.app, 'someone-else@example.com');
    const foreign = await h.app.inject({
      method: 'DELETE',
      url: `/api/v1/auth/api-keys/${k.id}`,
      headers: bearer(other.accessToken),
    });
    expect(foreign.statusCode).toBe(404);
    const del = await h.app.inject({
      method: 'DELETE',
      url: `/api/v1/auth/api-keys/${k.id}`,
      headers: bearer(user.accessToken),
    });
    expect(del.statusCode).toBe(204);
    expect((await order(sign(k))).json().error.code).toBe('INVALID_API_KEY');
    expect(
      (
        await h.app.inject({
          method: 'DELETE',
          url: `/api/v1/auth/api-keys/${k.id}`,
          headers: bearer(user.accessToken),
        })
      ).statusCode,
    ).toBe(404);
    expect(
      (
        await h.app.inject({
          method: 'DELETE',
          url: '/api/v1/auth/api-keys/not-a-uuid',
          headers: bearer(user.accessToken),
        })
      ).statusCode,
    ).toBe(400);
  });

  test('bad create input → 400', async () => {
    for (const payload of [
      { label: 'x', scopes: [] },
      { label: 'x', scopes: ['admin'] },
      { label: '', scopes: ['read'] },
      { scopes: ['read'] },
    ]) {
      const res = await h.app.inject({
        method: 'POST',
        url: '/api/v1/auth/api-keys',
        headers: bearer(user.accessToken),
        payload,
      });
      expect(res.statusCode).toBe(400);
    }
  });

  test('the internal verifier needs the internal token', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/internal/api-keys/verify',
      payload: { apiKey: 'a', timestamp: '1', signature: 'x', method: 'GET', path: '/', bodyBase64: '' },
    });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('INVALID_INTERNAL_TOKEN');
  });
});

describe('API keys cannot get around 2FA or revocation', () => {
  const create = (token: string, payload: object) =>
    h.app.inject({ method: 'POST', url: '/api/v1/auth/api-keys', headers: bearer(token), payload });
  const from = (k: { apiKey: string; secret: string }, ip: string) =>
    downstream.inject({
      method: 'POST',
      url: '/api/v1/orders?src=bot',
      headers: { 'content-type': 'application/json', ...sign(k) },
      payload: body,
      remoteAddress: ip,
    });

  test('a withdraw key needs 2FA enrolled, a fresh check and an IP allow-list', async () => {
    const plain = await newUser(h.app, 'no-2fa-bot@example.com');
    const res = await create(plain.accessToken, { label: 'w', scopes: ['withdraw'], allowedIps: ['10.0.0.0/8'] });
    expect([res.statusCode, res.json().error.code]).toEqual([403, 'MFA_ENROLMENT_REQUIRED']);
    const owner = await newUser(h.app, 'withdraw-bot@example.com');
    const e = await enrolTotp(h.app, owner.accessToken);
    const noList = await create(e.accessToken, { label: 'w', scopes: ['withdraw'] });
    expect([noList.statusCode, noList.json().error.code]).toEqual([400, 'IP_ALLOWLIST_REQUIRED']);
    const bad = await create(e.accessToken, { label: 'w', scopes: ['withdraw'], allowedIps: ['10.0.0.0/99'] });
    expect(bad.json().error.code).toBe('INVALID_IP');
    await h.db.pool.query(`UPDATE auth.sessions SET mfa_at = now() - interval '1 hour'`);
    const stale = (
      await h.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken: owner.refreshToken } })
    ).json();
    const old = await create(stale.accessToken, { label: 'w', scopes: ['withdraw'], allowedIps: ['10.0.0.0/8'] });
    expect(old.json().error.code).toBe('MFA_REQUIRED');
  });

  test('a withdraw key needs a verified email (EMAIL_NOT_VERIFIED); other scopes do not', async () => {
    const u = await newUnverifiedUser(h.app, 'unverified-bot@example.com');
    const e = await enrolTotp(h.app, u.accessToken);
    const res = await create(e.accessToken, { label: 'w', scopes: ['withdraw'], allowedIps: ['10.0.0.0/8'] });
    expect([res.statusCode, res.json().error.code]).toEqual([403, 'EMAIL_NOT_VERIFIED']);
    const read = await create(e.accessToken, { label: 'r', scopes: ['read', 'trade'] });
    expect(read.statusCode).toBe(201);
    await h.db.pool.query(`UPDATE auth.users SET email_verified_at = now() WHERE email = 'unverified-bot@example.com'`);
    const ok = await create(e.accessToken, { label: 'w', scopes: ['withdraw'], allowedIps: ['10.0.0.0/8'] });
    expect(ok.statusCode).toBe(201);
  });

  test('IP allow-list and expiry are enforced downstream', async () => {
    const owner = await newUser(h.app, 'ip-bot@example.com');
    const res = await create(owner.accessToken, {
      label: 'ip',
      scopes: ['trade'],
      allowedIps: ['10.20.0.0/16', '2001:db8::1'],
      expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
    });
    expect(res.statusCode).toBe(201);
    const k = res.json();
    expect(k.allowedIps).toEqual(['10.20.0.0/16', '2001:db8::1/128']);
    expect((await from(k, '10.20.3.4')).statusCode).toBe(200);
    const outside = await from(k, '10.21.0.1');
    expect([outside.statusCode, outside.json().error.code]).toEqual([401, 'API_KEY_IP_NOT_ALLOWED']);
    await h.db.pool.query(`UPDATE auth.api_keys SET expires_at = now() - interval '1 second' WHERE id = $1`, [k.id]);
    expect((await from(k, '10.20.3.4')).json().error.code).toBe('INVALID_API_KEY');
    const past = await create(owner.accessToken, { label: 'x', scopes: ['read'], expiresAt: '2001-01-01T00:00:00Z' });
    expect(past.json().error.code).toBe('INVALID_EXPIRY');
  });

  test('a password change and turning 2FA off revoke every key; creation is in the security log', async () => {
    const owner = await newUser(h.app, 'revoke-bot@example.com');
    const k1 = await createKey(['trade'], owner.accessToken);
    expect((await order(sign(k1))).statusCode).toBe(200);
    const log = await h.app.inject({
      method: 'GET',
      url: '/api/v1/auth/security-log',
      headers: bearer(owner.accessToken),
    });
    expect(log.json().events.map((e: { action: string }) => e.action)).toContain('auth.api_key_created');
    const pw = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/password',
      headers: bearer(owner.accessToken),
      payload: { currentPassword: PASSWORD, newPassword: 'another long passphrase 42' },
    });
    expect(pw.statusCode).toBe(204);
    expect((await order(sign(k1))).json().error.code).toBe('INVALID_API_KEY');

    const e = await enrolTotp(h.app, owner.accessToken, 'another long passphrase 42');
    const k2 = await createKey(['trade'], e.accessToken);
    expect((await order(sign(k2))).statusCode).toBe(200);
    const off = await h.app.inject({ method: 'POST', url: '/api/v1/auth/2fa/disable', headers: bearer(e.accessToken) });
    expect(off.statusCode).toBe(204);
    expect((await order(sign(k2))).json().error.code).toBe('INVALID_API_KEY');
  });
});

describe('downstream JWT verification against the real auth service', () => {
  test('a session token works downstream until logout, then SESSION_REVOKED', async () => {
    const s = await newUser(h.app, 'downstream@example.com');
    const get = () =>
      downstream.inject({ method: 'GET', url: '/api/v1/wallet/balances', headers: bearer(s.accessToken) });
    expect((await get()).statusCode).toBe(200);
    await h.app.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: bearer(s.accessToken) });
    const res = await get();
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('SESSION_REVOKED');
  });

  test('after key rotation, tokens of the new kid verify downstream (unknown kid → JWKS refetch)', async () => {
    await h.keys.rotate({ immediately: true });
    const s = await newUser(h.app, 'rotated@example.com');
    const res = await downstream.inject({
      method: 'GET',
      url: '/api/v1/wallet/balances',
      headers: bearer(s.accessToken),
    });
    expect(res.statusCode).toBe(200);
  });
});
