import { trustProxyOption } from '@exchange/config';
/**
 * Local gateway (development stand-in for Kong; Kong runs in compose and Kubernetes).
 *   PORT (8000), HOST (0.0.0.0), KONG_CONFIG (kong/kong.yml), AUTH_URL, WALLET_URL, ORDER_URL, PAYMENT_PROCESSOR_URL
 *   (default http://127.0.0.1:3001..3004),
 *   AUTH_JWKS_URL (default `${AUTH_URL}/.well-known/jwks.json`), REDIS_URL (rate-limit counters
 *   for `policy: redis`; memory without it), RATE_LIMIT_KEY_PREFIX (their Redis keys; default `local-gateway:rl`),
 *   TRUST_PROXY (like Kong's trusted_ips: false, true = one hop, a hop
 *   count, or the CIDRs of the load balancer in front),
 *   PER_USER_LIMIT_SECOND / PER_USER_LIMIT_MINUTE (per verified `sub`; 0 disables), LOG_LEVEL,
 *   WEB_ROOT (the built web app served for Kong's `web` routes; default apps/web/dist; WEB_URL proxies to a web
 *   server instead), JAEGER_UI_URL (the operator console's trace links).
 */
import { Redis } from 'ioredis';
import { createGateway, DEFAULT_KONG_CONFIG_PATH, type GatewayOptions } from './gateway.ts';
import { DEFAULT_WEB_ROOT, webConfigFromEnv } from './web.ts';

const env = process.env;
// Host mode: the services listen on localhost at the ports of docs/architecture.md.
const upstreams = {
  auth: env.AUTH_URL ?? 'http://127.0.0.1:3001',
  wallet: env.WALLET_URL ?? 'http://127.0.0.1:3002',
  order: env.ORDER_URL ?? 'http://127.0.0.1:3003',
  'payment-processor': env.PAYMENT_PROCESSOR_URL ?? 'http://127.0.0.1:3004',
};
const opts: GatewayOptions = {
  upstreams,
  kongConfigPath: env.KONG_CONFIG ?? DEFAULT_KONG_CONFIG_PATH,
  trustProxy: trustProxyOption(env.TRUST_PROXY ?? 'false'),
  logger: { level: env.LOG_LEVEL ?? 'info' },
};
// Host mode serves the web app itself unless a web upstream is given (as Kong proxies to the `web` service).
if (!env.WEB_URL) {
  const config = webConfigFromEnv(env);
  opts.web = { root: env.WEB_ROOT ?? DEFAULT_WEB_ROOT, ...(config ? { config } : {}) };
} else opts.upstreams = { ...opts.upstreams, web: env.WEB_URL };
opts.authJwksUrl = env.AUTH_JWKS_URL ?? `${upstreams.auth.replace(/\/$/, '')}/.well-known/jwks.json`;
if (env.REDIS_URL) {
  // Auto-pipelining: the counters of one request (every period, the per-user limit) go out in one write.
  opts.redis = new Redis(env.REDIS_URL, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    enableAutoPipelining: true,
  });
  opts.redisKeyPrefix = env.RATE_LIMIT_KEY_PREFIX || 'local-gateway:rl';
}
const second = Number(env.PER_USER_LIMIT_SECOND ?? 20);
const minute = Number(env.PER_USER_LIMIT_MINUTE ?? 600);
opts.perUserLimits =
  second > 0 || minute > 0 ? { ...(second > 0 ? { second } : {}), ...(minute > 0 ? { minute } : {}) } : false;

const app = await createGateway(opts);
const close = async () => {
  await app.close();
  opts.redis?.disconnect();
  process.exit(0);
};
process.on('SIGINT', () => void close());
process.on('SIGTERM', () => void close());
// Kong's default proxy_listen has `backlog=16384`; Node's default (511) overflows the accept queue when clients open
// connections faster than the gateway accepts them, and the kernel then resets them (ECONNRESET at 500 orders/s offered
// in docs/benchmarks.md). The kernel caps it at net.core.somaxconn.
const LISTEN_BACKLOG = 16_384;
await app.listen({ port: Number(env.PORT ?? 8000), host: env.HOST ?? '0.0.0.0', backlog: LISTEN_BACKLOG });
