/**
 * The SDK against a small fake API server (real HTTP on port 0) that records what it receives.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';
import { createChallenge, verifySolution, type Payload } from 'altcha-lib';
import { deriveKey } from 'altcha-lib/algorithms/sha';
import { apiKeySignature } from '@exchange/auth-client';
import { runCli, type CliIo } from './cli.ts';
import { ExchangeClient, type Session } from './client.ts';
import { ExchangeApiError } from './errors.ts';

interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}
type Handler = (req: Received, res: ServerResponse) => void;

let server: Server;
let base: string;
const received: Received[] = [];
let handler: Handler = () => undefined;

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(body === undefined ? undefined : JSON.stringify(body));
};
const envelope = (code: string, message: string, requestId = 'req-from-service') => ({
  error: { code, message, requestId },
});
const pair = (n: number) => ({
  accessToken: `access-${n}`,
  refreshToken: `refresh-${n}`,
  tokenType: 'Bearer',
  expiresIn: 900,
  sessionId: 's1',
});
const user = {
  id: 'u1',
  email: 'a@example.com',
  roles: ['user'],
  mfaEnabled: false,
  locked: false,
  createdAt: '2026-01-01T00:00:00Z',
};

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      };
      received.push(r);
      handler(r, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('no address');
  base = `http://127.0.0.1:${addr.port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  received.length = 0;
});

const fastRetries = { minBackoffMs: 10, maxBackoffMs: 20 };

/** The CLI's io, recording what it prints; `env` and the rest are the test's. */
function recordingIo(extra: Omit<CliIo, 'out' | 'err'>) {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (l: string) => void out.push(l), err: (l: string) => void err.push(l), ...extra } };
}

test('login keeps the session, sends the TOTP code, and authenticates later calls with the access token', async () => {
  handler = (r, res) => {
    if (r.url === '/api/v1/auth/login') return json(res, 200, { ...pair(1), user });
    if (r.url === '/api/v1/wallet/balances')
      return json(res, 200, { balances: [{ asset: 'USD', total: '10.00', held: '1.00', available: '9.00' }] });
    json(res, 404, envelope('NOT_FOUND', 'nope'));
  };
  const sessions: Array<Session | null> = [];
  const client = new ExchangeClient({ baseUrl: `${base}/`, onSession: (s) => void sessions.push(s) });
  const result = await client.login({ email: 'a@example.com', password: 'pw', totpCode: '123456' });
  expect(result.user.email).toBe('a@example.com');
  expect(JSON.parse(received[0]?.body ?? '{}')).toEqual({ email: 'a@example.com', password: 'pw', totpCode: '123456' });
  expect(received[0]?.headers['idempotency-key']).toBeUndefined();
  expect(sessions[0]).toMatchObject({ accessToken: 'access-1', refreshToken: 'refresh-1', user: { id: 'u1' } });
  const balances = await client.balances();
  expect(balances[0]?.available).toBe('9.00');
  expect(received[1]?.headers.authorization).toBe('Bearer access-1');
});

test('a 401 refreshes the session once (single flight for concurrent calls) and repeats the call', async () => {
  let refreshes = 0;
  handler = (r, res) => {
    if (r.url === '/api/v1/auth/refresh') {
      refreshes++;
      expect(JSON.parse(r.body)).toEqual({ refreshToken: 'refresh-1' });
      return setTimeout(() => json(res, 200, pair(2)), 30);
    }
    if (r.headers.authorization === 'Bearer access-2') return json(res, 200, { ...user });
    json(res, 401, { message: 'Unauthorized' }, { 'x-request-id': 'gw-1' }); // the gateway's (Kong's) shape
  };
  const sessions: Array<Session | null> = [];
  const client = new ExchangeClient({
    baseUrl: base,
    session: { accessToken: 'access-1', refreshToken: 'refresh-1' },
    onSession: (s) => void sessions.push(s),
  });
  const [a, b, c] = await Promise.all([client.me(), client.me(), client.me()]);
  expect([a.id, b.id, c.id]).toEqual(['u1', 'u1', 'u1']);
  expect(refreshes).toBe(1);
  expect(client.getSession()?.refreshToken).toBe('refresh-2');
  expect(sessions).toHaveLength(1);
});

test('a refused refresh ends the session and surfaces the error with its code and request id', async () => {
  handler = (r, res) => {
    if (r.url === '/api/v1/auth/refresh') return json(res, 401, envelope('REFRESH_TOKEN_REUSED', 'reused', 'req-77'));
    json(res, 401, { message: 'Unauthorized' }, { 'x-request-id': 'gw-2' });
  };
  const sessions: Array<Session | null> = [];
  const client = new ExchangeClient({
    baseUrl: base,
    session: { accessToken: 'x', refreshToken: 'spent' },
    onSession: (s) => void sessions.push(s),
  });
  const err = (await client.me().catch((e: unknown) => e)) as ExchangeApiError;
  expect(err).toBeInstanceOf(ExchangeApiError);
  expect({ status: err.status, code: err.code, requestId: err.requestId }).toEqual({
    status: 401,
    code: 'REFRESH_TOKEN_REUSED',
    requestId: 'req-77',
  });
  expect(sessions).toEqual([null]);
  expect(client.getSession()).toBeUndefined();
});

test('gateway errors get a code from the status and the request id from X-Request-Id', async () => {
  handler = (_r, res) => json(res, 413, { message: 'Request size limit exceeded' }, { 'x-request-id': 'gw-413' });
  const client = new ExchangeClient({ baseUrl: base, session: { accessToken: 'a' } });
  const err = (await client.deposit({ asset: 'USD', amount: '1' }).catch((e: unknown) => e)) as ExchangeApiError;
  expect({ status: err.status, code: err.code, requestId: err.requestId, message: err.message }).toEqual({
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
    requestId: 'gw-413',
    message: 'Request size limit exceeded',
  });
});

test('writes carry one Idempotency-Key reused by every retry; 503 and 429 are retried honoring Retry-After', async () => {
  let calls = 0;
  handler = (_r, res) => {
    calls++;
    if (calls === 1) return json(res, 503, envelope('TRADING_DISABLED', 'paused'));
    if (calls === 2) return json(res, 429, { message: 'API rate limit exceeded' }, { 'retry-after': '1' });
    json(res, 200, { id: 'o1', status: 'new' });
  };
  const client = new ExchangeClient({ baseUrl: base, session: { accessToken: 'a' }, ...fastRetries });
  const started = Date.now();
  const order = await client.placeOrder({
    market: 'BTC-USD',
    side: 'buy',
    type: 'limit',
    price: '30000',
    quantity: '0.01',
  });
  expect(order.id).toBe('o1');
  expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
  const keys = received.map((r) => r.headers['idempotency-key']);
  expect(keys).toHaveLength(3);
  expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
  expect(new Set(keys).size).toBe(1);
  // A key given by the caller is used as is; GETs carry none.
  handler = (_r, res) => json(res, 201, { id: 'd1' });
  await client.deposit({ asset: 'USD', amount: '5.00' }, { idempotencyKey: 'my-key' });
  expect(received.at(-1)?.headers['idempotency-key']).toBe('my-key');
  handler = (_r, res) => json(res, 200, { balances: [] });
  await client.balances();
  expect(received.at(-1)?.headers['idempotency-key']).toBeUndefined();
});

test('a Retry-After beyond the limit is not waited for; other 4xx are never retried', async () => {
  handler = (_r, res) => json(res, 429, { message: 'API rate limit exceeded' }, { 'retry-after': '120' });
  const client = new ExchangeClient({ baseUrl: base, ...fastRetries });
  const err = (await client.markets().catch((e: unknown) => e)) as ExchangeApiError;
  expect({ code: err.code, retryAfterMs: err.retryAfterMs }).toEqual({ code: 'RATE_LIMITED', retryAfterMs: 120_000 });
  expect(received).toHaveLength(1);
  handler = (_r, res) => json(res, 422, envelope('IDEMPOTENCY_KEY_REUSED', 'other body'));
  const e2 = (await client.markets().catch((e: unknown) => e)) as ExchangeApiError;
  expect(e2.code).toBe('IDEMPOTENCY_KEY_REUSED');
  expect(received).toHaveLength(2);
});

test('email links, security log and staff look-ups: the paths, bodies and credentials the services expect', async () => {
  handler = (r, res) => {
    const routes: Record<string, [number, unknown]> = {
      'POST /api/v1/auth/email/verify': [200, { emailVerified: true }],
      'POST /api/v1/auth/email/resend': [202, { sent: true }],
      'POST /api/v1/auth/password/forgot': [202, { accepted: true }],
      'POST /api/v1/auth/password/reset': [200, { reset: true }],
      'POST /api/v1/wallet/withdrawals/confirm': [200, { id: 'w1', status: 'pending' }],
      'GET /api/v1/auth/security-log?limit=20': [200, { events: [{ action: 'auth.login' }] }],
      'GET /api/v1/admin/orders/o%2F1': [200, { id: 'o/1', userId: 'u2' }],
      'GET /api/v1/admin/payouts?status=pending&limit=5': [200, { status: 'pending', payouts: [], totals: [] }],
      'GET /api/v1/admin/withdrawals/blocked?limit=3': [200, { blocked: [{ reason: 'velocity' }] }],
    };
    const hit = routes[`${r.method} ${r.url}`];
    if (hit) return json(res, hit[0], hit[1]);
    json(res, 404, envelope('NOT_FOUND', `${r.method} ${r.url}`));
  };
  const anonymous = new ExchangeClient({ baseUrl: base });
  expect(await anonymous.verifyEmail('tok-v')).toEqual({ emailVerified: true });
  expect(await anonymous.requestPasswordReset('a@example.com')).toEqual({ accepted: true });
  expect(await anonymous.resetPassword('tok-r', 'new password 1')).toEqual({ reset: true });
  expect(await anonymous.confirmWithdrawal('tok-w')).toEqual({ id: 'w1', status: 'pending' });
  expect(received.map((r) => [r.url, JSON.parse(r.body), r.headers.authorization ?? null])).toEqual([
    ['/api/v1/auth/email/verify', { token: 'tok-v' }, null],
    ['/api/v1/auth/password/forgot', { email: 'a@example.com' }, null],
    ['/api/v1/auth/password/reset', { token: 'tok-r', newPassword: 'new password 1' }, null],
    ['/api/v1/wallet/withdrawals/confirm', { token: 'tok-w' }, null],
  ]);
  // single-use tokens: no Idempotency-Key (a replay must not answer the first result)
  expect(received.map((r) => r.headers['idempotency-key'])).toEqual([undefined, undefined, undefined, undefined]);
  // resend needs a session
  await expect(anonymous.resendVerificationEmail()).rejects.toMatchObject({ code: 'NOT_LOGGED_IN' });

  received.length = 0;
  const signedIn = new ExchangeClient({ baseUrl: base, session: { accessToken: 'a' } });
  expect(await signedIn.resendVerificationEmail()).toEqual({ sent: true });
  expect(await signedIn.securityLog({ limit: 20 })).toEqual([{ action: 'auth.login' }]);
  expect(await signedIn.admin.order('o/1')).toEqual({ id: 'o/1', userId: 'u2' });
  expect(await signedIn.admin.payouts({ status: 'pending', limit: 5 })).toEqual({
    status: 'pending',
    payouts: [],
    totals: [],
  });
  expect(await signedIn.admin.blockedWithdrawals({ limit: 3 })).toEqual([{ reason: 'velocity' }]);
  expect(received.map((r) => r.headers.authorization)).toEqual(Array(5).fill('Bearer a'));

  // the API's code and message come through (the pages show them)
  handler = (_r, res) => json(res, 400, envelope('TOKEN_EXPIRED', 'this link has expired; ask for a new one'));
  await expect(anonymous.verifyEmail('old')).rejects.toMatchObject({
    status: 400,
    code: 'TOKEN_EXPIRED',
    message: 'this link has expired; ask for a new one',
  });
});

test('API-key mode signs every attempt as the services verify it (fresh timestamp per retry)', async () => {
  let calls = 0;
  handler = (_r, res) => (++calls === 1 ? json(res, 503, envelope('UNAVAILABLE', 'x')) : json(res, 200, { id: 'o2' }));
  const secret = 'sk_test_secret_value';
  const client = new ExchangeClient({
    baseUrl: base,
    apiKey: { key: 'ak_1', secret },
    headers: { 'x-forwarded-for': '10.9.8.7' },
    ...fastRetries,
  });
  await client.placeOrder({ market: 'BTC-USD', side: 'sell', type: 'market', quantity: '1' });
  await client.orders({ market: 'BTC-USD', open: true });
  expect(received).toHaveLength(3);
  for (const r of received) {
    expect(r.headers.authorization).toBeUndefined();
    expect(r.headers['x-api-key']).toBe('ak_1');
    expect(r.headers['x-forwarded-for']).toBe('10.9.8.7');
    const expected = apiKeySignature(secret, {
      timestamp: r.headers['x-api-timestamp'] as string,
      method: r.method,
      path: r.url,
      body: r.body,
    });
    expect(r.headers['x-api-signature']).toBe(expected);
  }
  expect(received[2]?.url).toBe('/api/v1/orders?market=BTC-USD&open=true');
  expect(received[0]?.headers['x-api-signature']).not.toBe(received[1]?.headers['x-api-signature']);
});

test('CLI: login stores the session 0600, balances reads it, order place sends an idempotency key', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'exchange-cli-'));
  const sessionPath = join(dir, 'exchange', 'session.json');
  handler = (r, res) => {
    if (r.url === '/api/v1/auth/login') {
      const b = JSON.parse(r.body) as { totpCode?: string };
      if (!b.totpCode) return json(res, 401, envelope('MFA_REQUIRED', 'code needed'));
      return json(res, 200, { ...pair(5), user });
    }
    if (r.url === '/api/v1/wallet/balances')
      return json(res, 200, { balances: [{ asset: 'BTC', total: '1', held: '0', available: '1' }] });
    if (r.url === '/api/v1/orders') return json(res, 200, { id: 'o9', status: 'new' });
    json(res, 404, envelope('NOT_FOUND', 'x'));
  };
  const { out, err, io } = recordingIo({
    env: { EXCHANGE_URL: base, EXCHANGE_PASSWORD: 'pw' },
    sessionPath,
    prompt: async () => '654321',
  });
  expect(await runCli(['login', '--email', 'a@example.com'], io)).toBe(0);
  expect(out.at(-1)).toBe('logged in as a@example.com (user)');
  expect(JSON.parse(received.at(-1)?.body ?? '{}')).toMatchObject({ totpCode: '654321' });
  expect((await stat(sessionPath)).mode & 0o777).toBe(0o600);
  expect(JSON.parse(await readFile(sessionPath, 'utf8'))).toMatchObject({
    baseUrl: base,
    session: { accessToken: 'access-5' },
  });
  expect(await runCli(['balances'], io)).toBe(0);
  expect(received.at(-1)?.headers.authorization).toBe('Bearer access-5');
  expect(out.slice(-2)).toEqual(['asset  total  held  available', 'BTC    1      0     1']);
  expect(await runCli(['--json', 'order', 'place', 'BTC-USD', 'buy', '0.5', '--price', '100'], io)).toBe(0);
  expect(JSON.parse(received.at(-1)?.body ?? '{}')).toEqual({
    market: 'BTC-USD',
    side: 'buy',
    type: 'limit',
    quantity: '0.5',
    price: '100',
  });
  expect(received.at(-1)?.headers['idempotency-key']).toMatch(/^[0-9a-f-]{36}$/);
  handler = (_r, res) => json(res, 404, envelope('ORDER_NOT_FOUND', 'no such order', 'req-404'));
  expect(await runCli(['order', 'cancel', 'nope'], io)).toBe(1);
  expect(err.at(-1)).toBe('error 404 ORDER_NOT_FOUND: no such order (request req-404)');
});

test('CLI: deposit returns once the deposit is credited, so `deposit && order place` works; --no-wait does not wait', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'exchange-cli-'));
  const sessionPath = join(dir, 'exchange', 'session.json');
  const deposit = (status: 'pending' | 'confirmed') => ({
    id: 'd1',
    asset: 'USD',
    amount: '5000',
    status,
    confirmAt: new Date(Date.now() + 200).toISOString(),
    confirmedAt: status === 'confirmed' ? new Date().toISOString() : null,
    createdAt: new Date().toISOString(),
  });
  let reads = 0;
  let confirmAfter = 2; // the third read sees it credited
  handler = (r, res) => {
    if (r.url === '/api/v1/auth/login') return json(res, 200, { ...pair(1), user });
    if (r.method === 'POST' && r.url === '/api/v1/wallet/deposits') return json(res, 201, deposit('pending'));
    if (r.method === 'GET' && r.url === '/api/v1/wallet/deposits/d1')
      return json(res, 200, deposit(++reads > confirmAfter ? 'confirmed' : 'pending'));
    json(res, 404, envelope('NOT_FOUND', 'x'));
  };
  const { out, err, io } = recordingIo({ env: { EXCHANGE_URL: base, EXCHANGE_PASSWORD: 'pw' }, sessionPath });
  expect(await runCli(['login', '--email', 'a@example.com'], io)).toBe(0);

  expect(await runCli(['deposit', 'USD', '5000'], io)).toBe(0);
  expect(reads).toBe(3);
  expect(JSON.parse(out.at(-1) ?? '{}')).toMatchObject({ id: 'd1', status: 'confirmed' });

  reads = 0;
  expect(await runCli(['deposit', 'USD', '5000', '--no-wait'], io)).toBe(0);
  expect(reads).toBe(0);
  expect(JSON.parse(out.at(-1) ?? '{}')).toMatchObject({ id: 'd1', status: 'pending' });

  confirmAfter = Number.POSITIVE_INFINITY; // never credited: the command gives up and says so
  expect(await runCli(['deposit', 'USD', '5000', '--timeout', '1'], io)).toBe(1);
  expect(reads).toBeGreaterThan(0);
  expect(JSON.parse(out.at(-1) ?? '{}')).toMatchObject({ status: 'pending' });
  expect(err.at(-1)).toBe('deposit d1 is still pending after 1 s; `exchange deposits` shows when it is credited');

  expect(await runCli(['deposit', 'USD', '5000', '--timeout', 'soon'], io)).toBe(1);
  expect(err.join('\n')).toMatch(/a whole number, at least 1/);
});

test('CLI: order list says what a stop, an iceberg or a pending cancel is; --limit takes whole numbers only', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'exchange-cli-'));
  const order = (id: string, extra: Record<string, unknown>) => ({
    id,
    market: 'BTC-USD',
    side: 'sell',
    type: 'limit',
    price: '58900',
    quantity: '0.10',
    filledQuantity: '0.00',
    status: 'new',
    stopPrice: null,
    stopTriggered: false,
    displayQuantity: null,
    cancelRequested: false,
    ...extra,
  });
  handler = (r, res) => {
    if (r.url.startsWith('/api/v1/orders'))
      return json(res, 200, {
        items: [
          order('o1', { stopPrice: '59000' }),
          order('o2', { stopPrice: '59000', stopTriggered: true, displayQuantity: '0.02' }),
          order('o3', { cancelRequested: true }),
          order('o4', {}),
        ],
        nextCursor: null,
      });
    json(res, 404, envelope('NOT_FOUND', 'x'));
  };
  const { out, err, io } = recordingIo({
    env: { EXCHANGE_URL: base, EXCHANGE_API_KEY: 'k_1', EXCHANGE_API_SECRET: 's' },
    sessionPath: join(dir, 'session.json'),
  });
  expect(await runCli(['order', 'list', '--open', '--limit', '4'], io)).toBe(0);
  expect(received.at(-1)?.url).toBe('/api/v1/orders?open=true&limit=4');
  const details = out.slice(-4).map((l) =>
    l
      .split(/\s{2,}/)
      .slice(8)
      .join(' '),
  );
  expect(details).toEqual(['stop 59000', 'stop 59000 (triggered), shows 0.02', 'cancel requested', '']);
  expect(await runCli(['order', 'list', '--limit', '0'], io)).toBe(1);
  expect(err.join('\n')).toMatch(/a whole number, at least 1/);
});

test('CLI: fees prints the tier table; order cancel-all-after arms the switch', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'exchange-cli-'));
  const tier = (n: number, v: string, m: number, t: number) => ({
    tier: n,
    minVolume: v,
    makerFeeBps: m,
    takerFeeBps: t,
  });
  handler = (r, res) => {
    if (r.url === '/api/v1/account/fees')
      return json(res, 200, {
        windowDays: 30,
        markets: [
          {
            market: 'BTC-USD',
            volumeAsset: 'USD',
            volume30d: '250.00',
            tier: tier(0, '0.00', 10, 20),
            nextTier: tier(1, '1000.00', -5, 10),
            volumeToNextTier: '750.00',
            tiers: [tier(0, '0.00', 10, 20), tier(1, '1000.00', -5, 10)],
          },
        ],
      });
    if (r.url === '/api/v1/orders/cancel-all-after')
      return json(res, 200, {
        armed: true,
        timeoutSeconds: 30,
        firesAt: '2026-01-01T00:00:30.000Z',
        cancelledOnArm: 0,
      });
    json(res, 404, envelope('NOT_FOUND', 'x'));
  };
  const { out, io } = recordingIo({
    env: { EXCHANGE_URL: base, EXCHANGE_API_KEY: 'k_1', EXCHANGE_API_SECRET: 's' },
    sessionPath: join(dir, 'session.json'),
    prompt: async () => '',
  });
  expect(await runCli(['fees'], io)).toBe(0);
  expect(out.join('\n')).toMatch(/BTC-USD\s+250\.00 USD\s+0\s+10\s+20\s+1000\.00\s+750\.00/);
  expect(await runCli(['--json', 'order', 'cancel-all-after', '30'], io)).toBe(0);
  expect(received.at(-1)).toMatchObject({ method: 'POST', url: '/api/v1/orders/cancel-all-after' });
  expect(JSON.parse(received.at(-1)!.body)).toEqual({ timeoutSeconds: 30 });
  expect(received.at(-1)!.headers['x-api-key']).toBe('k_1'); // a bot's call, signed with its API key
  expect(await runCli(['order', 'cancel-all-after', '-1'], io)).toBe(1);
});

test('login solves the proof of work an account asks for (client and CLI), and only then', async () => {
  // the auth service's side: a signed ALTCHA challenge bound to the account, one solution per login
  const secret = 'pow-test-secret';
  const spent = new Set<string>();
  const challenge = () =>
    createChallenge({
      algorithm: 'SHA-256',
      cost: 1,
      deriveKey,
      keyPrefix: '000',
      expiresAt: Math.floor(Date.now() / 1000) + 300,
      hmacSignatureSecret: secret,
    });
  let logins = 0;
  handler = (r, res) => {
    if (r.url !== '/api/v1/auth/login') return json(res, 404, envelope('NOT_FOUND', 'x'));
    logins++;
    const b = JSON.parse(r.body) as { proofOfWork?: string };
    void (async () => {
      if (b.proofOfWork) {
        const p = JSON.parse(Buffer.from(b.proofOfWork, 'base64').toString('utf8')) as Payload;
        const v = await verifySolution({ ...p, deriveKey, hmacSignatureSecret: secret });
        if (v.verified && !spent.has(p.challenge.signature!)) {
          spent.add(p.challenge.signature!);
          return json(res, 200, { ...pair(7), user });
        }
      }
      json(res, 429, {
        error: { code: 'PROOF_OF_WORK_REQUIRED', message: 'solve it', details: { challenge: await challenge() } },
      });
    })();
  };
  const client = new ExchangeClient({ baseUrl: base, ...fastRetries });
  const result = await client.login({ email: 'a@example.com', password: 'pw' });
  expect(result.accessToken).toBe('access-7');
  expect(logins).toBe(2); // asked once (not retried as a plain 429), then answered
  expect(JSON.parse(received[1]?.body ?? '{}')).toMatchObject({ email: 'a@example.com', password: 'pw' });

  // a caller that wants to handle it itself gets the challenge
  const manual = new ExchangeClient({ baseUrl: base, solveProofOfWork: false, ...fastRetries });
  const refused = await manual.login({ email: 'a@example.com', password: 'pw' }).catch((e: unknown) => e);
  expect(refused).toBeInstanceOf(ExchangeApiError);
  expect((refused as ExchangeApiError).code).toBe('PROOF_OF_WORK_REQUIRED');

  // the CLI logs in through the same path
  const dir = await mkdtemp(join(tmpdir(), 'exchange-cli-pow-'));
  const out: string[] = [];
  const io = {
    out: (l: string) => void out.push(l),
    err: (l: string) => void out.push(l),
    env: { EXCHANGE_URL: base, EXCHANGE_PASSWORD: 'pw' },
    sessionPath: join(dir, 'session.json'),
  };
  expect(await runCli(['login', '--email', 'a@example.com'], io)).toBe(0);
  expect(out.at(-1)).toBe('logged in as a@example.com (user)');
  // the solver is the web app's too: Web Crypto only (altcha-lib's own SHA derivation imports node:crypto)
  const source = await readFile(new URL('./proof-of-work.ts', import.meta.url), 'utf8');
  expect(source).not.toMatch(/from '(node:|altcha-lib\/algorithms)/);
});

test('stream: authenticates in the first message (never in the URL) and subscribes', async () => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((r) => wss.once('listening', r));
  const port = (wss.address() as { port: number }).port;
  const frames: unknown[] = [];
  let url = '';
  wss.on('connection', (ws, req) => {
    url = req.url ?? '';
    ws.on('message', (d: Buffer) => {
      const m = JSON.parse(d.toString()) as { op: string; channels?: string[] };
      frames.push(m);
      if (m.op === 'subscribe')
        ws.send(JSON.stringify({ type: 'update', channel: m.channels?.[0], data: { price: '1' } }));
    });
  });
  try {
    const client = new ExchangeClient({ baseUrl: `http://127.0.0.1:${port}`, session: { accessToken: 'tok-1' } });
    const stream = client.stream({ channels: ['orders', 'trades:BTC-USD'] });
    const update = await new Promise<{ channel: string }>((resolve) => stream.on('update', resolve));
    expect(update.channel).toBe('orders');
    expect(url).toBe('/api/v1/stream');
    expect(frames).toEqual([
      { op: 'auth', token: 'tok-1' },
      { op: 'subscribe', channels: ['orders', 'trades:BTC-USD'] },
    ]);
    stream.close();
    await new Promise((r) => stream.once('close', r));
  } finally {
    for (const c of wss.clients) c.terminate();
    await new Promise((r) => wss.close(r));
  }
});

test('stream: cancel-on-disconnect is asked for right after auth, for all markets or one', async () => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((r) => wss.once('listening', r));
  const port = (wss.address() as { port: number }).port;
  const frames: unknown[][] = [];
  wss.on('connection', (ws) => {
    const mine: unknown[] = [];
    frames.push(mine);
    ws.on('message', (d: Buffer) => {
      const m = JSON.parse(d.toString()) as { op: string };
      mine.push(m);
      if (m.op === 'subscribe') ws.send(JSON.stringify({ type: 'update', channel: 'orders', data: {} }));
    });
  });
  try {
    const client = new ExchangeClient({ baseUrl: `http://127.0.0.1:${port}`, session: { accessToken: 'tok-1' } });
    for (const cancelOnDisconnect of [true, { market: 'BTC-USD' }]) {
      const stream = client.stream({ channels: ['orders'], cancelOnDisconnect });
      await new Promise((resolve) => stream.on('update', resolve));
      stream.setCancelOnDisconnect(false);
      stream.close();
      await new Promise((r) => stream.once('close', r));
    }
    expect(frames).toEqual([
      [
        { op: 'auth', token: 'tok-1' },
        { op: 'cancel_on_disconnect', enabled: true },
        { op: 'subscribe', channels: ['orders'] },
        { op: 'cancel_on_disconnect', enabled: false },
      ],
      [
        { op: 'auth', token: 'tok-1' },
        { op: 'cancel_on_disconnect', enabled: true, market: 'BTC-USD' },
        { op: 'subscribe', channels: ['orders'] },
        { op: 'cancel_on_disconnect', enabled: false },
      ],
    ]);
  } finally {
    for (const c of wss.clients) c.terminate();
    await new Promise((r) => wss.close(r));
  }
});

test('fees and the dead-man switch: the paths and bodies the order service expects', async () => {
  handler = (r, res) => {
    if (r.url === '/api/v1/account/fees') return json(res, 200, { windowDays: 30, markets: [] });
    if (r.url === '/api/v1/orders/cancel-all-after' && r.method === 'POST')
      return json(res, 200, { armed: true, timeoutSeconds: 30, firesAt: '2026-01-01T00:00:30Z', cancelledOnArm: 0 });
    return json(res, 200, { armed: false, timeoutSeconds: 0, firesAt: null });
  };
  const client = new ExchangeClient({ baseUrl: base, session: { accessToken: 'tok-1' } });
  expect(await client.accountFees()).toEqual({ windowDays: 30, markets: [] });
  expect(await client.cancelAllAfter(30)).toMatchObject({ armed: true, timeoutSeconds: 30 });
  expect(await client.deadManSwitch()).toMatchObject({ armed: false });
  expect(received.map((r) => [r.method, r.url, r.body, r.headers.authorization])).toEqual([
    ['GET', '/api/v1/account/fees', '', 'Bearer tok-1'],
    ['POST', '/api/v1/orders/cancel-all-after', '{"timeoutSeconds":30}', 'Bearer tok-1'],
    ['GET', '/api/v1/orders/cancel-all-after', '', 'Bearer tok-1'],
  ]);
});

test('openStream refreshes an expired session first, and re-authenticates the open stream before expiry', async () => {
  let refreshes = 0;
  const api = createServer((req, res) => {
    if (req.url === '/api/v1/auth/refresh') {
      refreshes++;
      return json(res, 200, pair(7));
    }
    json(res, 404, envelope('NOT_FOUND', 'x'));
  });
  const wss = new WebSocketServer({ server: api });
  const frames: Array<{ op: string }> = [];
  wss.on('connection', (ws) => {
    ws.on('message', (d: Buffer) => {
      const m = JSON.parse(d.toString()) as { op: string; channels?: string[] };
      frames.push(m);
      // a token that expires in 30.3 s: the client re-authenticates ~0.3 s from now
      if (m.op === 'auth')
        ws.send(JSON.stringify({ type: 'authenticated', expiresAt: new Date(Date.now() + 30_300).toISOString() }));
      if (m.op === 'subscribe') ws.send(JSON.stringify({ type: 'subscribed', channels: m.channels }));
    });
  });
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
  const port = (api.address() as { port: number }).port;
  try {
    const client = new ExchangeClient({
      baseUrl: `http://127.0.0.1:${port}`,
      session: { accessToken: 'expired', refreshToken: 'refresh-6', accessTokenExpiresAt: Date.now() - 1000 },
    });
    const stream = await client.openStream({ channels: ['orders'] });
    await new Promise<void>((resolve) =>
      stream.on('message', (m: { type: string }) => {
        if (m.type === 'subscribed') resolve();
      }),
    );
    expect(frames.slice(0, 2)).toEqual([
      { op: 'auth', token: 'access-7' },
      { op: 'subscribe', channels: ['orders'] },
    ]);
    expect(client.getSession()?.refreshToken).toBe('refresh-7');
    // before the token expires the open stream is re-authenticated with a refreshed one
    for (let i = 0; i < 100 && frames.length < 3; i++) await new Promise((r) => setTimeout(r, 50));
    expect(frames[2]).toEqual({ op: 'auth', token: 'access-7' });
    expect(refreshes).toBeGreaterThanOrEqual(2);
    stream.close();
    await new Promise((r) => stream.once('close', r));
  } finally {
    for (const c of wss.clients) c.terminate();
    await new Promise((r) => wss.close(r));
    api.closeAllConnections();
    await new Promise((r) => api.close(r));
  }
});
