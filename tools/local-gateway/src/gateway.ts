/**
 * Development stand-in for Kong: reads kong/kong.yml and applies its routes and the behaviour of the plugins it
 * uses (correlation-id, cors, jwt, ip-restriction, request-size-limiting, rate-limiting), then proxies with
 * @fastify/reply-from (HTTP) or a raw upgrade tunnel (WebSocket). Kong is what runs in compose and Kubernetes.
 */
import { DebugRequestLogController } from '@exchange/platform';
import { randomUUID } from 'node:crypto';
import { BlockList, isIPv6 } from 'node:net';
import { fileURLToPath } from 'node:url';
import cors, { type FastifyCorsOptions } from '@fastify/cors';
import replyFrom from '@fastify/reply-from';
import { trace } from '@opentelemetry/api';
import Fastify, { type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import type { Redis } from 'ioredis';
import { registerDocs } from './docs.ts';
import { CredentialStore, verifyKongJwt, type JwtPluginConfig } from './jwt.ts';
import {
  KongRouter,
  loadKongConfig,
  serviceUrl,
  type KongConfig,
  type KongPlugin,
  type RouteMatch,
} from './kong-config.ts';
import {
  limitsFromConfig,
  mergeOutcomes,
  RateLimiter,
  SYNC_RATE_REALTIME,
  type Limits,
  type RateLimitOutcome,
} from './rate-limit.ts';
import { attachWebSocketProxy } from './websocket.ts';
import { registerWebFiles, sendWeb, type WebOptions } from './web.ts';

export const DEFAULT_KONG_CONFIG_PATH = fileURLToPath(new URL('../../../kong/kong.yml', import.meta.url));
export const DEFAULT_OPENAPI_PATH = fileURLToPath(new URL('../../../docs/openapi.yaml', import.meta.url));

export interface GatewayOptions {
  /** Path of kong.yml (default: the repository's kong/kong.yml). */
  kongConfigPath?: string;
  /** Already parsed configuration (tests); wins over kongConfigPath. */
  kongConfig?: KongConfig;
  /** Kong service name → base URL. Default: AUTH_URL, WALLET_URL, ORDER_URL, PAYMENT_PROCESSOR_URL, else kong.yml's url. */
  upstreams?: Record<string, string>;
  /** The auth service's JWKS: jwt credentials loaded at start and on an unknown kid, besides kong.yml's. */
  authJwksUrl?: string;
  /** Counters for `policy: redis` rate limits; without it every limit is in memory. */
  redis?: Redis;
  redisKeyPrefix?: string;
  /**
   * Per-user limits keyed on the verified JWT `sub`, applied on every route carrying `jwt` (Kong cannot do this:
   * all tokens map to one consumer). `false` disables them.
   */
  perUserLimits?: Limits | false;
  /**
   * Whose X-Forwarded-For to believe (Kong's trusted_ips + real_ip_header X-Forwarded-For + real_ip_recursive):
   * Fastify's trustProxy from `trustProxyOption` (false, a hop predicate, or CIDRs). Default false.
   */
  trustProxy?: false | string | ((addr: string, hop: number) => boolean);
  /** OpenAPI document served under /docs. */
  openapiPath?: string;
  logger?: FastifyServerOptions['logger'];
  /**
   * Serve the web app for Kong's `web` service from these files (host mode) instead of proxying to its upstream.
   */
  web?: WebOptions;
  /** Clock for JWT checks (tests). */
  nowSeconds?: () => number;
}

export interface Rejection {
  ok: false;
  status: number;
  body: Record<string, unknown>;
  headers: Record<string, string>;
}

export interface Admission {
  ok: true;
  match: RouteMatch;
  upstream: string;
  /** Headers added to the upstream request. */
  upstreamHeaders: Record<string, string>;
  /** Headers added to the client response. */
  responseHeaders: Record<string, string>;
}

export interface Inbound {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: Record<string, string | string[] | undefined>;
  ip: string;
  /** True for a CORS preflight (OPTIONS with Origin and Access-Control-Request-Method). */
  preflight: boolean;
}

const DEFAULT_PER_USER_LIMITS: Limits = { second: 20, minute: 600 };

function envUpstreams(): Record<string, string> {
  const out: Record<string, string> = {};
  const map: Record<string, string | undefined> = {
    auth: process.env.AUTH_URL,
    wallet: process.env.WALLET_URL,
    order: process.env.ORDER_URL,
    'payment-processor': process.env.PAYMENT_PROCESSOR_URL,
  };
  for (const [k, v] of Object.entries(map)) if (v) out[k] = v;
  return out;
}

function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') && !isIPv6(ip.slice(7)) ? ip.slice(7) : ip;
}

function blockList(entries: unknown): BlockList {
  const list = new BlockList();
  for (const raw of Array.isArray(entries) ? (entries as string[]) : []) {
    const [addr, prefix] = raw.split('/');
    if (!addr) continue;
    const type = isIPv6(addr) ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(addr, type);
    else list.addSubnet(addr, Number(prefix), type);
  }
  return list;
}

function ipMatches(list: BlockList, ip: string): boolean {
  return list.check(ip, isIPv6(ip) ? 'ipv6' : 'ipv4');
}

/** Kong's `sync_rate` of a rate-limiting config: seconds between syncs to Redis, or -1 (every request). */
function syncRate(conf: Record<string, unknown>): number {
  return typeof conf.sync_rate === 'number' && conf.sync_rate > 0 ? conf.sync_rate : SYNC_RATE_REALTIME;
}

function payloadLimitBytes(conf: Record<string, unknown>): number {
  const size = typeof conf.allowed_payload_size === 'number' ? conf.allowed_payload_size : 128;
  const unit = conf.size_unit ?? 'megabytes';
  return unit === 'bytes' ? size : unit === 'kilobytes' ? size * 1024 : size * 1024 * 1024;
}

function header(headers: Inbound['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The part of the gateway that decides; shared by HTTP requests and WebSocket upgrades. */
export class GatewayCore {
  readonly router: KongRouter;
  readonly credentials: CredentialStore;
  private readonly limiter: RateLimiter;
  private readonly upstreams: Record<string, string>;
  private readonly perUserLimits: Limits | false;
  private readonly useRedis: boolean;
  private readonly now: () => number;
  private readonly ipLists = new WeakMap<KongPlugin, { allow: BlockList | null; deny: BlockList | null }>();

  constructor(opts: GatewayOptions & { log?: { warn: (o: unknown, m?: string) => void } }) {
    const config = opts.kongConfig ?? loadKongConfig(opts.kongConfigPath ?? DEFAULT_KONG_CONFIG_PATH);
    this.router = new KongRouter(config);
    const credentialOpts: ConstructorParameters<typeof CredentialStore>[0] = { kong: config };
    if (opts.authJwksUrl) credentialOpts.jwksUrl = opts.authJwksUrl;
    if (opts.log) credentialOpts.log = opts.log;
    this.credentials = new CredentialStore(credentialOpts);
    const limiterOpts: { redis?: Redis; keyPrefix?: string } = {};
    if (opts.redis) limiterOpts.redis = opts.redis;
    if (opts.redisKeyPrefix) limiterOpts.keyPrefix = opts.redisKeyPrefix;
    this.limiter = new RateLimiter(limiterOpts);
    this.useRedis = Boolean(opts.redis);
    this.upstreams = { ...envUpstreams(), ...opts.upstreams };
    this.perUserLimits = opts.perUserLimits ?? DEFAULT_PER_USER_LIMITS;
    this.now = opts.nowSeconds ?? (() => Math.floor(Date.now() / 1000));
  }

  /** Sends the rate-limit increments not yet in Redis (`sync_rate`) and stops their timers. */
  close(): Promise<void> {
    return this.limiter.close();
  }

  /**
   * The upstream of a Kong service, by the host in its kong.yml url (`http://order:3003` → ORDER_URL): several Kong
   * services may front one product service (different timeouts or retries), all reaching the same process.
   */
  upstreamFor(match: RouteMatch): string | undefined {
    const host = new URL(serviceUrl(match.service)).hostname;
    return this.upstreams[host] ?? this.upstreams[match.service.name] ?? serviceUrl(match.service);
  }

  /** Largest request body any route accepts (fastify's own body limit). */
  maxPayloadBytes(): number {
    let max = 0;
    const all = [...(this.router.config.plugins ?? [])];
    for (const { route, service } of this.router.routes())
      all.push(...(route.plugins ?? []), ...(service.plugins ?? []));
    for (const p of all) if (p.name === 'request-size-limiting') max = Math.max(max, payloadLimitBytes(p.config ?? {}));
    return max || 1024 * 1024;
  }

  payloadLimitFor(match: RouteMatch | null): number | null {
    const plugin = (match ? match.plugins : this.router.globalPlugins()).get('request-size-limiting');
    return plugin ? payloadLimitBytes(plugin.config ?? {}) : null;
  }

  corsOptionsFor(match: RouteMatch | null): FastifyCorsOptions {
    const plugin = (match ? match.plugins : this.router.globalPlugins()).get('cors');
    if (!plugin) return { origin: false };
    const c = (plugin.config ?? {}) as Record<string, unknown>;
    const origins = Array.isArray(c.origins) ? (c.origins as string[]) : ['*'];
    const out: FastifyCorsOptions = {
      origin: origins.includes('*') ? '*' : origins,
      credentials: c.credentials === true,
      preflightContinue: c.preflight_continue === true,
      strictPreflight: false,
    };
    if (Array.isArray(c.methods)) out.methods = c.methods as string[];
    if (Array.isArray(c.headers)) out.allowedHeaders = c.headers as string[];
    if (Array.isArray(c.exposed_headers)) out.exposedHeaders = c.exposed_headers as string[];
    if (typeof c.max_age === 'number') out.maxAge = c.max_age;
    return out;
  }

  private ipRestriction(plugin: KongPlugin, ip: string): Rejection | null {
    let lists = this.ipLists.get(plugin);
    if (!lists) {
      const c = plugin.config ?? {};
      lists = {
        allow: Array.isArray(c.allow) && c.allow.length ? blockList(c.allow) : null,
        deny: Array.isArray(c.deny) && c.deny.length ? blockList(c.deny) : null,
      };
      this.ipLists.set(plugin, lists);
    }
    const denied = (lists.deny && ipMatches(lists.deny, ip)) || (lists.allow && !ipMatches(lists.allow, ip));
    if (!denied) return null;
    const c = plugin.config ?? {};
    const status = typeof c.status === 'number' ? c.status : 403;
    const message = typeof c.message === 'string' ? c.message : 'Your IP address is not allowed';
    return { ok: false, status, body: { message }, headers: {} };
  }

  async admit(req: Inbound): Promise<Admission | Rejection> {
    const match = this.router.match({ method: req.method, path: req.path, headers: req.headers });
    if (!match) return { ok: false, status: 404, body: { message: 'no Route matched with those values' }, headers: {} };
    const upstreamHeaders: Record<string, string> = {};
    let responseHeaders: Record<string, string> = {};
    let sub: string | undefined;
    let credentialKey: string | undefined;
    let consumer: string | undefined;

    // Kong plugin order (priority): jwt 1450, ip-restriction 990, request-size-limiting 951, rate-limiting 910.
    const jwtPlugin = match.plugins.get('jwt');
    if (jwtPlugin) {
      const conf = (jwtPlugin.config ?? {}) as JwtPluginConfig;
      const skip = req.method === 'OPTIONS' && conf.run_on_preflight === false;
      if (!skip) {
        const result = await verifyKongJwt(conf, req, this.credentials, this.now());
        if (!result.ok) return { ok: false, status: result.status, body: result.body, headers: {} };
        credentialKey = result.credential.key;
        consumer = result.credential.consumer;
        sub = typeof result.claims.sub === 'string' ? result.claims.sub : undefined;
        upstreamHeaders['x-consumer-username'] = consumer;
        upstreamHeaders['x-consumer-custom-id'] = consumer;
        upstreamHeaders['x-credential-identifier'] = credentialKey;
      }
    }

    const ipPlugin = match.plugins.get('ip-restriction');
    if (ipPlugin) {
      const rejected = this.ipRestriction(ipPlugin, req.ip);
      if (rejected) return rejected;
    }

    const sizePlugin = match.plugins.get('request-size-limiting');
    if (sizePlugin) {
      const c = sizePlugin.config ?? {};
      const declared = header(req.headers, 'content-length');
      if (
        declared === undefined &&
        c.require_content_length === true &&
        !['GET', 'HEAD', 'OPTIONS'].includes(req.method)
      ) {
        return { ok: false, status: 411, body: { message: 'A valid Content-Length header is required' }, headers: {} };
      }
      if (declared !== undefined && Number(declared) > payloadLimitBytes(c)) {
        return { ok: false, status: 413, body: { message: 'Request size limit exceeded' }, headers: {} };
      }
    }

    // The route's counters and the per-user ones are counted together (both always are): one Redis round trip.
    let routeHit: Promise<RateLimitOutcome> | undefined;
    const rl = match.plugins.get('rate-limiting');
    // The per-user limit is a throttle like the route's, so it syncs as the route's limit does.
    const routeSyncRate = syncRate(rl?.config ?? {});
    if (rl) {
      const c = rl.config ?? {};
      const by = typeof c.limit_by === 'string' ? c.limit_by : 'consumer';
      let id: string | undefined;
      if (by === 'consumer') id = consumer;
      else if (by === 'credential') id = credentialKey;
      else if (by === 'header') id = header(req.headers, String(c.header_name ?? '').toLowerCase());
      else if (by === 'path') id = req.path;
      else if (by === 'service') id = match.service.name;
      id ??= req.ip; // Kong falls back to the client IP when the identifier is missing
      routeHit = this.limiter.hit(`${match.route.name}:${by}`, id, limitsFromConfig(c), {
        useRedis: this.useRedis && c.policy === 'redis',
        faultTolerant: c.fault_tolerant !== false,
        hideClientHeaders: c.hide_client_headers === true,
        syncRate: routeSyncRate,
      });
    }
    const userHit =
      jwtPlugin && sub && this.perUserLimits
        ? this.limiter.hit('per-user', sub, this.perUserLimits, { useRedis: this.useRedis, syncRate: routeSyncRate })
        : undefined;
    const [routeOutcome, perUser] = await Promise.all([routeHit, userHit]);
    let outcome: RateLimitOutcome | null = routeOutcome ?? null;
    if (perUser) outcome = outcome ? mergeOutcomes(outcome, perUser) : perUser;
    if (outcome) {
      responseHeaders = { ...responseHeaders, ...outcome.headers };
      if (outcome.exceeded) {
        const message =
          typeof rl?.config?.error_message === 'string' ? rl.config.error_message : 'API rate limit exceeded';
        return { ok: false, status: 429, body: { message }, headers: responseHeaders };
      }
    }

    const upstream = this.upstreamFor(match);
    if (!upstream) {
      return {
        ok: false,
        status: 503,
        body: { message: `no upstream for service ${match.service.name}` },
        headers: {},
      };
    }
    return { ok: true, match, upstream, upstreamHeaders, responseHeaders };
  }
}

interface RequestState {
  requestId: string | null;
  admission?: Admission;
}

function correlationHeader(router: KongRouter): { name: string; echo: boolean } | null {
  const plugin = router.globalPlugins().get('correlation-id');
  if (!plugin) return null;
  const c = plugin.config ?? {};
  return {
    name: (typeof c.header_name === 'string' ? c.header_name : 'Kong-Request-ID').toLowerCase(),
    echo: c.echo_downstream === true,
  };
}

export async function createGateway(opts: GatewayOptions = {}): Promise<FastifyInstance> {
  const correlationProbe = opts.kongConfig ?? loadKongConfig(opts.kongConfigPath ?? DEFAULT_KONG_CONFIG_PATH);
  const options: GatewayOptions = { ...opts, kongConfig: correlationProbe };
  const correlation = correlationHeader(new KongRouter(correlationProbe));
  const app = Fastify({
    logger: opts.logger ?? false,
    trustProxy: opts.trustProxy ?? false,
    // Fastify's request id is the correlation id, so the gateway's log lines carry the id the services log.
    requestIdHeader: correlation?.name ?? false,
    genReqId: () => randomUUID(),
    logController: new DebugRequestLogController(),
  });
  const core = new GatewayCore({ ...options, log: app.log });
  const state = new WeakMap<FastifyRequest, RequestState>();
  const maxBody = core.maxPayloadBytes();

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: maxBody }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, request, reply) => {
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
      return reply.code(413).send({ message: 'Request size limit exceeded' });
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    request.log.warn({ err: err.message, code: err.code }, 'gateway error');
    if (status >= 500) {
      // Kong's wording for an upstream that refused, timed out or broke the connection.
      return reply
        .code(status === 504 ? 504 : 502)
        .send({ message: 'An invalid response was received from the upstream server' });
    }
    return reply.code(status).send({ message: err.message });
  });

  // correlation-id (Kong priority 100001): keep the client's id, else generate one; forward it and echo it.
  app.addHook('onRequest', async (request, reply) => {
    let requestId: string | null = null;
    if (correlation) {
      requestId = request.id;
      request.headers[correlation.name] = requestId;
      if (correlation.echo) reply.header(correlation.name, requestId);
    }
    state.set(request, { requestId });
  });

  await app.register(cors, {
    hook: 'onRequest',
    delegator: (req, cb) => {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      const method =
        req.method === 'OPTIONS' ? String(req.headers['access-control-request-method'] ?? 'OPTIONS') : req.method;
      // A preflight is answered by the cors plugin of the route the real request would take.
      let match = core.router.match({ method: 'OPTIONS', path, headers: req.headers });
      match ??= core.router.match({ method, path, headers: req.headers });
      cb(null, core.corsOptionsFor(match));
    },
  });

  await registerDocs(app, { openapiPath: opts.openapiPath ?? DEFAULT_OPENAPI_PATH });

  // The gateway's own liveness (what the host-mode stack runner waits for). Kong's equivalent is its status
  // listener (:8100/status), not the proxy port; nothing of the API is served here.
  app.get('/health', async () => ({ status: 'ok', routes: core.router.routes().length }));

  app.addHook('onRequest', async (request, reply) => {
    if (request.method === 'GET' && request.url === '/health') return;
    const url = new URL(request.url, 'http://gateway.local');
    const verdict = await core.admit({
      method: request.method,
      path: url.pathname,
      query: url.searchParams,
      headers: request.headers,
      ip: normalizeIp(request.ip),
      preflight: false,
    });
    if (!verdict.ok) {
      return reply.code(verdict.status).headers(verdict.headers).send(verdict.body);
    }
    reply.headers(verdict.responseHeaders);
    const s = state.get(request);
    if (s) s.admission = verdict;
    // Kong's opentelemetry plugin names the request span after the matched route; so does the stand-in
    if (verdict.match) nameGatewaySpan(request.method, verdict.match.route.name);
  });

  // reply-from's two info lines per proxied request would bury everything else; requests are logged at debug.
  await app.register(replyFrom, { disableRequestLogging: true });
  if (opts.web) await registerWebFiles(app, opts.web);

  app.route({
    method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    url: '/*',
    handler: async (request, reply) => {
      const admission = state.get(request)?.admission;
      if (!admission) return reply.code(404).send({ message: 'no Route matched with those values' });
      if (opts.web && admission.match.service.name === 'web') {
        return sendWeb(reply, request.url.split('?')[0] ?? '/', opts.web);
      }
      const limit = core.payloadLimitFor(admission.match);
      const body = request.body as Buffer | undefined;
      if (limit !== null && body && body.length > limit) {
        return reply.code(413).send({ message: 'Request size limit exceeded' });
      }
      const url = new URL(request.url, 'http://gateway.local');
      const target = new URL(admission.upstream);
      const basePath = target.pathname.replace(/\/$/, '');
      const requestId = state.get(request)?.requestId;
      return reply.from(`${target.origin}${basePath}${admission.match.upstreamPath}${url.search}`, {
        // Raw bytes as received (reply-from would re-encode a parsed body); content type unchanged.
        ...(body && body.length > 0
          ? { body, contentType: String(request.headers['content-type'] ?? 'application/octet-stream') }
          : {}),
        // Kong's upstream headers: X-Forwarded-*, X-Real-IP, the correlation id, and the consumer after jwt.
        rewriteRequestHeaders: (_req, headers) => {
          const forwarded = headers['x-forwarded-for'];
          const ip = normalizeIp(request.ip);
          const out: Record<string, string | string[] | undefined> = {
            ...headers,
            ...admission.upstreamHeaders,
            'x-forwarded-for': forwarded ? `${String(forwarded)}, ${ip}` : ip,
            'x-forwarded-proto': request.protocol,
            'x-forwarded-host': request.headers.host ?? '',
            'x-real-ip': ip,
          };
          if (correlation && requestId) out[correlation.name] = requestId;
          return out as typeof headers;
        },
      });
    },
  });

  attachWebSocketProxy(app, core, {
    trustProxy: opts.trustProxy ?? false,
    correlationHeader: correlation?.name ?? null,
    echoCorrelation: correlation?.echo ?? false,
  });

  // JWKS keys: loaded at start, on an unknown kid, and every 30 s like Kong's JWKS sync in the chart (so a retired or
  // revoked key stops being accepted here too; the services refuse a revoked kid within their 5 s revocation poll).
  let jwksTimer: NodeJS.Timeout | undefined;
  app.addHook('onReady', async () => {
    await core.credentials.refresh();
    if (opts.authJwksUrl) {
      jwksTimer = setInterval(() => void core.credentials.refresh(), 30_000);
      jwksTimer.unref();
    }
  });
  app.addHook('onClose', async () => {
    if (jwksTimer) clearInterval(jwksTimer);
    await core.close();
  });

  return app;
}

/** The gateway's server span: `kong <route>` like Kong's, with the route as `http.route` (no-op when untraced). */
function nameGatewaySpan(method: string, route: string | undefined): void {
  const span = trace.getActiveSpan();
  if (!span?.isRecording() || !route) return;
  span.updateName(`kong ${method} ${route}`);
  span.setAttribute('http.route', route);
}
