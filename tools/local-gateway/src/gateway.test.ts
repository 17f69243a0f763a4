/**
 * The local gateway against small fake upstream HTTP servers (real HTTP on port 0), with the real kong/kong.yml
 * whose jwt credential is replaced by a key generated here (the same rewrite the derive script performs).
 */
import { createHmac, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import jwt from 'jsonwebtoken';
import { WebSocket, WebSocketServer } from 'ws';
import { credentialsFromJwks, rewriteKongConfig } from '../../../kong/derive-jwt-credentials.ts';
import { createDocsServer } from './docs.ts';
import { trustProxyOption } from '@exchange/config';
import { createGateway, type GatewayOptions } from './gateway.ts';
import { parseKongConfig, type KongConfig } from './kong-config.ts';

interface Seen {
  service: string;
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

const KID = 'test-key-1';
const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const otherKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const kongText = readFileSync(fileURLToPath(new URL('../../../kong/kong.yml', import.meta.url)), 'utf8');
const kong: KongConfig = parseKongConfig(
  rewriteKongConfig(
    kongText,
    credentialsFromJwks({ keys: [{ ...keys.publicKey.export({ format: 'jwk' }), kid: KID }] }),
    'replace',
  ),
);

function sign(
  claims: Record<string, unknown> = {},
  opts: { key?: KeyObject; kid?: string; expiresIn?: number } = {},
): string {
  const now = Math.floor(Date.now() / 1000);
  return jwt.sign(
    {
      sub: `user-${randomUUID()}`,
      iss: 'exchange-auth',
      aud: 'exchange-api',
      roles: ['user'],
      jti: randomUUID(),
      exp: now + (opts.expiresIn ?? 600),
      ...claims,
    },
    opts.key ?? keys.privateKey,
    { algorithm: 'RS256', keyid: opts.kid ?? KID },
  );
}

const seen: Seen[] = [];
const servers: Server[] = [];
const upstreams: Record<string, string> = {};
let wss: WebSocketServer;
let gateway: FastifyInstance;
let base: string;
let testIp = 0;
/** A fresh client IP per test (X-Forwarded-For, trusted here), so per-IP counters never leak between tests. */
const nextIp = () => `192.0.2.${++testIp}`;

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('no address');
  return `http://127.0.0.1:${addr.port}`;
}

function echoServer(service: string): Server {
  return createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const entry = {
        service,
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      };
      seen.push(entry);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ service, url: entry.url, requestId: req.headers['x-request-id'] }));
    });
  });
}

async function startGateway(extra: Partial<GatewayOptions> = {}): Promise<{ app: FastifyInstance; url: string }> {
  // The test client stands in for a load balancer: one trusted hop, so its X-Forwarded-For entry is the client IP.
  const app = await createGateway({
    kongConfig: kong,
    upstreams,
    trustProxy: trustProxyOption('true'),
    perUserLimits: false,
    ...extra,
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address();
  if (!addr || typeof addr === 'string') throw new Error('no address');
  return { app, url: `http://127.0.0.1:${addr.port}` };
}

beforeAll(async () => {
  for (const name of ['auth', 'wallet', 'order', 'payment-processor']) {
    const server = echoServer(name);
    servers.push(server);
    upstreams[name] = await listen(server);
  }
  // The order service's WebSocket stream: echoes each message back with the request id it saw.
  wss = new WebSocketServer({ noServer: true });
  const orderServer = servers[2] as Server;
  orderServer.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data: Buffer) =>
        ws.send(JSON.stringify({ echo: data.toString(), requestId: req.headers['x-request-id'] })),
      );
    });
  });
  ({ app: gateway, url: base } = await startGateway());
});

afterAll(async () => {
  await gateway.close();
  wss.close();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

function call(path: string, init: RequestInit & { ip?: string } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('x-forwarded-for', init.ip ?? nextIp());
  return fetch(`${base}${path}`, { ...init, headers });
}

describe('routing and correlation id', () => {
  test('public route is proxied unchanged; X-Request-Id generated, forwarded upstream and echoed', async () => {
    const res = await call('/api/v1/markets/BTC-USD/book?depth=10');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { service: string; url: string; requestId: string };
    expect(body.service).toBe('order');
    expect(body.url).toBe('/api/v1/markets/BTC-USD/book?depth=10');
    const id = res.headers.get('x-request-id');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.requestId).toBe(id);
  });

  test("a client's X-Request-Id is kept end to end", async () => {
    const res = await call('/api/v1/markets', { headers: { 'x-request-id': 'client-chosen-id-1' } });
    expect(res.headers.get('x-request-id')).toBe('client-chosen-id-1');
    expect(((await res.json()) as { requestId: string }).requestId).toBe('client-chosen-id-1');
  });

  test('GET /health answers for the gateway itself', async () => {
    const res = await call('/health');
    expect(res.status).toBe(200);
    expect(((await res.json()) as { status: string }).status).toBe('ok');
  });

  test('unrouted paths get 404 from the gateway (internal endpoints are never exposed)', async () => {
    const res = await call('/internal/holds', {
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ message: 'no Route matched with those values' });
    expect(res.headers.get('x-request-id')).toBeTruthy();
  });

  test('POST bodies and the Idempotency-Key reach the upstream intact', async () => {
    const body = JSON.stringify({ email: 'a@example.com', password: 'correct horse battery staple' });
    const res = await call('/api/v1/auth/register', {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', 'idempotency-key': 'idem-1' },
    });
    expect(res.status).toBe(200);
    const last = seen.filter((s) => s.service === 'auth').at(-1);
    expect(last?.body).toBe(body);
    expect(last?.headers['idempotency-key']).toBe('idem-1');
    expect(last?.headers['x-forwarded-for']).toBeDefined();
  });
});

describe('jwt (Kong semantics)', () => {
  test('valid token: proxied with the consumer headers and the Authorization header intact', async () => {
    const token = sign();
    const res = await call('/api/v1/wallet/balances', { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    const last = seen.filter((s) => s.service === 'wallet').at(-1);
    expect(last?.headers.authorization).toBe(`Bearer ${token}`);
    expect(last?.headers['x-consumer-username']).toBe('exchange-auth');
    expect(last?.headers['x-credential-identifier']).toBe(KID);
  });

  const cases: Array<[string, () => Record<string, string>, Record<string, string>]> = [
    ['missing token', () => ({}), { message: 'Unauthorized' }],
    [
      'not a bearer token',
      () => ({ authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }),
      { message: 'Unauthorized' },
    ],
    ['garbage token', () => ({ authorization: 'Bearer abc.def.ghi' }), { message: 'Bad token; invalid JSON' }],
    [
      'forged (signed by another key, same kid)',
      () => ({ authorization: `Bearer ${sign({}, { key: otherKeys.privateKey })}` }),
      { message: 'Invalid signature' },
    ],
    [
      'unknown kid',
      () => ({ authorization: `Bearer ${sign({}, { kid: 'nope' })}` }),
      { message: "No credentials found for given 'kid'" },
    ],
    ['expired', () => ({ authorization: `Bearer ${sign({}, { expiresIn: -5 })}` }), { exp: 'token expired' }],
    [
      'no exp',
      () => ({
        authorization: `Bearer ${jwt.sign({ sub: 'u' }, keys.privateKey, { algorithm: 'RS256', keyid: KID })}`,
      }),
      { exp: 'must be a number' },
    ],
    [
      'exp beyond maximum_expiration (900 s)',
      () => ({ authorization: `Bearer ${sign({}, { expiresIn: 3600 })}` }),
      { exp: 'exceeds maximum allowed expiration' },
    ],
    [
      'alg none',
      () => {
        const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
        const exp = Math.floor(Date.now() / 1000) + 300;
        return { authorization: `Bearer ${enc({ alg: 'none', typ: 'JWT', kid: KID })}.${enc({ sub: 'u', exp })}.` };
      },
      { message: 'Invalid algorithm' },
    ],
    [
      'HS256 signed with the public key as the HMAC secret (key confusion)',
      () => {
        const pem = keys.publicKey.export({ type: 'spki', format: 'pem' }).toString();
        const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
        const exp = Math.floor(Date.now() / 1000) + 300;
        const data = `${enc({ alg: 'HS256', typ: 'JWT', kid: KID })}.${enc({ sub: 'u', exp })}`;
        const sig = createHmac('sha256', pem).update(data).digest('base64url');
        return { authorization: `Bearer ${data}.${sig}` };
      },
      { message: 'Invalid algorithm' },
    ],
  ];
  test.each(cases)('401 on %s', async (_name, headers, body) => {
    const before = seen.length;
    const res = await call('/api/v1/orders', { headers: headers() });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual(body);
    expect(res.headers.get('x-request-id')).toBeTruthy();
    expect(seen.length).toBe(before); // never reached the upstream
  });

  test('a token in the query string is not accepted (uri_param_names: [])', async () => {
    const res = await call(`/api/v1/orders?jwt=${sign()}`);
    expect(res.status).toBe(401);
  });

  test('unknown kid is looked up in the auth JWKS (host mode), then accepted', async () => {
    const rotated = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwksServer = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          keys: [{ ...rotated.publicKey.export({ format: 'jwk' }), kid: 'rotated-1', use: 'sig', alg: 'RS256' }],
        }),
      );
    });
    const jwksUrl = `${await listen(jwksServer)}/.well-known/jwks.json`;
    const { app, url } = await startGateway({ authJwksUrl: jwksUrl });
    try {
      const token = sign({}, { key: rotated.privateKey, kid: 'rotated-1' });
      const ok = await fetch(`${url}/api/v1/orders`, {
        headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': nextIp() },
      });
      expect(ok.status).toBe(200);
      // kong.yml's own credential still works next to the JWKS ones.
      const old = await fetch(`${url}/api/v1/orders`, {
        headers: { authorization: `Bearer ${sign()}`, 'x-forwarded-for': nextIp() },
      });
      expect(old.status).toBe(200);
    } finally {
      await app.close();
      await new Promise((r) => jwksServer.close(r));
    }
  });

  test('API-key requests bypass jwt on the api-key routes only (the service verifies the signature)', async () => {
    const signed = { 'x-api-key': 'ak_test', 'x-api-timestamp': String(Date.now()), 'x-api-signature': 'deadbeef' };
    const res = await call('/api/v1/orders', {
      method: 'POST',
      body: '{}',
      headers: { ...signed, 'content-type': 'application/json' },
    });
    expect(res.status).toBe(200);
    expect(seen.at(-1)?.headers['x-api-signature']).toBe('deadbeef');
    const keys = await call('/api/v1/auth/api-keys', {
      method: 'POST',
      body: '{}',
      headers: { ...signed, 'content-type': 'application/json' },
    });
    expect(keys.status).toBe(401); // API-key management needs a session JWT
  });
});

describe('rate limiting', () => {
  test('login: the 11th request in a minute from one IP gets 429 with Retry-After and RateLimit-* headers', async () => {
    const ip = nextIp();
    for (let i = 0; i < 10; i++) {
      const res = await call('/api/v1/auth/login', {
        method: 'POST',
        body: '{}',
        headers: { 'content-type': 'application/json' },
        ip,
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('ratelimit-limit')).toBe('10');
      expect(res.headers.get('ratelimit-remaining')).toBe(String(9 - i));
      expect(res.headers.get('x-ratelimit-limit-hour')).toBe('100');
    }
    const res = await call('/api/v1/auth/login', {
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json' },
      ip,
    });
    expect(res.status).toBe(429);
    expect(await res.json()).toEqual({ message: 'API rate limit exceeded' });
    const retryAfter = Number(res.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(res.headers.get('ratelimit-remaining')).toBe('0');
    expect(Number(res.headers.get('ratelimit-reset'))).toBe(retryAfter);
    expect(res.headers.get('x-request-id')).toBeTruthy();
    // Another client is unaffected.
    const other = await call('/api/v1/auth/login', {
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json' },
    });
    expect(other.status).toBe(200);
  });

  test('per-user limits key on the verified JWT sub, across IPs', async () => {
    const { app, url } = await startGateway({ perUserLimits: { minute: 3 } });
    try {
      const token = sign({ sub: 'user-limited' });
      const get = (t: string) =>
        fetch(`${url}/api/v1/orders`, { headers: { authorization: `Bearer ${t}`, 'x-forwarded-for': nextIp() } });
      for (let i = 0; i < 3; i++) expect((await get(token)).status).toBe(200);
      const limited = await get(token);
      expect(limited.status).toBe(429);
      expect(limited.headers.get('retry-after')).toBeTruthy();
      expect((await get(sign({ sub: 'someone-else' }))).status).toBe(200);
    } finally {
      await app.close();
    }
  });

  test('policy redis: counters live in Redis under the given prefix', async () => {
    const redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    const prefix = `test:local-gateway:${randomUUID()}`;
    const { app, url } = await startGateway({ redis, redisKeyPrefix: prefix });
    try {
      const ip = nextIp();
      const post = () =>
        fetch(`${url}/api/v1/wallet/withdrawals`, {
          method: 'POST',
          body: '{}',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${sign()}`, 'x-forwarded-for': ip },
        });
      for (let i = 0; i < 5; i++) expect((await post()).status).toBe(200);
      expect((await post()).status).toBe(429);
      expect((await redis.keys(`${prefix}*`)).length).toBeGreaterThan(0);
    } finally {
      await app.close();
      const leftovers = await redis.keys(`${prefix}*`);
      if (leftovers.length) await redis.del(...leftovers);
      redis.disconnect();
    }
  });

  test('sync_rate (the order routes): counted in memory, every hit in Redis after close', async () => {
    const redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    const prefix = `test:local-gateway:${randomUUID()}`;
    // Minute counters are compared below: start well inside a minute.
    const toNextMinute = 60_000 - (Date.now() % 60_000);
    if (toNextMinute < 5_000) await new Promise((r) => setTimeout(r, toNextMinute + 50));
    const { app, url } = await startGateway({ redis, redisKeyPrefix: prefix, perUserLimits: { minute: 600 } });
    const ip = nextIp();
    const sub = `user-${randomUUID()}`;
    const token = sign({ sub });
    /** Redis's counters by name, without the window, summed over windows. */
    const counts = async () => {
      const out: Record<string, number> = {};
      for (const key of await redis.keys(`${prefix}:*`)) {
        const name = key.slice(prefix.length + 1).replace(/:\d+$/, '');
        out[name] = (out[name] ?? 0) + Number(await redis.get(key));
      }
      return out;
    };
    try {
      const remaining: string[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await fetch(`${url}/api/v1/orders`, {
          headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': ip },
        });
        expect(res.status).toBe(200);
        remaining.push(String(res.headers.get('x-ratelimit-remaining-minute')));
      }
      // counted exactly by this node (the header shows the per-user 600/min, the tighter of the two minute limits)
      expect(remaining).toEqual(['599', '598', '597', '596', '595']);
    } finally {
      await app.close(); // sends the increments not yet in Redis
    }
    try {
      const after = await counts();
      expect(after[`order-private:ip:minute:${ip}`]).toBe(5);
      expect(after[`per-user:minute:${sub}`]).toBe(5);
    } finally {
      const leftovers = await redis.keys(`${prefix}*`);
      if (leftovers.length) await redis.del(...leftovers);
      redis.disconnect();
    }
  });
});

describe('request size, CORS, ip restriction', () => {
  test('413 above 256 KB, by Content-Length and for a chunked body', async () => {
    const big = 'x'.repeat(300 * 1024);
    const res = await call('/api/v1/auth/register', {
      method: 'POST',
      body: big,
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({ message: 'Request size limit exceeded' });
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${base}/api/v1/auth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked', 'x-forwarded-for': nextIp() },
      });
      req.on('response', (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      });
      req.on('error', reject);
      for (let i = 0; i < 30; i++) req.write('y'.repeat(10 * 1024));
      req.end();
    });
    expect(chunked).toBe(413);
  });

  test('CORS preflight: allowed origin gets the headers without a token; other origins do not', async () => {
    const res = await call('/api/v1/orders', {
      method: 'OPTIONS',
      headers: {
        origin: 'https://exchange.example.com',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type,idempotency-key',
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://exchange.example.com');
    expect(res.headers.get('access-control-allow-headers')).toMatch(/Idempotency-Key/);
    expect(res.headers.get('access-control-max-age')).toBe('600');
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    const evil = await call('/api/v1/orders', {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    // a page served on the user's own machine is not an allowed origin in the production configuration
    const local = await call('/api/v1/markets', { headers: { origin: 'http://localhost:3000' } });
    expect(local.headers.get('access-control-allow-origin')).toBeNull();
    const simple = await call('/api/v1/markets', { headers: { origin: 'https://exchange.example.com' } });
    expect(simple.headers.get('access-control-allow-origin')).toBe('https://exchange.example.com');
    expect(simple.headers.get('access-control-expose-headers')).toMatch(/X-Request-Id/);
  });

  test('behind a load balancer: a spoofed leftmost X-Forwarded-For entry opens no admin route', async () => {
    const token = sign({ roles: ['admin'] });
    // the client claims 10.1.2.3; the load balancer (the trusted hop) appends the address it really saw
    const spoofed = await call('/api/v1/admin/audit', {
      headers: { authorization: `Bearer ${token}` },
      ip: '10.1.2.3, 203.0.113.7',
    });
    expect(spoofed.status).toBe(403);
  });

  test('without a proxy in front (trustProxy false) X-Forwarded-For is ignored: rotating it does not dodge the login limit', async () => {
    const direct = await startGateway({ trustProxy: false });
    try {
      const codes: number[] = [];
      for (let i = 0; i < 11; i++) {
        const res = await fetch(`${direct.url}/api/v1/auth/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-forwarded-for': `198.18.0.${i + 1}` },
          body: JSON.stringify({ email: 'x@example.com', password: 'whatever it is' }),
        });
        codes.push(res.status);
      }
      expect(codes.at(-1)).toBe(429); // 10 per minute per client IP, and the client IP is the TCP peer
    } finally {
      await direct.app.close();
    }
  });

  test('admin routes: 403 outside the private ranges even with a valid token; allowed from 10/8', async () => {
    const token = sign({ roles: ['admin'] });
    const outside = await call('/api/v1/admin/audit', {
      headers: { authorization: `Bearer ${token}` },
      ip: '203.0.113.7',
    });
    expect(outside.status).toBe(403);
    expect(await outside.json()).toEqual({ message: 'IP address not allowed' });
    const inside = await call('/api/v1/admin/audit', { headers: { authorization: `Bearer ${token}` }, ip: '10.1.2.3' });
    expect(inside.status).toBe(200);
    expect(((await inside.json()) as { service: string }).service).toBe('auth');
    const noToken = await call('/api/v1/admin/audit', { ip: '10.1.2.3' });
    expect(noToken.status).toBe(401);
  });
});

describe('websocket and docs', () => {
  test('WebSocket upgrades on /api/v1/stream are proxied to the order service with a request id', async () => {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/api/v1/stream`, {
      headers: { 'x-request-id': 'ws-req-1' },
    });
    const upgradeId = new Promise<string | undefined>((resolve, reject) => {
      ws.on('upgrade', (res) => resolve(res.headers['x-request-id'] as string | undefined));
      ws.on('error', reject);
    });
    const opened = new Promise<void>((resolve) => ws.on('open', () => resolve()));
    expect(await upgradeId).toBe('ws-req-1');
    await opened;
    const reply = new Promise<string>((resolve) => ws.once('message', (d: Buffer) => resolve(d.toString())));
    ws.send('{"op":"subscribe","channel":"book:BTC-USD"}');
    expect(JSON.parse(await reply)).toEqual({
      echo: '{"op":"subscribe","channel":"book:BTC-USD"}',
      requestId: 'ws-req-1',
    });
    ws.close();
  });

  test('WebSocket upgrade on a jwt route without a token is refused with 401', async () => {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/api/v1/orders`);
    const status = await new Promise<number>((resolve) => {
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('error', () => resolve(-1));
    });
    expect(status).toBe(401);
  });

  test('/docs serves the API reference and the OpenAPI document', async () => {
    const page = await call('/docs/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const doc = await call('/docs/openapi.json');
    expect(doc.status).toBe(200);
    expect(((await doc.json()) as { openapi: string }).openapi).toMatch(/^3\./);
  });

  test("docs-only server (Kong's api-docs upstream): /health, and a placeholder until openapi.yaml exists", async () => {
    const docs = await createDocsServer({ openapiPath: '/nonexistent/openapi.yaml', logger: false });
    try {
      expect((await docs.inject({ url: '/health' })).statusCode).toBe(200);
      const doc = await docs.inject({ url: '/docs/openapi.json' });
      expect(doc.json()).toMatchObject({ openapi: '3.1.0', info: { title: 'Exchange API' } });
      expect((await docs.inject({ url: '/docs/' })).statusCode).toBe(200);
    } finally {
      await docs.close();
    }
  });
});
