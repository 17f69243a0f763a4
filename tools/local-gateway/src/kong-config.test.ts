/**
 * Tests of kong/kong.yml itself (no Kong binary exists here: the file is parsed and routed with the same router the
 * local gateway uses, which follows Kong's traditional_compatible priority rules).
 */
import { existsSync, readFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { credentialFromPem, credentialsFromJwks, rewriteKongConfig } from '../../../kong/derive-jwt-credentials.ts';
import {
  KongRouter,
  parseKongConfig,
  serviceUrl,
  type KongPlugin,
  type KongRoute,
  type KongService,
} from './kong-config.ts';

const repo = (p: string) => fileURLToPath(new URL(`../../../${p}`, import.meta.url));
const kongText = readFileSync(repo('kong/kong.yml'), 'utf8');
const kong = parseKongConfig(kongText);
const router = new KongRouter(kong);

type Kind = 'public' | 'private' | 'admin' | 'api-key';
interface Expect {
  method: string;
  path: string;
  service: string;
  kind: Kind;
  headers?: Record<string, string>;
}

// Mirrors the public API of DESIGN.md and the path ownership table of docs/architecture.md.
const EXPECTED: Expect[] = [
  { method: 'POST', path: '/api/v1/auth/register', service: 'auth', kind: 'public' },
  { method: 'POST', path: '/api/v1/auth/login', service: 'auth', kind: 'public' },
  { method: 'POST', path: '/api/v1/auth/refresh', service: 'auth', kind: 'public' },
  { method: 'POST', path: '/api/v1/auth/logout', service: 'auth', kind: 'private' },
  { method: 'GET', path: '/api/v1/auth/me', service: 'auth', kind: 'private' },
  { method: 'POST', path: '/api/v1/auth/2fa/setup', service: 'auth', kind: 'private' },
  { method: 'POST', path: '/api/v1/auth/2fa/verify', service: 'auth', kind: 'private' },
  { method: 'GET', path: '/api/v1/auth/api-keys', service: 'auth', kind: 'private' },
  { method: 'POST', path: '/api/v1/auth/api-keys', service: 'auth', kind: 'private' },
  { method: 'DELETE', path: '/api/v1/auth/api-keys/k1', service: 'auth', kind: 'private' },
  { method: 'GET', path: '/.well-known/jwks.json', service: 'auth', kind: 'public' },
  { method: 'GET', path: '/api/v1/wallet/balances', service: 'wallet', kind: 'private' },
  { method: 'GET', path: '/api/v1/wallet/ledger', service: 'wallet', kind: 'private' },
  { method: 'POST', path: '/api/v1/wallet/deposits', service: 'wallet', kind: 'private' },
  { method: 'POST', path: '/api/v1/wallet/withdrawals', service: 'wallet', kind: 'private' },
  { method: 'GET', path: '/api/v1/wallet/withdrawals', service: 'wallet', kind: 'private' },
  { method: 'GET', path: '/api/v1/wallet/withdrawals/w1', service: 'wallet', kind: 'private' },
  { method: 'POST', path: '/api/v1/orders', service: 'order', kind: 'private' },
  { method: 'GET', path: '/api/v1/orders', service: 'order', kind: 'private' },
  { method: 'GET', path: '/api/v1/orders/o1', service: 'order', kind: 'private' },
  { method: 'DELETE', path: '/api/v1/orders/o1', service: 'order', kind: 'private' },
  { method: 'GET', path: '/api/v1/fills', service: 'order', kind: 'private' },
  { method: 'GET', path: '/api/v1/account/fees', service: 'order', kind: 'private' },
  { method: 'POST', path: '/api/v1/orders/cancel-all-after', service: 'order', kind: 'private' },
  { method: 'GET', path: '/api/v1/markets', service: 'order', kind: 'public' },
  { method: 'GET', path: '/api/v1/markets/BTC-USD/book', service: 'order', kind: 'public' },
  { method: 'GET', path: '/api/v1/markets/BTC-USD/trades', service: 'order', kind: 'public' },
  { method: 'GET', path: '/api/v1/markets/BTC-USD/ticker', service: 'order', kind: 'public' },
  { method: 'GET', path: '/api/v1/markets/BTC-USD/candles', service: 'order', kind: 'public' },
  { method: 'GET', path: '/api/health/trading', service: 'order', kind: 'public' },
  { method: 'GET', path: '/api/v1/stream', service: 'order', kind: 'public' },
  { method: 'GET', path: '/docs', service: 'api-docs', kind: 'public' },
  // the web app's own paths (no catch-all: unknown paths stay unrouted)
  { method: 'GET', path: '/', service: 'web', kind: 'public' },
  { method: 'GET', path: '/assets/index-3f2a.js', service: 'web', kind: 'public' },
  { method: 'GET', path: '/config.js', service: 'web', kind: 'public' },
  { method: 'GET', path: '/markets/BTC-USD', service: 'web', kind: 'public' },
  { method: 'GET', path: '/console/users', service: 'web', kind: 'public' },
  { method: 'GET', path: '/verify-email', service: 'web', kind: 'public' },
  { method: 'GET', path: '/reset-password', service: 'web', kind: 'public' },
  { method: 'GET', path: '/confirm-withdrawal', service: 'web', kind: 'public' },
  // admin, split by owning service
  { method: 'GET', path: '/api/v1/admin/feature-flags', service: 'order', kind: 'admin' },
  { method: 'POST', path: '/api/v1/admin/feature-flags/trading/disable', service: 'order', kind: 'admin' },
  { method: 'POST', path: '/api/v1/admin/feature-flags/maintenance/enable', service: 'order', kind: 'admin' },
  { method: 'POST', path: '/api/v1/admin/feature-flags/withdrawals/disable', service: 'wallet', kind: 'admin' },
  { method: 'POST', path: '/api/v1/admin/feature-flags/deposits/disable', service: 'wallet', kind: 'admin' },
  { method: 'POST', path: '/api/v1/admin/markets/BTC-USD/halt', service: 'order', kind: 'admin' },
  { method: 'POST', path: '/api/v1/admin/markets/BTC-USD/resume', service: 'order', kind: 'admin' },
  { method: 'GET', path: '/api/v1/admin/dead-letters/wallet', service: 'wallet', kind: 'admin' },
  { method: 'GET', path: '/api/v1/admin/payouts', service: 'wallet', kind: 'admin' },
  { method: 'GET', path: '/api/v1/admin/withdrawals/blocked', service: 'wallet', kind: 'admin' },
  { method: 'GET', path: '/api/v1/admin/orders/7d3e0a5c-1b2f-4c6d-9e8f-0a1b2c3d4e5f', service: 'order', kind: 'admin' },
  { method: 'POST', path: '/api/v1/admin/dead-letters/wallet/m1/retry', service: 'wallet', kind: 'admin' },
  { method: 'GET', path: '/api/v1/admin/dead-letters/order', service: 'order', kind: 'admin' },
  { method: 'POST', path: '/api/v1/admin/dead-letters/order/m1/retry', service: 'order', kind: 'admin' },
  { method: 'GET', path: '/api/v1/admin/dead-letters/payment-processor', service: 'payment-processor', kind: 'admin' },
  {
    method: 'POST',
    path: '/api/v1/admin/dead-letters/payment-processor/m1/retry',
    service: 'payment-processor',
    kind: 'admin',
  },
  { method: 'GET', path: '/api/v1/admin/engine/markets', service: 'payment-processor', kind: 'admin' },
  { method: 'POST', path: '/api/v1/admin/reconciliation/runs', service: 'wallet', kind: 'admin' },
  { method: 'GET', path: '/api/v1/admin/reconciliation/reports', service: 'wallet', kind: 'admin' },
  { method: 'GET', path: '/api/v1/admin/backups', service: 'auth', kind: 'admin' },
  { method: 'POST', path: '/api/v1/admin/backups', service: 'auth', kind: 'admin' },
  { method: 'GET', path: '/api/v1/admin/audit', service: 'auth', kind: 'admin' },
  { method: 'POST', path: '/api/v1/admin/users/u1/lock', service: 'auth', kind: 'admin' },
  { method: 'POST', path: '/api/v1/admin/users/u1/unlock', service: 'auth', kind: 'admin' },
  { method: 'PUT', path: '/api/v1/admin/users/u1/roles', service: 'auth', kind: 'admin' },
  // bots: signed API-key requests bypass jwt on trading and balance reads only
  { method: 'GET', path: '/api/v1/orders', service: 'order', kind: 'api-key', headers: { 'x-api-key': 'k_123' } },
  { method: 'POST', path: '/api/v1/orders', service: 'order', kind: 'api-key', headers: { 'x-api-key': 'k_123' } },
  { method: 'DELETE', path: '/api/v1/orders/o1', service: 'order', kind: 'api-key', headers: { 'x-api-key': 'k_123' } },
  { method: 'GET', path: '/api/v1/fills', service: 'order', kind: 'api-key', headers: { 'x-api-key': 'k_123' } },
  {
    method: 'GET',
    path: '/api/v1/account/fees',
    service: 'order',
    kind: 'api-key',
    headers: { 'x-api-key': 'k_123' },
  },
  {
    method: 'POST',
    path: '/api/v1/orders/cancel-all-after',
    service: 'order',
    kind: 'api-key',
    headers: { 'x-api-key': 'k_123' },
  },
  { method: 'GET', path: '/api/v1/wallet/balances', service: 'wallet', kind: 'api-key', headers: { 'x-api-key': 'k' } },
  { method: 'GET', path: '/api/v1/wallet/ledger', service: 'wallet', kind: 'api-key', headers: { 'x-api-key': 'k' } },
  {
    method: 'POST',
    path: '/api/v1/wallet/deposits',
    service: 'wallet',
    kind: 'api-key',
    headers: { 'x-api-key': 'k' },
  },
  {
    method: 'POST',
    path: '/api/v1/wallet/withdrawals',
    service: 'wallet',
    kind: 'api-key',
    headers: { 'x-api-key': 'k' },
  },
  { method: 'POST', path: '/api/v1/auth/logout', service: 'auth', kind: 'private', headers: { 'x-api-key': 'k' } },
  { method: 'POST', path: '/api/v1/auth/api-keys', service: 'auth', kind: 'private', headers: { 'x-api-key': 'k' } },
  { method: 'GET', path: '/api/v1/admin/audit', service: 'auth', kind: 'admin', headers: { 'x-api-key': 'k' } },
];

function kindOf(route: KongRoute, plugins: Map<string, KongPlugin>): Kind {
  if (plugins.has('ip-restriction')) return 'admin';
  if (plugins.has('jwt')) return 'private';
  if (route.headers?.['x-api-key']) return 'api-key';
  return 'public';
}

const PRIVATE_RANGES = new Set(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '127.0.0.1', '::1', 'fc00::/7']);
const allRoutes = router.routes();
/** The product service a Kong service reaches (the host of its url): several Kong services may front one. */
const owner = (svc: KongService) => new URL(serviceUrl(svc)).hostname;
const allPlugins = (): KongPlugin[] => [
  ...(kong.plugins ?? []),
  ...allRoutes.flatMap(({ route, service }) => [...(route.plugins ?? []), ...(service.plugins ?? [])]),
];

describe('kong.yml routes', () => {
  test.each(EXPECTED)('$method $path ($kind) → $service', ({ method, path, service, kind, headers }) => {
    const match = router.match({ method, path, headers: headers ?? {} });
    expect(match).not.toBeNull();
    expect(match && owner(match.service)).toBe(service);
    expect(match && kindOf(match.route, match.plugins)).toBe(kind);
    expect(match?.upstreamPath).toBe(path);
  });

  test('every path of docs/openapi.yaml is routed to the service that documents it, private ones with jwt', () => {
    const file = repo('docs/openapi.yaml');
    if (!existsSync(file)) return; // generated by `pnpm openapi` once services publish their documents
    const doc = parse(readFileSync(file, 'utf8')) as {
      paths?: Record<string, Record<string, { security?: unknown[]; 'x-service'?: string | string[] }>>;
      security?: unknown[];
    };
    const methods = ['get', 'post', 'put', 'patch', 'delete'];
    const problems: string[] = [];
    for (const [template, item] of Object.entries(doc.paths ?? {})) {
      const path = template.replace(/\{[^}]+\}/g, 'x1');
      for (const [method, op] of Object.entries(item)) {
        if (!methods.includes(method)) continue;
        // Shared operations served by several services are routed by parameter value (covered by EXPECTED).
        if (Array.isArray(op['x-service'])) continue;
        const id = `${method.toUpperCase()} ${template}`;
        const match = router.match({ method: method.toUpperCase(), path, headers: {} });
        if (!match) {
          problems.push(`${id}: not routed`);
          continue;
        }
        if (op['x-service'] && owner(match.service) !== op['x-service']) {
          problems.push(`${id}: routed to ${owner(match.service)}, served by ${op['x-service']}`);
        }
        const security = op.security ?? doc.security ?? [];
        const secured = security.length > 0 && !security.every((s) => Object.keys(s as object).length === 0);
        const jwt = match.plugins.has('jwt');
        // A secured operation must sit behind jwt; an open one must not, except admin routes, which the gateway
        // always protects whatever a service's document says.
        if (secured && !jwt) problems.push(`${id}: documented as authenticated but routed without jwt`);
        if (!secured && jwt && !template.startsWith('/api/v1/admin/'))
          problems.push(`${id}: public but routed with jwt`);
      }
    }
    expect(problems).toEqual([]);
  });

  test('internal and operational paths are never routed', () => {
    for (const path of [
      '/internal/holds',
      '/internal/orders/open',
      '/internal/orders/lookup',
      '/health',
      '/ready',
      '/metrics',
      '/api/v1/admin/other',
      '/api/v2/orders',
    ]) {
      for (const method of ['GET', 'POST']) expect(router.match({ method, path, headers: {} })).toBeNull();
    }
  });

  test('services target the compose hostnames and never the Kong Admin API', () => {
    const urls = Object.fromEntries((kong.services ?? []).map((s) => [s.name, s.url]));
    expect(urls).toMatchObject({
      auth: 'http://auth:3001',
      wallet: 'http://wallet:3002',
      order: 'http://order:3003',
      'payment-processor': 'http://payment-processor:3004',
    });
    for (const s of kong.services ?? []) {
      expect(s.url).not.toMatch(/:(8001|8444)\b|localhost|127\.0\.0\.1|kong:/);
      expect(s.routes?.length).toBeGreaterThan(0);
    }
    const names = allRoutes.map(({ route }) => route.name);
    expect(new Set(names).size).toBe(names.length);
  });

  test('no route strips or rewrites paths, and every route lists its methods', () => {
    for (const { route } of allRoutes) {
      expect({ route: route.name, strip_path: route.strip_path }).toEqual({ route: route.name, strip_path: false });
      expect(route.methods?.length).toBeGreaterThan(0);
    }
  });
});

describe('kong.yml plugins', () => {
  test('private and admin routes carry a strict jwt plugin; public and api-key routes none', () => {
    for (const { route, service } of allRoutes) {
      const plugins = router.pluginsFor(route, service);
      const tag = route.tags?.[0];
      const jwt = plugins.get('jwt');
      if (tag === 'private' || tag === 'admin') {
        expect({ route: route.name, config: jwt?.config }).toEqual({
          route: route.name,
          config: expect.objectContaining({
            key_claim_name: 'kid',
            header_names: ['authorization'],
            uri_param_names: [], // Kong's default would accept ?jwt=<token>
            cookie_names: [],
            run_on_preflight: false,
          }),
        });
        expect(jwt?.config?.claims_to_verify).toContain('exp');
        const max = jwt?.config?.maximum_expiration as number;
        expect(max).toBeGreaterThan(0);
        expect(max).toBeLessThanOrEqual(900);
        if (route.methods?.some((m) => m !== 'GET' && m !== 'HEAD')) expect(route.methods).toContain('OPTIONS');
      } else {
        expect(['public', 'api-key']).toContain(tag);
        expect({ route: route.name, jwt: plugins.has('jwt') }).toEqual({ route: route.name, jwt: false });
      }
    }
  });

  test('admin routes are restricted to private ranges', () => {
    const adminRoutes = allRoutes.filter(({ route }) =>
      route.paths?.some((p) => p.replace(/^~/, '').startsWith('/api/v1/admin')),
    );
    expect(adminRoutes.length).toBeGreaterThanOrEqual(4);
    for (const { route, service } of adminRoutes) {
      const ip = router.pluginsFor(route, service).get('ip-restriction');
      const allow = ip?.config?.allow as string[] | undefined;
      expect({ route: route.name, hasAllowList: Array.isArray(allow) && allow.length > 0 }).toEqual({
        route: route.name,
        hasAllowList: true,
      });
      for (const cidr of allow ?? []) expect(PRIVATE_RANGES.has(cidr)).toBe(true);
      expect(route.tags).toContain('admin');
    }
  });

  test('every route is rate limited through Redis; login, register, refresh and withdrawals strictly', () => {
    for (const { route, service } of allRoutes) {
      const rl = router.pluginsFor(route, service).get('rate-limiting');
      expect({ route: route.name, limited: rl !== undefined }).toEqual({ route: route.name, limited: true });
      expect(rl?.config).toMatchObject({ policy: 'redis', redis: { host: 'redis', port: 6379 }, limit_by: 'ip' });
    }
    const strict = (method: string, path: string) => {
      const m = router.match({ method, path, headers: {} });
      return (m?.plugins.get('rate-limiting')?.config ?? {}) as { minute?: number; hour?: number };
    };
    for (const [method, path, perMinute] of [
      ['POST', '/api/v1/auth/login', 10],
      ['POST', '/api/v1/auth/register', 10],
      ['POST', '/api/v1/auth/refresh', 30],
      ['POST', '/api/v1/wallet/withdrawals', 5],
    ] as const) {
      const c = strict(method, path);
      if (path.endsWith('withdrawals')) {
        const m = router.match({ method, path, headers: { 'x-api-key': 'k' } });
        expect((m?.plugins.get('rate-limiting')?.config as { minute: number }).minute).toBeLessThanOrEqual(perMinute);
      }
      expect(c.minute).toBeLessThanOrEqual(perMinute);
      expect(c.hour).toBeDefined();
    }
    const apiKey = router.match({ method: 'GET', path: '/api/v1/orders', headers: { 'x-api-key': 'k' } });
    const jwtRoute = router.match({ method: 'GET', path: '/api/v1/orders', headers: {} });
    const a = apiKey?.plugins.get('rate-limiting')?.config as { minute: number; second: number };
    const j = jwtRoute?.plugins.get('rate-limiting')?.config as { minute: number; second: number };
    expect(a.minute).toBeLessThan(j.minute);
    expect(a.second).toBeLessThan(j.second);
  });

  test('global plugins: correlation id, size limit, explicit CORS, prometheus, opentelemetry', () => {
    const global = router.globalPlugins();
    expect(global.get('correlation-id')?.config).toMatchObject({ header_name: 'X-Request-Id', echo_downstream: true });
    expect(global.get('request-size-limiting')?.config).toMatchObject({ allowed_payload_size: expect.any(Number) });
    const cors = global.get('cors')?.config as { origins: string[]; credentials: boolean; exposed_headers: string[] };
    expect(cors.origins.length).toBeGreaterThan(0);
    expect(cors.origins).not.toContain('*');
    for (const o of cors.origins) expect(o).toMatch(/^https:\/\/[^*]+$/); // production: no http, no localhost
    for (const o of cors.origins) expect(o).not.toMatch(/localhost|127\.0\.0\.1/);
    expect(cors.exposed_headers).toEqual(
      expect.arrayContaining(['X-Request-Id', 'Retry-After', 'RateLimit-Remaining']),
    );
    expect(global.has('prometheus')).toBe(true);
    expect(global.get('opentelemetry')?.config).toMatchObject({ traces_endpoint: 'http://jaeger:4318/v1/traces' });
    // Plugins whose config could leak or weaken auth are absent.
    const names = new Set(allPlugins().map((p) => p.name));
    for (const risky of ['key-auth', 'basic-auth', 'request-termination', 'pre-function', 'post-function']) {
      expect(names.has(risky)).toBe(false);
    }
    for (const p of allPlugins().filter((p) => p.name === 'cors')) {
      const c = p.config as { origins: string[]; credentials?: boolean };
      expect(c.credentials === true && c.origins.includes('*')).toBe(false);
    }
  });

  test('jwt credentials are RS256 public keys only', () => {
    for (const consumer of kong.consumers ?? []) {
      for (const secret of consumer.jwt_secrets ?? []) {
        expect(secret.algorithm).toBe('RS256');
        expect(secret.rsa_public_key).toMatch(/^-----BEGIN PUBLIC KEY-----/);
        expect(secret.secret).toBeUndefined();
      }
    }
    expect(kong.consumers?.map((c) => c.username)).toEqual(['exchange-auth']);
  });

  test('rate limits of login and withdrawals fail closed when Redis is down (fault_tolerant: false)', () => {
    const names = ['auth-login-register', 'wallet-withdrawals-create', 'wallet-withdrawals-create-api-key'];
    for (const svc of kong.services ?? []) {
      for (const r of svc.routes ?? []) {
        if (!names.includes(r.name)) continue;
        const rl = (r.plugins ?? []).find((p) => p.name === 'rate-limiting');
        expect({ route: r.name, faultTolerant: (rl?.config as { fault_tolerant?: boolean })?.fault_tolerant }).toEqual({
          route: r.name,
          faultTolerant: false,
        });
      }
    }
  });

  test('sync_rate: only throttles sync in the background; every fail-closed limit counts in Redis per request', () => {
    const synced: string[] = [];
    for (const svc of kong.services ?? []) {
      for (const r of svc.routes ?? []) {
        const conf = (r.plugins ?? []).find((p) => p.name === 'rate-limiting')?.config as
          { sync_rate?: number; fault_tolerant?: boolean; policy?: string } | undefined;
        if (conf?.sync_rate === undefined || conf.sync_rate === -1) continue;
        synced.push(r.name);
        // Kong's schema: with the redis policy only, and at least 0.02 s
        expect({ route: r.name, policy: conf.policy, atLeastKongMinimum: conf.sync_rate >= 0.02 }).toEqual({
          route: r.name,
          policy: 'redis',
          atLeastKongMinimum: true,
        });
        expect({ route: r.name, faultTolerant: conf.fault_tolerant }).toEqual({ route: r.name, faultTolerant: true });
      }
    }
    // the order path (order entry, its reads) is among them: that is what the sync is for
    expect(synced).toEqual(expect.arrayContaining(['order-private', 'order-api-key', 'order-market-data']));
  });

  test('the Admin API listens on the Kong container’s loopback only and is never published (README, compose)', () => {
    const readme = readFileSync(repo('kong/README.md'), 'utf8');
    expect(readme).toMatch(/KONG_ADMIN_LISTEN=127\.0\.0\.1:8001/);
    expect(readme).not.toMatch(/read-only in DB-less/i);
    const compose = repo('docker-compose.yml');
    if (!existsSync(compose)) return;
    const doc = parse(readFileSync(compose, 'utf8'), { maxAliasCount: -1 }) as {
      services?: Record<string, { image?: string; environment?: Record<string, string>; ports?: unknown[] }>;
    };
    const kongServices = Object.values(doc.services ?? {}).filter((s) => s.image?.startsWith('kong'));
    expect(kongServices.length).toBeGreaterThan(0);
    for (const svc of kongServices) {
      const adminListen = String(svc.environment?.KONG_ADMIN_LISTEN ?? '0.0.0.0:8001');
      // POST /config replaces the gateway in DB-less mode: not even other containers may reach it
      expect(adminListen === 'off' || /^127\.0\.0\.1:\d+$/.test(adminListen)).toBe(true);
      const adminPorts = [...adminListen.matchAll(/:(\d+)/g)].map((m) => m[1]);
      for (const port of svc.ports ?? []) {
        const spec =
          typeof port === 'string'
            ? port
            : `${(port as { host_ip?: string }).host_ip ?? ''}:${(port as { published?: string }).published}:${(port as { target?: number }).target}`;
        const parts = spec.split(':');
        const target = (parts[parts.length - 1] ?? '').split('/')[0];
        if (adminPorts.includes(target) || target === '8444') {
          expect({ spec, hostIp: parts.length === 3 ? parts[0] : '0.0.0.0' }).toEqual({ spec, hostIp: '127.0.0.1' });
        }
      }
    }
  });
});

describe('derive-jwt-credentials', () => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'key-2026', use: 'sig', alg: 'RS256' };

  test('JWKS → one RS256 credential per kid, written into kong.yml with everything else kept', () => {
    const creds = credentialsFromJwks({ keys: [jwk, { kty: 'EC', kid: 'ec' }] });
    expect(creds).toHaveLength(1);
    expect(creds[0]).toMatchObject({ key: 'key-2026', algorithm: 'RS256' });
    expect(creds[0]?.rsa_public_key).toBe(publicKey.export({ type: 'spki', format: 'pem' }));
    const rewritten = rewriteKongConfig(kongText, creds, 'replace');
    const parsed = parseKongConfig(rewritten);
    expect(parsed.consumers?.[0]?.jwt_secrets).toEqual(creds);
    expect({ ...parsed, consumers: [] }).toEqual({ ...kong, consumers: [] });
    expect(rewritten).toContain('# Kong declarative configuration');
    // Rotation: a second key is added by merge, and replace with the JWKS drops retired keys.
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const merged = rewriteKongConfig(
      rewritten,
      [credentialFromPem(other.publicKey.export({ type: 'spki', format: 'pem' }).toString(), 'key-2027')],
      'merge',
    );
    expect(parseKongConfig(merged).consumers?.[0]?.jwt_secrets?.map((s) => s.key)).toEqual(['key-2026', 'key-2027']);
    const fromPrivate = credentialFromPem(pem);
    expect(fromPrivate.rsa_public_key).not.toContain('PRIVATE');
    expect(fromPrivate.key).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});

describe('Kong services: timeouts and retries', () => {
  const services = (kong.services ?? []) as KongService[];
  test('only services whose routes are all idempotent (GET/HEAD/OPTIONS) retry; a retried POST could run twice', () => {
    for (const svc of services) {
      const methods = (svc.routes ?? []).flatMap((r) => r.methods ?? ['ANY']);
      const idempotent = methods.every((m) => ['GET', 'HEAD', 'OPTIONS'].includes(m));
      if ((svc.retries ?? 5) > 0)
        expect({ service: svc.name, methods, idempotent }).toEqual({ service: svc.name, methods, idempotent: true });
    }
    expect(services.filter((s) => (s.retries ?? 5) > 0).map((s) => s.name)).toEqual([
      'auth-public-read',
      'order-public-read',
      'api-docs', // Kong's default retries (5): GET-only documentation
      'web', // likewise: GET-only static files of the web app
    ]);
  });

  test("the WebSocket route's own service outlasts the stream's heartbeat", async () => {
    const streamSource = await import('node:fs').then((fs) =>
      fs.readFileSync(new URL('../../../services/order/src/stream.ts', import.meta.url), 'utf8'),
    );
    const heartbeatMs = Number(/heartbeatMs \?\? ([\d_]+)/.exec(streamSource)![1]!.replaceAll('_', ''));
    const match = router.match({ method: 'GET', path: '/api/v1/stream', headers: {} })!;
    expect(match.service.name).toBe('order-stream');
    expect(match.service.read_timeout).toBeGreaterThanOrEqual(2 * heartbeatMs);
    expect(match.service.write_timeout).toBeGreaterThanOrEqual(2 * heartbeatMs);
  });
});
