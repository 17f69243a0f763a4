/**
 * The attacker's suite (docs/security.md): each test is an attack from the threat model, run against the real
 * services as processes, through the gateway where the attack would come through it. A test passes when the attack
 * fails; each one failed before its control existed.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { KNOWN_DEVELOPMENT_SECRETS } from '@exchange/config';
import { ADMIN, staffAccessToken, startTestStack, type TestStack } from '@exchange/e2e';
import { createGateway } from '@exchange/local-gateway';
import { ExchangeClient } from '@exchange/sdk';
import { ROOT } from '@exchange/stack';

let t: TestStack;
beforeAll(async () => {
  // The local gateway is the load balancer's neighbour here: it trusts one hop (TRUST_PROXY=true), like Kong with
  // trustedProxies.edge set; each test client "is" the X-Forwarded-For address it sends.
  t = await startTestStack({ services: ['auth', 'wallet', 'order', 'gateway'] });
}, 180_000);
afterAll(async () => t?.close(), 60_000);

const gw = () => t.url('gateway');
let ipSeq = 1;
const freshIp = () => `198.51.${100 + Math.floor(ipSeq / 250)}.${ipSeq++ % 250}`;

async function call(
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; ip?: string; base?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; json: any }> {
  const res = await fetch(`${opts.base ?? gw()}${path}`, {
    method,
    headers: {
      'x-forwarded-for': opts.ip ?? freshIp(),
      ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
      ...opts.headers,
    },
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
  });
  return { status: res.status, json: await res.json().catch(() => ({})) };
}

async function newUser(): Promise<{ email: string; password: string; token: string; id: string }> {
  const email = `target-${randomUUID().slice(0, 8)}@sec.test`;
  const password = `Pw-${randomBytes(9).toString('base64url')}-x9`;
  expect((await call('POST', '/api/v1/auth/register', { body: { email, password } })).status).toBe(202);
  const login = await call('POST', '/api/v1/auth/login', { body: { email, password } });
  expect(login.status).toBe(200);
  return { email, password, token: login.json.accessToken, id: login.json.user.id };
}

const failedChecks = async (email: string) =>
  (
    await t.db.pool.query(
      `SELECT count(*)::int AS n FROM auth.audit_log WHERE action = 'auth.login_failed' AND details->>'email' = $1`,
      [email],
    )
  ).rows[0].n as number;

test('a stolen admin password without 2FA opens no admin route, reads included, in any service', async () => {
  // the seeded admin before anyone enrolled its 2FA: exactly what a phished or leaked password gives
  const login = await call('POST', '/api/v1/auth/login', { body: ADMIN, ip: '10.0.0.7' });
  expect(login.status).toBe(200);
  expect(login.json.mfaEnrolmentRequired).toBe(true);
  for (const [method, path] of [
    ['GET', '/api/v1/admin/audit'],
    ['GET', `/api/v1/admin/users?email=${encodeURIComponent(ADMIN.email)}`],
    ['GET', '/api/v1/admin/backups'],
    ['POST', '/api/v1/admin/feature-flags/trading/disable'],
    ['GET', '/api/v1/admin/feature-flags'],
    ['GET', '/api/v1/admin/reconciliation/reports'],
    ['POST', '/api/v1/admin/feature-flags/withdrawals/disable'],
  ] as const) {
    const r = await call(method, path, {
      token: login.json.accessToken,
      ip: '10.0.0.7', // inside the admin allow-list: only 2FA stands in the way
      ...(method === 'POST' ? { body: { reason: 'attack' } } : {}),
    });
    expect({ method, path, status: r.status, code: r.json.error?.code }).toEqual({
      method,
      path,
      status: 403,
      code: 'MFA_ENROLMENT_REQUIRED',
    });
  }
});

test('a bare access token of a user without 2FA cannot mint a withdraw-scoped API key', async () => {
  const u = await newUser();
  const r = await call('POST', '/api/v1/auth/api-keys', {
    token: u.token,
    body: { label: 'drain', scopes: ['read', 'withdraw'], allowedIps: ['203.0.113.0/24'] },
  });
  expect([r.status, r.json.error.code]).toEqual([403, 'MFA_ENROLMENT_REQUIRED']);
});

test('50 parallel wrong passwords from 50 addresses: at most LOGIN_ACCOUNT_POW_LIMIT are checked', async () => {
  const u = await newUser();
  const results = await Promise.all(
    Array.from({ length: 50 }, () =>
      call('POST', '/api/v1/auth/login', { body: { email: u.email, password: 'guess-guess-guess' } }),
    ),
  );
  const checked = await failedChecks(u.email);
  expect(results.filter((r) => r.status === 401)).toHaveLength(checked);
  expect(checked).toBeLessThanOrEqual(10);
  expect(results.filter((r) => r.json.error?.code === 'PROOF_OF_WORK_REQUIRED').length).toBe(50 - checked);
});

test('50 parallel wrong 2FA codes: at most the backoff allowance (3) is checked', async () => {
  const u = await newUser();
  const token = await staffAccessToken(t.url('auth'), { email: u.email, password: u.password }); // enrols TOTP
  const results = await Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      call('POST', '/api/v1/auth/2fa/challenge', {
        token,
        body: { totpCode: String(100000 + i * 7) }, // wrong with overwhelming odds (3 of 10^6 codes are right)
      }),
    ),
  );
  const checked = results.filter((r) => r.json.error?.code === 'INVALID_MFA_CODE').length;
  expect(checked).toBeLessThanOrEqual(3);
  // the rest were refused unchecked: by the per-user/per-session code throttle, or already by the gateway's per-user limit
  expect(results.filter((r) => r.status === 429).length).toBe(50 - checked);
  expect(results.some((r) => r.json.error?.code === 'MFA_THROTTLED')).toBe(true);
});

test('locking another user out does not work: after a distributed guessing run the owner still logs in', async () => {
  const victim = await newUser();
  for (let i = 0; i < 15; i++) {
    await call('POST', '/api/v1/auth/login', { body: { email: victim.email, password: `wrong-${i}-wrong` } });
  }
  // the owner, from their own address: a proof of work (a second or two for a real client), never a lock
  const ip = freshIp();
  const asked = await call('POST', '/api/v1/auth/login', {
    body: { email: victim.email, password: victim.password },
    ip,
  });
  expect(asked.json.error.code).toBe('PROOF_OF_WORK_REQUIRED');
  // the owner's client (the SDK, and the CLI through it) solves the challenge by itself and is in
  const client = new ExchangeClient({ baseUrl: gw(), headers: { 'x-forwarded-for': ip }, retries: 0 });
  const ok = await client.login({ email: victim.email, password: victim.password });
  expect(ok.user.id).toBe(victim.id);
  expect(client.getSession()?.accessToken).toBeTruthy();
});

test('spoofed X-Forwarded-For behind a load balancer: the leftmost entry opens no admin route', async () => {
  const token = await staffAccessToken(t.url('auth'), ADMIN);
  // inside: the load balancer saw 10.0.0.8
  expect((await call('GET', '/api/v1/admin/audit?limit=1', { token, ip: '10.0.0.8' })).status).toBe(200);
  // outside: the client claims 10.0.0.8, the load balancer appends what it saw
  const spoofed = await call('GET', '/api/v1/admin/audit?limit=1', { token, ip: '10.0.0.8, 203.0.113.9' });
  expect(spoofed.status).toBe(403);
});

test('spoofed X-Forwarded-For with no proxy in front: ignored, so rotating it dodges no login limit', async () => {
  const direct = await createGateway({
    kongConfigPath: join(ROOT, 'kong/kong.yml'),
    upstreams: {
      auth: t.url('auth'),
      wallet: t.url('wallet'),
      order: t.url('order'),
      'payment-processor': t.url('order'),
    },
    trustProxy: false,
    perUserLimits: false,
  });
  const url = await direct.listen({ host: '127.0.0.1', port: 0 });
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) {
      const r = await call('POST', '/api/v1/auth/login', {
        base: url,
        body: { email: 'nobody@sec.test', password: 'whatever-it-is' },
        ip: `203.0.113.${i + 1}`,
      });
      statuses.push(r.status);
    }
    expect(statuses.at(-1)).toBe(429); // the route's 10 per minute per client IP: the client IP is the TCP peer
  } finally {
    await direct.close();
  }
});

test("one service's credential does not open another service's internal routes", async () => {
  const userId = randomUUID();
  const kyc = (token: string) =>
    fetch(`${t.url('wallet')}/internal/users/${userId}/kyc-tier`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', 'x-internal-token': token },
      body: JSON.stringify({ tier: 9 }),
    });
  const asOrder = await kyc(t.stack.internalTokenOf('order'));
  expect(asOrder.status).toBe(403);
  expect(((await asOrder.json()) as any).error.code).toBe('INTERNAL_CALLER_FORBIDDEN');
  expect((await kyc(t.stack.internalTokenOf('kyc'))).status).toBe(200);
  // and nothing internal is routed by the gateway at all
  expect((await call('PUT', `/internal/users/${userId}/kyc-tier`, { body: { tier: 9 } })).status).toBe(404);
});

test('a known development secret in production mode: the service refuses to start', () => {
  const r = spawnSync(
    process.execPath,
    ['--input-type=module', '-e', "import('./services/auth/src/config.ts').then((m) => m.loadConfig())"],
    {
      cwd: ROOT,
      encoding: 'utf8',
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'production',
        INTERNAL_API_TOKEN: KNOWN_DEVELOPMENT_SECRETS[1],
        INTERNAL_CALLERS: `wallet:${randomBytes(24).toString('hex')}`,
        SIGNING_KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
        API_KEY_ENCRYPTION_KEY: KNOWN_DEVELOPMENT_SECRETS[3],
      },
    },
  );
  expect(r.status).toBe(78);
  expect(r.stderr).toMatch(/INTERNAL_API_TOKEN: is a known development value/);
  expect(r.stderr).toMatch(/API_KEY_ENCRYPTION_KEY: is a known development value/);
});

test("a locked user's open WebSocket loses its private channel within the revocation poll", async () => {
  const u = await newUser();
  const ws = new WebSocket(`${gw().replace('http', 'ws')}/api/v1/stream`, ['bearer', u.token]);
  const frames: any[] = [];
  ws.addEventListener('message', (e) => frames.push(JSON.parse(String(e.data))));
  await new Promise((resolve, reject) => {
    ws.addEventListener('open', resolve);
    ws.addEventListener('error', reject);
  });
  try {
    const until = async (pred: (f: any) => boolean, ms: number) => {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        const f = frames.find(pred);
        if (f) return f;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`no such frame in ${JSON.stringify(frames)}`);
    };
    await until((f) => f.type === 'authenticated', 5000);
    ws.send(JSON.stringify({ op: 'subscribe', channels: ['orders'] }));
    await until((f) => f.type === 'subscribed', 5000);
    const admin = await staffAccessToken(t.url('auth'), ADMIN);
    const lock = await call('POST', `/api/v1/admin/users/${u.id}/lock`, {
      token: admin,
      ip: '10.0.0.8',
      body: { reason: 'account takeover' },
    });
    expect(lock.status).toBe(200);
    const revoked = await until((f) => f.type === 'error', 15_000);
    expect(revoked.code).toBe('SESSION_REVOKED');
  } finally {
    ws.close();
  }
});
