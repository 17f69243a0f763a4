import { createHmac, createPublicKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { bearer, login, newUser, PASSWORD, register, startAuth, type Harness } from './testing/index.ts';

let h: Harness;
beforeAll(async () => {
  h = await startAuth({ SIGNING_KEY_ACTIVATION_DELAY_SECONDS: '2' });
});
afterAll(async () => {
  await h.close();
});

const me = (token: string) => h.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: bearer(token) });
const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

describe('register, login, me', () => {
  test('register → login → me; tokens are RS256 with iss, aud, sub, exp ≤ 15 min, jti, roles, kid, typ at+jwt', async () => {
    await register(h.app, 'alice@example.com');
    const s = await login(h.app, 'ALICE@Example.com');
    const decoded = jwt.decode(s.accessToken, { complete: true })!;
    const p = decoded.payload as jwt.JwtPayload;
    expect(decoded.header).toMatchObject({ alg: 'RS256', typ: 'at+jwt' });
    expect(typeof decoded.header.kid).toBe('string');
    expect(p).toMatchObject({
      iss: 'exchange-auth',
      aud: 'exchange-api',
      sub: s.user.id,
      roles: ['user'],
      sid: s.sessionId,
    });
    expect(p.exp! - p.iat!).toBeLessThanOrEqual(900);
    expect(typeof p.jti).toBe('string');
    expect(s.refreshToken).toMatch(/^rt_/);
    const res = await me(s.accessToken);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ id: s.user.id, email: 'alice@example.com', roles: ['user'], mfaEnabled: false });
  });

  test('the JWKS publishes the signing key', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
    expect(res.statusCode).toBe(200);
    const { keys } = res.json();
    expect(keys[0]).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig' });
    expect(keys[0].d).toBeUndefined();
  });

  test('registering an existing email answers exactly like a new one', async () => {
    const a = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/register',
      payload: { email: 'dup@example.com', password: PASSWORD },
    });
    const b = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/register',
      payload: { email: 'dup@example.com', password: 'another long passphrase' },
    });
    expect([a.statusCode, b.statusCode]).toEqual([202, 202]);
    expect(a.json()).toEqual(b.json());
    await login(h.app, 'dup@example.com', PASSWORD); // the first password still works
  });

  test.each([
    ['short', 'Ab1!xyz', 'WEAK_PASSWORD'],
    ['common', 'password1234', 'WEAK_PASSWORD'],
    ['contains the email', 'carol.smith-is-great', 'WEAK_PASSWORD'],
    ['repetitive', 'aaaaaaaaaaaaaaaa', 'WEAK_PASSWORD'],
  ])('password policy: %s → 400', async (_n, password, code) => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/register',
      payload: { email: 'carol.smith@example.com', password },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe(code);
  });

  test.each([
    ['no body', undefined],
    ['bad email', { email: 'nope', password: PASSWORD }],
    ['extra field', { email: 'x@example.com', password: PASSWORD, roles: ['admin'] }],
    ['number password', { email: 'x@example.com', password: 123 }],
  ])('bad input: %s → 400', async (_n, payload) => {
    const res = await h.app.inject({ method: 'POST', url: '/api/v1/auth/register', payload: payload as never });
    expect(res.statusCode).toBe(400);
  });

  test('argon2id hashes with the configured parameters', async () => {
    const { rows } = await h.db.pool.query(`SELECT password_hash FROM auth.users WHERE email = 'alice@example.com'`);
    expect(rows[0].password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  });
});

describe('token matrix on /me', () => {
  let s: Awaited<ReturnType<typeof login>>;
  let kid: string;
  let pem: string;
  let privateKey: string;
  beforeAll(async () => {
    s = await newUser(h.app, 'matrix@example.com');
    kid = jwt.decode(s.accessToken, { complete: true })!.header.kid!;
    pem = await h.keys.publicKey(kid);
    // the real private key, to build tokens that differ from valid ones in one property only
    const { rows } = await h.db.pool.query('SELECT private_key_enc FROM auth.signing_keys WHERE kid = $1', [kid]);
    const { Sealer } = await import('./crypto.ts');
    privateKey = new Sealer(h.config.SIGNING_KEY_ENCRYPTION_KEY).open(rows[0].private_key_enc, kid);
  });
  const payload = (extra: object = {}) => ({
    sub: s.user.id,
    roles: ['user'],
    sid: s.sessionId,
    mfa: false,
    jti: randomUUID(),
    iss: 'exchange-auth',
    aud: 'exchange-api',
    iat: now(),
    exp: now() + 600,
    ...extra,
  });
  const sign = (p: object, header: object = {}) =>
    jwt.sign(p, privateKey, { algorithm: 'RS256', header: { alg: 'RS256', typ: 'at+jwt', kid, ...header } });

  test('control: a token built this way is accepted', async () => {
    expect((await me(sign(payload()))).statusCode).toBe(200);
  });

  const cases: Array<[string, () => string]> = [
    ['alg none', () => `${b64({ alg: 'none', typ: 'at+jwt', kid })}.${b64(payload())}.`],
    [
      'HS256 signed with the public key',
      () => {
        const unsigned = `${b64({ alg: 'HS256', typ: 'at+jwt', kid })}.${b64(payload())}`;
        return `${unsigned}.${createHmac('sha256', pem).update(unsigned).digest('base64url')}`;
      },
    ],
    ['wrong iss', () => sign(payload({ iss: 'someone-else' }))],
    ['wrong aud', () => sign(payload({ aud: 'another-api' }))],
    ['expired', () => sign(payload({ iat: now() - 1200, exp: now() - 300 }))],
    ['nbf in the future', () => sign(payload({ nbf: now() + 300 }))],
    [
      'tampered payload',
      () => {
        const [hd, , sig] = sign(payload()).split('.');
        return `${hd}.${b64(payload({ roles: ['admin'] }))}.${sig}`;
      },
    ],
    ['unknown kid', () => sign(payload(), { kid: 'no-such-kid' })],
    [
      'foreign key with our kid',
      () =>
        jwt.sign(payload(), generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, {
          algorithm: 'RS256',
          header: { alg: 'RS256', typ: 'at+jwt', kid },
        }),
    ],
    ['session does not exist', () => sign(payload({ sid: randomUUID() }))],
  ];
  test.each(cases)('%s → 401', async (_n, make) => {
    const res = await me(make());
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toMatch(/^(INVALID_TOKEN|TOKEN_EXPIRED|SESSION_REVOKED)$/);
  });

  test('revoked session → 401 SESSION_REVOKED', async () => {
    const t = await login(h.app, 'matrix@example.com');
    await h.app.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: bearer(t.accessToken) });
    const res = await me(t.accessToken);
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('SESSION_REVOKED');
  });

  test('the public key PEM is really the one published (HS256 case is meaningful)', () => {
    expect(createPublicKey(pem).asymmetricKeyType).toBe('rsa');
  });
});

describe('refresh rotation (RFC 9700)', () => {
  const refresh = (refreshToken: string) =>
    h.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken } });

  test('each refresh rotates; reusing a spent token revokes the family and is audited', async () => {
    const s = await newUser(h.app, 'rotate@example.com');
    const r1 = await refresh(s.refreshToken);
    expect(r1.statusCode).toBe(200);
    const p1 = r1.json();
    expect(p1.refreshToken).not.toBe(s.refreshToken);
    expect(p1.sessionId).toBe(s.sessionId);
    const r2 = await refresh(p1.refreshToken);
    expect(r2.statusCode).toBe(200);
    const p2 = r2.json();

    // the attacker replays the first (spent) token
    const reuse = await refresh(s.refreshToken);
    expect(reuse.statusCode).toBe(401);
    expect(reuse.json().error.code).toBe('REFRESH_TOKEN_REUSED');

    // the whole family is dead: the newest refresh token and the newest access token
    const after = await refresh(p2.refreshToken);
    expect(after.statusCode).toBe(401);
    expect(after.json().error.code).toBe('SESSION_REVOKED');
    expect((await me(p2.accessToken)).json().error.code).toBe('SESSION_REVOKED');

    const { rows } = await h.db.pool.query(
      `SELECT * FROM auth.audit_log WHERE action = 'security.refresh_token_reuse' AND target_id = $1`,
      [s.user.id],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0].details.sessionId).toBe(s.sessionId);
    const metrics = await h.app.metrics.registry.getSingleMetricAsString('auth_security_events_total');
    expect(metrics).toMatch(/event="refresh_token_reuse"\S* 1/);
  });

  test('other sessions survive a reuse in one session', async () => {
    await register(h.app, 'two@example.com');
    const a = await login(h.app, 'two@example.com');
    const b = await login(h.app, 'two@example.com');
    await refresh(a.refreshToken);
    await refresh(a.refreshToken);
    expect((await me(b.accessToken)).statusCode).toBe(200);
    expect((await refresh(b.refreshToken)).statusCode).toBe(200);
  });

  test('unknown refresh token → 401', async () => {
    const res = await refresh('rt_not-a-real-token-at-all');
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('INVALID_REFRESH_TOKEN');
  });

  test('logout revokes the session: refresh and access tokens stop working', async () => {
    const s = await newUser(h.app, 'bye@example.com');
    const out = await h.app.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: bearer(s.accessToken) });
    expect(out.statusCode).toBe(204);
    expect((await refresh(s.refreshToken)).json().error.code).toBe('SESSION_REVOKED');
    expect((await me(s.accessToken)).statusCode).toBe(401);
    expect((await h.app.inject({ method: 'POST', url: '/api/v1/auth/logout' })).statusCode).toBe(401);
  });
});

describe('password change', () => {
  test('needs the current password; revokes the other sessions, keeps this one; new password works', async () => {
    await register(h.app, 'changer@example.com');
    const a = await login(h.app, 'changer@example.com');
    const b = await login(h.app, 'changer@example.com');
    const change = (currentPassword: string, newPassword: string) =>
      h.app.inject({
        method: 'POST',
        url: '/api/v1/auth/password',
        headers: bearer(a.accessToken),
        payload: { currentPassword, newPassword },
      });
    expect((await change('wrong current password', 'a brand new passphrase')).json().error.code).toBe(
      'INVALID_CREDENTIALS',
    );
    expect((await change(PASSWORD, 'short')).json().error.code).toBe('WEAK_PASSWORD');
    expect((await change(PASSWORD, 'a brand new passphrase')).statusCode).toBe(204);
    expect((await me(a.accessToken)).statusCode).toBe(200);
    expect((await me(b.accessToken)).json().error.code).toBe('SESSION_REVOKED');
    await login(h.app, 'changer@example.com', 'a brand new passphrase');
    const old = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { email: 'changer@example.com', password: PASSWORD },
    });
    expect(old.statusCode).toBe(401);
  });
});

describe('sessions', () => {
  test('list your sessions and revoke another device; others cannot touch yours', async () => {
    await register(h.app, 'devices@example.com');
    const phone = await login(h.app, 'devices@example.com');
    const laptop = await login(h.app, 'devices@example.com');
    const list = await h.app.inject({
      method: 'GET',
      url: '/api/v1/auth/sessions',
      headers: bearer(laptop.accessToken),
    });
    const sessions = list.json().sessions as Array<{ id: string; current: boolean }>;
    expect(sessions.map((x) => x.id).sort()).toEqual([phone.sessionId, laptop.sessionId].sort());
    expect(sessions.find((x) => x.current)!.id).toBe(laptop.sessionId);
    const stranger = await newUser(h.app, 'stranger@example.com');
    const del = (token: string, id: string) =>
      h.app.inject({ method: 'DELETE', url: `/api/v1/auth/sessions/${id}`, headers: bearer(token) });
    expect((await del(stranger.accessToken, phone.sessionId)).statusCode).toBe(404);
    expect((await del(laptop.accessToken, phone.sessionId)).statusCode).toBe(204);
    expect((await me(phone.accessToken)).json().error.code).toBe('SESSION_REVOKED');
    expect((await del(laptop.accessToken, phone.sessionId)).statusCode).toBe(404);
  });
});

describe('signing-key rotation', () => {
  const jwksKids = async () =>
    (await h.app.inject({ method: 'GET', url: '/.well-known/jwks.json' }))
      .json()
      .keys.map((k: { kid: string }) => k.kid);
  const kidOf = (t: string) => jwt.decode(t, { complete: true })!.header.kid;

  test('publish before use: the new kid is in the JWKS at once, signs after the delay; old tokens keep working', async () => {
    const before = await newUser(h.app, 'keys@example.com');
    const oldKid = kidOf(before.accessToken);
    const { kid: newKid } = await h.keys.rotate();
    expect(newKid).not.toBe(oldKid);
    expect(await jwksKids()).toEqual(expect.arrayContaining([oldKid, newKid]));
    expect(kidOf((await login(h.app, 'keys@example.com')).accessToken)).toBe(oldKid); // not yet
    await new Promise((r) => setTimeout(r, 2200));
    const after = await login(h.app, 'keys@example.com');
    expect(kidOf(after.accessToken)).toBe(newKid);
    expect(await jwksKids()).toEqual(expect.arrayContaining([oldKid, newKid]));
    expect((await me(before.accessToken)).statusCode).toBe(200);
    expect((await me(after.accessToken)).statusCode).toBe(200);
  });

  test('immediate rotation (compromised key) signs with the new kid at once', async () => {
    const { kid } = await h.keys.rotate({ immediately: true });
    expect(kidOf((await login(h.app, 'keys@example.com')).accessToken)).toBe(kid);
  });
});
