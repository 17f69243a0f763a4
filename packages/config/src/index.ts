import { Type, type Static, type TObject, type TProperties } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

import { developmentSecretsIn } from './secrets.ts';

export { Type } from '@sinclair/typebox';
export { developmentSecretsIn, KNOWN_DEVELOPMENT_SECRETS, renderEnvFile } from './secrets.ts';
export type { Static } from '@sinclair/typebox';

export class ConfigError extends Error {
  readonly problems: Array<{ variable: string; problem: string }>;
  constructor(service: string, problems: Array<{ variable: string; problem: string }>) {
    super(
      `${service}: invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
        problems.map((p) => `  - ${p.variable}: ${p.problem}`).join('\n'),
    );
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/**
 * Validate `env` against a TypeBox object schema of environment variables. Defaults are applied, numeric and
 * boolean strings are converted, and every offending variable is reported at once (not just the first). With
 * NODE_ENV=production, a known development secret in any variable is one of those problems (every service
 * refuses to start with one).
 */
export function loadConfig<T extends TObject>(
  service: string,
  schema: T,
  env: NodeJS.ProcessEnv = process.env,
): Static<T> {
  const input: Record<string, unknown> = {};
  for (const key of Object.keys(schema.properties)) {
    const raw = env[key];
    if (raw !== undefined && raw !== '') input[key] = raw;
  }
  const withDefaults = Value.Default(schema, input);
  const converted = Value.Convert(schema, withDefaults) as Record<string, unknown>;
  const problems: Array<{ variable: string; problem: string }> = [];
  const seen = new Set<string>();
  for (const err of Value.Errors(schema, converted)) {
    const variable = err.path.replace(/^\//, '').split('/')[0] || '(root)';
    if (seen.has(variable)) continue;
    seen.add(variable);
    const isMissing = converted[variable] === undefined;
    problems.push({
      variable,
      problem: isMissing ? 'is required but not set' : `${err.message} (got ${JSON.stringify(env[variable])})`,
    });
  }
  if (converted.NODE_ENV === 'production' && 'INTERNAL_CALLERS' in schema.properties && !converted.INTERNAL_CALLERS) {
    problems.push({
      variable: 'INTERNAL_CALLERS',
      problem: 'is required in production: each calling service its own credential, scoped to its routes',
    });
  }
  if (converted.NODE_ENV === 'production') {
    for (const variable of developmentSecretsIn(converted)) {
      problems.push({
        variable,
        problem: 'is a known development value (public in the repository); production needs a freshly generated secret',
      });
    }
  }
  if (problems.length > 0) throw new ConfigError(service, problems);
  return converted as Static<T>;
}

/** Like loadConfig, but prints the one clear message and exits with status 78 (EX_CONFIG) on a bad environment. */
export function loadConfigOrExit<T extends TObject>(
  service: string,
  schema: T,
  env: NodeJS.ProcessEnv = process.env,
): Static<T> {
  try {
    return loadConfig(service, schema, env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78);
    }
    throw err;
  }
}

const Url = (description: string, def?: string) =>
  Type.String({ pattern: '^[a-z][a-z0-9+.-]*://', description, ...(def !== undefined ? { default: def } : {}) });

/** Variables every service reads. Spread into a service's own schema: `Type.Object({ ...baseEnv(3001), … })`. */
export function baseEnv(defaultPort: number) {
  return {
    NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('test'), Type.Literal('production')], {
      default: 'development',
      description: 'Environment mode',
    }),
    LOG_LEVEL: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
      { default: 'info', description: 'pino log level' },
    ),
    HOST: Type.String({ default: '0.0.0.0', description: 'Interface to listen on' }),
    PORT: Type.Integer({ minimum: 0, maximum: 65535, default: defaultPort, description: 'HTTP port' }),
    SHUTDOWN_TIMEOUT_MS: Type.Integer({
      minimum: 100,
      default: 10_000,
      description: 'Upper bound for graceful shutdown (drain HTTP, stop consumers, close pools)',
    }),
    OTEL_EXPORTER_OTLP_ENDPOINT: Type.Optional(
      Url('OTLP/HTTP endpoint for traces (e.g. http://jaeger:4318); tracing export is off when unset'),
    ),
    SERVICE_VERSION: Type.String({ default: '0.1.0', description: 'Reported in /health and traces' }),
  } satisfies TProperties;
}

export const databaseEnv = {
  DATABASE_URL: Url('PostgreSQL connection string', 'postgres://postgres@127.0.0.1:5432/exchange'),
  DATABASE_POOL_MAX: Type.Integer({ minimum: 1, default: 10, description: 'Max connections in the pool' }),
} satisfies TProperties;

export const amqpEnv = {
  AMQP_URL: Url('RabbitMQ connection string (vhost in the path)', 'amqp://guest:guest@127.0.0.1:5672/exchange'),
  CONSUMER_BATCH_SIZE: Type.Integer({
    minimum: 1,
    maximum: 1000,
    default: 100,
    description:
      'Group commit of the ordered consumers (engine commands, settlements, engine events): messages already ' +
      'waiting are applied in one transaction, at most this many (1 = one transaction per message)',
  }),
} satisfies TProperties;

export const redisEnv = {
  REDIS_URL: Url('Redis connection string', 'redis://127.0.0.1:6379'),
} satisfies TProperties;

export const jwtVerifyEnv = {
  AUTH_JWKS_URL: Url('Where services fetch the auth JWKS', 'http://127.0.0.1:3001/.well-known/jwks.json'),
  JWT_ISSUER: Type.String({ default: 'exchange-auth', description: 'Expected `iss` of access tokens' }),
  JWT_AUDIENCE: Type.String({ default: 'exchange-api', description: 'Expected `aud` of access tokens' }),
  MFA_FRESH_SECONDS: Type.Integer({
    minimum: 30,
    default: 300,
    description:
      "How recent an admin's 2FA check must be for admin writes here (kill switches, halts, reconciliation, dead-letter retries); same meaning as in auth",
  }),
} satisfies TProperties;

export const internalEnv = {
  INTERNAL_API_TOKEN: Type.String({
    minLength: 16,
    description:
      'This service’s own credential for service-to-service /internal calls (at least 16 characters); the receivers ' +
      'list it in their INTERNAL_CALLERS',
  }),
} satisfies TProperties;

/**
 * Which proxies' X-Forwarded-For is believed for the client IP (login throttles, IP allow-lists, audit). Every
 * process that stands behind a proxy declares it; the Helm value `trustedProxies` and compose set it.
 */
export const proxyEnv = {
  TRUST_PROXY: Type.String({
    default: 'false',
    pattern: '^(true|false|[0-9]{1,2}|[0-9a-fA-F:./]+(,\\s*[0-9a-fA-F:./]+)*)$',
    description:
      'Which X-Forwarded-For hops to trust for the client IP (login throttling, IP allow-lists, audit): false; ' +
      'true = one hop (the proxy in front); a number of hops; or comma-separated proxy IPs/CIDRs (tightest: only ' +
      'those peers may set the header). Never the whole header: a client can prepend any address to it.',
  }),
} satisfies TProperties;

/**
 * Fastify's `trustProxy` from TRUST_PROXY. `true` means exactly one trusted hop (the proxy in front), never
 * "believe the leftmost entry", which the client controls. A hop count trusts whoever connects, so when clients can
 * reach the process directly, list the proxies' addresses/CIDRs instead.
 */
export function trustProxyOption(v: string): false | string | ((addr: string, hop: number) => boolean) {
  if (v === 'false') return false;
  const hops = v === 'true' ? 1 : /^[0-9]+$/.test(v) ? Number(v) : undefined;
  if (hops !== undefined) return (_addr: string, hop: number) => hop < hops;
  return v;
}

/** For services with `/internal/*` routes: who may call them (required in production). */
export const internalCallersEnv = {
  INTERNAL_CALLERS: Type.Optional(
    Type.String({
      description:
        'Callers of this service’s /internal routes, `name:credential,…` (credential: the caller’s INTERNAL_API_TOKEN ' +
        'or sha256:<hex> of it); each route serves named callers only. Unset (development): INTERNAL_API_TOKEN is ' +
        'every caller. Required with NODE_ENV=production.',
    }),
  ),
} satisfies TProperties;

/**
 * The shared variables of a trading-path service (wallet, order, payment-processor): it verifies users' access tokens,
 * serves /internal routes to other services and stands behind the gateway. Spread first into its own schema, as
 * `baseEnv(defaultPort)`, `databaseEnv`, `amqpEnv`, `jwtVerifyEnv`, `internalEnv`, `internalCallersEnv` and
 * `proxyEnv` were, in that order (docs/configuration.md lists them so).
 */
export function tradingServiceEnv(defaultPort: number) {
  return {
    ...baseEnv(defaultPort),
    ...databaseEnv,
    ...amqpEnv,
    ...jwtVerifyEnv,
    ...internalEnv,
    ...internalCallersEnv,
    ...proxyEnv,
  } satisfies TProperties;
}
