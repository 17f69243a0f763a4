import { createHash, createHmac, createPublicKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { createApp, Type, type App } from '@exchange/platform';
import {
  parseInternalCallers,
  registerAuth,
  requireAuth,
  allOf,
  requireFreshMfa,
  requireFreshMfaOnWrites,
  requireInternalCaller,
  requireInternal,
  requireRole,
  requireScope,
  signApiRequest,
} from './index.ts';
import { createTestIssuer, type TestIssuer } from './testing.ts';

let issuer: TestIssuer;
let app: App;
const user = randomUUID();

beforeAll(async () => {
  issuer = await createTestIssuer();
  app = await createApp({ service: 'demo', fastify: { logger: false } });
  registerAuth(app, issuer.authOptions());
  app.get('/me', { onRequest: requireAuth }, async (req) => req.principal);
  app.get('/admin', { onRequest: requireRole('admin') }, async () => ({ ok: true }));
  app.get('/staff', { onRequest: requireRole('admin', 'support') }, async () => ({ ok: true }));
  app.post(
    '/orders',
    {
      preHandler: [requireAuth, requireScope('trade')],
      schema: { body: Type.Object({ qty: Type.String() }) },
    },
    async (req) => ({ ok: true, by: req.principal!.id, qty: req.body.qty }),
  );
  app.post('/withdraw', { onRequest: [requireScope('withdraw'), requireFreshMfa(300)] }, async () => ({ ok: true }));
  app.get('/internal/thing', { onRequest: requireInternal }, async () => ({ ok: true }));
  app.get('/public', async (req) => ({ principal: req.principal ?? null }));
  await app.ready();
});

afterAll(async () => {
  await app.close();
  await issuer.close();
});

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const get = (url: string, headers: Record<string, string> = {}) => app.inject({ method: 'GET', url, headers });
const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

function forge(header: object, payload: object, sig = '') {
  return `${b64(header)}.${b64(payload)}.${sig}`;
}
function validPayload(extra: object = {}) {
  return {
    sub: user,
    roles: ['admin'],
    jti: randomUUID(),
    sid: randomUUID(),
    iss: issuer.issuer,
    aud: issuer.audience,
    iat: now(),
    exp: now() + 600,
    ...extra,
  };
}
function signRs(payload: object, header: object = {}) {
  return jwt.sign(payload, issuer.privateKey, {
    algorithm: 'RS256',
    header: { alg: 'RS256', typ: 'at+jwt', kid: issuer.kid, ...header },
  });
}

describe('JWT verification', () => {
  test('a valid token yields a principal with all scopes', async () => {
    const sid = randomUUID();
    const res = await get('/me', bearer(issuer.sign({ sub: user, roles: ['user'], sid })));
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      id: user,
      roles: ['user'],
      scopes: ['read', 'trade', 'withdraw'],
      via: 'jwt',
      sessionId: sid,
    });
  });

  const matrix: Array<[string, () => string, string]> = [
    ['alg none', () => forge({ alg: 'none', typ: 'at+jwt', kid: issuer.kid }, validPayload()), 'INVALID_TOKEN'],
    [
      'HS256 signed with the public key',
      () => {
        // The classic confusion attack: HMAC keyed with the public key's PEM text, which anyone can fetch.
        const pub = String(createPublicKey(issuer.privateKey).export({ format: 'pem', type: 'spki' }));
        const unsigned = `${b64({ alg: 'HS256', typ: 'at+jwt', kid: issuer.kid })}.${b64(validPayload())}`;
        return `${unsigned}.${createHmac('sha256', pub).update(unsigned).digest('base64url')}`;
      },
      'INVALID_TOKEN',
    ],
    ['wrong iss', () => signRs(validPayload({ iss: 'evil' })), 'INVALID_TOKEN'],
    ['wrong aud', () => signRs(validPayload({ aud: 'other-api' })), 'INVALID_TOKEN'],
    ['expired', () => signRs(validPayload({ exp: now() - 60, iat: now() - 1000 })), 'TOKEN_EXPIRED'],
    ['nbf in the future', () => signRs(validPayload({ nbf: now() + 120 })), 'INVALID_TOKEN'],
    [
      'tampered payload',
      () => {
        const [h, , s] = signRs(validPayload({ roles: ['user'] })).split('.');
        return `${h}.${b64(validPayload({ roles: ['admin'] }))}.${s}`;
      },
      'INVALID_TOKEN',
    ],
    ['unknown kid', () => signRs(validPayload(), { kid: 'nope' }), 'INVALID_TOKEN'],
    [
      'signed by another key with the right kid',
      () => {
        const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
        return jwt.sign(validPayload(), other, {
          algorithm: 'RS256',
          header: { alg: 'RS256', typ: 'at+jwt', kid: issuer.kid },
        });
      },
      'INVALID_TOKEN',
    ],
    ['not an access token (typ JWT)', () => signRs(validPayload(), { typ: 'JWT' }), 'INVALID_TOKEN'],
    ['missing roles claim', () => signRs({ ...validPayload(), roles: undefined }), 'INVALID_TOKEN'],
    ['garbage', () => 'abc.def.ghi', 'INVALID_TOKEN'],
  ];
  test.each(matrix)('%s → 401', async (_name, make, code) => {
    const res = await get('/me', bearer(make()));
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe(code);
    expect(res.headers['www-authenticate']).toBe('Bearer');
  });

  test('revoked session → 401 SESSION_REVOKED; other sessions unaffected', async () => {
    const sid = randomUUID();
    const token = issuer.sign({ sub: user, sid });
    expect((await get('/me', bearer(token))).statusCode).toBe(200);
    issuer.revokeSession(sid);
    const res = await get('/me', bearer(token));
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('SESSION_REVOKED');
    expect((await get('/me', bearer(issuer.sign({ sub: user })))).statusCode).toBe(200);
  });

  test('no credential → 401 UNAUTHENTICATED; public routes ignore a bad token', async () => {
    expect((await get('/me')).json().error.code).toBe('UNAUTHENTICATED');
    const res = await get('/public', bearer('abc.def.ghi'));
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ principal: null });
  });
});

describe('guards', () => {
  test('roles', async () => {
    const t = (roles: Array<'user' | 'support' | 'admin'>) =>
      bearer(issuer.sign({ sub: user, roles, mfaAt: now() - 3600 }));
    expect((await get('/admin', t(['user']))).statusCode).toBe(403);
    expect((await get('/admin', t(['support']))).statusCode).toBe(403);
    expect((await get('/admin', t(['admin']))).statusCode).toBe(200);
    expect((await get('/staff', t(['support']))).statusCode).toBe(200);
    expect((await get('/admin')).statusCode).toBe(401);
  });

  test('staff roles without 2FA enrolled open nothing, reads included', async () => {
    for (const roles of [['admin'], ['support']] as Array<Array<'support' | 'admin'>>) {
      const res = await get('/staff', bearer(issuer.sign({ sub: user, roles })));
      expect(res.statusCode).toBe(403);
      expect(res.json().error.code).toBe('MFA_ENROLMENT_REQUIRED');
    }
    // a user-level route is unaffected
    expect((await get('/me', bearer(issuer.sign({ sub: user, roles: ['admin'] })))).statusCode).toBe(200);
  });

  test('fresh MFA: required only when 2FA is on, and must be recent', async () => {
    const post = (h: Record<string, string>) => app.inject({ method: 'POST', url: '/withdraw', headers: h });
    expect((await post(bearer(issuer.sign({ sub: user })))).statusCode).toBe(200); // 2FA off
    const stale = await post(bearer(issuer.sign({ sub: user, mfaAt: now() - 600 })));
    expect(stale.statusCode).toBe(403);
    expect(stale.json().error.code).toBe('MFA_REQUIRED');
    expect((await post(bearer(issuer.sign({ sub: user, mfaEnabled: true })))).json().error.code).toBe('MFA_REQUIRED');
    expect((await post(bearer(issuer.sign({ sub: user, mfaAt: now() - 10 })))).statusCode).toBe(200);
  });

  test('admin writes: the age comes from mfaFreshSeconds; reads pass on a stale check', async () => {
    const strict = await createApp({ service: 'strict', fastify: { logger: false } });
    registerAuth(strict, { ...issuer.authOptions(), mfaFreshSeconds: 60 });
    strict.register(async (scope) => {
      scope.addHook('onRequest', requireRole('admin'));
      scope.addHook('onRequest', requireFreshMfaOnWrites);
      scope.get('/admin/thing', async () => ({ ok: true }));
      scope.post('/admin/thing', async () => ({ ok: true }));
    });
    strict.post('/flip', { onRequest: allOf(requireRole('admin'), requireFreshMfa()) }, async () => ({ ok: true }));
    await strict.ready();
    try {
      const as = (mfaAt: number, roles: Array<'user' | 'admin'> = ['admin']) =>
        bearer(issuer.sign({ sub: user, roles, mfaAt }));
      const call = (method: 'GET' | 'POST', url: string, headers: Record<string, string>) =>
        strict.inject({ method, url, headers });
      expect((await call('GET', '/admin/thing', as(now() - 120))).statusCode).toBe(200);
      expect((await call('POST', '/admin/thing', as(now() - 120))).json().error.code).toBe('MFA_REQUIRED');
      expect((await call('POST', '/admin/thing', as(now() - 30))).statusCode).toBe(200);
      expect((await call('POST', '/flip', as(now() - 120))).json().error.code).toBe('MFA_REQUIRED');
      // the role is checked first: a non-admin learns nothing about 2FA
      expect((await call('POST', '/flip', as(now() - 120, ['user']))).json().error.code).toBe('FORBIDDEN');
      expect((await call('POST', '/flip', as(now() - 30))).statusCode).toBe(200);
      // 2FA off: an admin without 2FA is refused outright, not asked to step up
      const off = await call('POST', '/flip', bearer(issuer.sign({ sub: user, roles: ['admin'] })));
      expect(off.json().error.code).toBe('MFA_ENROLMENT_REQUIRED');
    } finally {
      await strict.close();
    }
  });

  test('internal token, compared in constant time', async () => {
    expect((await get('/internal/thing')).statusCode).toBe(401);
    expect((await get('/internal/thing', { 'x-internal-token': 'wrong' })).json().error.code).toBe(
      'INVALID_INTERNAL_TOKEN',
    );
    expect((await get('/internal/thing', { 'x-internal-token': issuer.internalToken })).statusCode).toBe(200);
  });
});

describe('scoped internal credentials', () => {
  test('each caller its own credential; a route serves only the callers it names', async () => {
    const orderToken = 'order-internal-credential-0001';
    const kycToken = 'kyc-internal-credential-000001';
    const svc = await createApp({ service: 'wallet-like', fastify: { logger: false } });
    registerAuth(svc, {
      ...issuer.authOptions(),
      internalToken: 'wallet-own-credential-000001',
      internalCallers: parseInternalCallers(
        `order:${orderToken},kyc:sha256:${createHash('sha256').update(kycToken).digest('hex')}`,
      )!,
    });
    svc.put('/internal/kyc', { onRequest: requireInternalCaller('kyc') }, async () => ({ ok: true }));
    svc.post('/internal/holds', { onRequest: requireInternalCaller('order') }, async () => ({ ok: true }));
    await svc.ready();
    try {
      const call = (method: 'PUT' | 'POST', url: string, token?: string) =>
        svc.inject({ method, url, headers: token ? { 'x-internal-token': token } : {} });
      expect((await call('POST', '/internal/holds', orderToken)).statusCode).toBe(200);
      const cross = await call('PUT', '/internal/kyc', orderToken); // the order service cannot raise a KYC tier
      expect([cross.statusCode, cross.json().error.code]).toEqual([403, 'INTERNAL_CALLER_FORBIDDEN']);
      expect((await call('PUT', '/internal/kyc', kycToken)).statusCode).toBe(200); // configured as a digest
      expect((await call('PUT', '/internal/kyc', issuer.internalToken)).statusCode).toBe(401);
      expect((await call('PUT', '/internal/kyc')).statusCode).toBe(401);
    } finally {
      await svc.close();
    }
    expect(() => parseInternalCallers('order:short')).toThrow(/INTERNAL_CALLERS/);
  });
});

describe('API keys', () => {
  const body = JSON.stringify({ qty: '1.5' });
  const post = (url: string, headers: Record<string, string>, payload = body) =>
    app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json', ...headers }, payload });

  test('a signed request is verified and the body still parses', async () => {
    const key = issuer.createApiKey(user, ['read', 'trade']);
    const res = await post('/orders?x=1', signApiRequest({ ...key, method: 'POST', path: '/orders?x=1', body }));
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ok: true, by: user, qty: '1.5' });
  });

  test('GET with an API key', async () => {
    const key = issuer.createApiKey(user, ['read']);
    const res = await get('/me', signApiRequest({ ...key, method: 'GET', path: '/me' }));
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ id: user, via: 'api_key', roles: ['user'], scopes: ['read'] });
  });

  test('bad signature, tampered body, old timestamp, replay, missing scope', async () => {
    const key = issuer.createApiKey(user, ['read', 'trade']);
    const h = signApiRequest({ ...key, method: 'POST', path: '/orders', body });
    expect((await post('/orders', { ...h, 'x-api-signature': '00'.repeat(32) })).json().error.code).toBe(
      'INVALID_API_SIGNATURE',
    );
    expect((await post('/orders', h, JSON.stringify({ qty: '9' }))).json().error.code).toBe('INVALID_API_SIGNATURE');
    const old = signApiRequest({ ...key, method: 'POST', path: '/orders', body, timestamp: Date.now() - 31_000 });
    expect((await post('/orders', old)).json().error.code).toBe('API_TIMESTAMP_OUT_OF_WINDOW');
    expect((await post('/orders', h)).statusCode).toBe(200);
    const replay = await post('/orders', h);
    expect(replay.statusCode).toBe(401);
    expect(replay.json().error.code).toBe('API_SIGNATURE_REPLAYED');
    const readOnly = issuer.createApiKey(user, ['read']);
    const r = await post('/orders', signApiRequest({ ...readOnly, method: 'POST', path: '/orders', body }));
    expect(r.statusCode).toBe(403);
    expect(r.json().error.code).toBe('INSUFFICIENT_SCOPE');
  });

  test('API keys never carry admin powers; unknown key → 401', async () => {
    const key = issuer.createApiKey(user, ['read', 'trade', 'withdraw']);
    expect((await get('/admin', signApiRequest({ ...key, method: 'GET', path: '/admin' }))).statusCode).toBe(403);
    const res = await get('/me', signApiRequest({ apiKey: 'ak_nope', secret: 'x', method: 'GET', path: '/me' }));
    expect(res.json().error.code).toBe('INVALID_API_KEY');
  });

  test('both a bearer token and an API key → 401 AMBIGUOUS_CREDENTIALS', async () => {
    const key = issuer.createApiKey(user, ['read']);
    const res = await get('/me', {
      ...signApiRequest({ ...key, method: 'GET', path: '/me' }),
      ...bearer(issuer.sign({ sub: user })),
    });
    expect(res.json().error.code).toBe('AMBIGUOUS_CREDENTIALS');
  });
});

describe('availability', () => {
  test('revocation list unreachable beyond maxStaleMs → 503 AUTH_UNAVAILABLE (fail closed)', async () => {
    const other = await createApp({ service: 'demo2', fastify: { logger: false } });
    registerAuth(other, {
      ...issuer.authOptions(),
      authServiceUrl: 'http://127.0.0.1:1', // nothing listens here
      revocation: { refreshMs: 0, maxStaleMs: 0 },
    });
    other.get('/me', { onRequest: requireAuth }, async (req) => req.principal);
    await other.ready();
    try {
      const res = await other.inject({ method: 'GET', url: '/me', headers: bearer(issuer.sign({ sub: user })) });
      expect(res.statusCode).toBe(503);
      expect(res.json().error.code).toBe('AUTH_UNAVAILABLE');
    } finally {
      await other.close();
    }
  });

  test('the raw body of API-key requests is capped by bodyLimit', async () => {
    const key = issuer.createApiKey(user, ['trade']);
    const big = JSON.stringify({ qty: 'x'.repeat(70 * 1024) });
    const res = await app.inject({
      method: 'POST',
      url: '/orders',
      headers: {
        'content-type': 'application/json',
        ...signApiRequest({ ...key, method: 'POST', path: '/orders', body: big }),
      },
      payload: big,
    });
    expect(res.statusCode).toBe(413);
  });
});
