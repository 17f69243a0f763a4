import { randomUUID } from 'node:crypto';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyReply,
  type FastifyRequest,
  type FastifyInstance,
  type FastifyServerOptions,
  type RawReplyDefaultExpression,
  type RawRequestDefaultExpression,
  type RawServerDefault,
} from 'fastify';
import swagger from '@fastify/swagger';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import { trace } from '@opentelemetry/api';
import { AppError } from './errors.ts';
import { createHttpMetrics, type HttpMetrics } from './metrics.ts';
import { nameServerSpan } from './telemetry.ts';
import { ErrorBody } from './schemas.ts';

export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

export type ReadinessCheck = () => Promise<unknown>;

export interface CreateAppOptions {
  service: string;
  version?: string;
  logLevel?: string;
  /** Dependencies checked by /ready, e.g. { database: () => pingDatabase(pool), broker: () => amqp.health() }. */
  readiness?: Record<string, ReadinessCheck>;
  /** Per-check timeout for /ready. */
  readinessTimeoutMs?: number;
  /** Max request body in bytes (default 64 KiB: an exchange API has no business accepting large bodies). */
  bodyLimit?: number;
  /** OpenAPI document info. */
  openapi?: { title?: string; description?: string };
  /** Extra fastify options (tests pass `logger: false` or a stream). */
  fastify?: Partial<FastifyServerOptions>;
}

/** Secrets that must never reach a log line, wherever they appear. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'req.headers["x-api-signature"]',
  'req.headers["x-internal-token"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.newPassword',
  '*.currentPassword',
  '*.token',
  '*.accessToken',
  '*.refreshToken',
  '*.secret',
  '*.apiSecret',
  '*.totpCode',
  '*.recoveryCode',
  '*.privateKey',
  'password',
  'token',
  'secret',
];

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Fastify's per-request lines ("incoming request", "request completed") at debug instead of info: at the default
 * level a busy service would print two lines per request and bury its warnings. Failed requests stay visible through
 * the error handler (info for 4xx, error for 5xx); per-request traffic is in the HTTP metrics and the gateway's
 * access log.
 */
export class DebugRequestLogController extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    if (!this.isLogDisabled(request)) request.log.debug({ req: request }, 'incoming request');
  }
  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error) return super.requestCompleted(error, request, reply);
    if (!this.isLogDisabled(request)) {
      reply.log.debug({ res: reply, responseTime: reply.elapsedTime }, 'request completed');
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: HttpMetrics;
    serviceName: string;
    recentErrors: RecentErrors;
    /**
     * What the client is told about `err`, recorded as the error handler records a failed request (log, error
     * metric by code, recent errors). For a route that answers several items in one response, each with its own
     * outcome (e.g. a batch of holds): each item's error is then seen like a request's.
     */
    recordError(req: FastifyRequest, err: unknown): ErrorOutcome;
  }
}

/** What a client is told about an error: the status, a stable code and a message. */
export interface ErrorOutcome {
  status: number;
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

/** The one mapping of errors to client answers: AppError as thrown, validation 400, fastify 4xx, anything else 500. */
function errorOutcome(err: unknown): ErrorOutcome {
  if (err instanceof AppError) {
    return {
      status: err.statusCode,
      code: err.code,
      message: err.message,
      ...(err.details ? { details: err.details } : {}),
    };
  }
  const f = err as FastifyError;
  if (f.validation) return { status: 400, code: 'VALIDATION_ERROR', message: f.message };
  if (typeof f.statusCode === 'number' && f.statusCode < 500) {
    return {
      status: f.statusCode,
      code: mapFastifyCode(f, f.statusCode),
      message: f.statusCode === 413 ? 'request body too large' : f.message,
    };
  }
  return { status: 500, code: 'INTERNAL_ERROR', message: 'internal error' };
}

/** Ring buffer of the latest errors, served at /errors (the runbooks' "recent errors" view). */
export class RecentErrors {
  private readonly items: Array<Record<string, unknown>> = [];
  private readonly max: number;
  constructor(max = 200) {
    this.max = max;
  }
  push(e: Record<string, unknown>) {
    this.items.push(e);
    if (this.items.length > this.max) this.items.shift();
  }
  list(limit: number) {
    return this.items.slice(-limit).reverse();
  }
  summary() {
    const byCode: Record<string, number> = {};
    for (const i of this.items) byCode[String(i.code)] = (byCode[String(i.code)] ?? 0) + 1;
    return { total: this.items.length, byCode };
  }
}

export async function createApp(opts: CreateAppOptions): Promise<App> {
  const startedAt = Date.now();
  const app = Fastify({
    logger: {
      level: opts.logLevel ?? 'info',
      base: { service: opts.service },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      // Every log line written inside a traced request carries its trace id, so logs and Jaeger join up.
      mixin() {
        const ctx = trace.getActiveSpan()?.spanContext();
        return ctx ? { trace_id: ctx.traceId, span_id: ctx.spanId } : {};
      },
    },
    requestIdHeader: 'x-request-id',
    logController: new DebugRequestLogController({ requestIdLogLabel: 'requestId' }),
    genReqId: () => randomUUID(),
    bodyLimit: opts.bodyLimit ?? 64 * 1024,
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    ...opts.fastify,
  }).withTypeProvider<TypeBoxTypeProvider>();

  // A client-supplied request id is only trusted when it looks like one; otherwise we mint our own.
  app.addHook('onRequest', async (req, reply) => {
    const incoming = req.headers['x-request-id'];
    if (typeof incoming === 'string' && !REQUEST_ID.test(incoming)) {
      (req as { id: string }).id = randomUUID();
    }
    reply.header('x-request-id', req.id);
    nameServerSpan(req.method, req.routeOptions.url);
  });

  // Query strings and path params arrive as text and are coerced to their schema types; bodies are JSON and are
  // never coerced, so `"amount": 12.5` (a float) is rejected instead of silently becoming the string "12.5".
  app.setValidatorCompiler(({ schema, httpPart }) =>
    refusingNul((httpPart === 'body' ? strictAjv : coercingAjv).compile(schema as object)),
  );
  app.decorate('serviceName', opts.service);
  app.decorate('metrics', createHttpMetrics(opts.service));
  app.decorate('recentErrors', new RecentErrors());
  app.addSchema(ErrorBody);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: opts.openapi?.title ?? `${opts.service} API`,
        description: opts.openapi?.description,
        version: opts.version ?? '0.1.0',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
        },
      },
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    const labels = { service: opts.service, method: req.method, route, status: String(reply.statusCode) };
    app.metrics.requests.inc(labels);
    app.metrics.duration.observe(labels, reply.elapsedTime / 1000);
  });

  // While shutting down, answer in-flight requests with `Connection: close` so keep-alive sockets do not hold the
  // server open past the drain (Node only closes sockets that are idle at the moment close() is called).
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (_req, reply, payload) => {
    if (closing) reply.header('connection', 'close');
    return payload;
  });

  app.decorate('recordError', (req: FastifyRequest, err: unknown): ErrorOutcome => {
    const outcome = errorOutcome(err);
    const { status, code, message } = outcome;
    if (status >= 500) req.log.error({ err }, 'request failed');
    else req.log.info({ code, status }, 'request rejected');
    const route = req.routeOptions.url ?? 'unmatched';
    app.metrics.errors.inc({ service: opts.service, route, status: String(status), code });
    app.recentErrors.push({
      at: new Date().toISOString(),
      requestId: req.id,
      method: req.method,
      route,
      status,
      code,
      message: status >= 500 ? String((err as Error | undefined)?.message).slice(0, 500) : message,
    });
    return outcome;
  });

  app.setErrorHandler((err: FastifyError | AppError, req, reply) => {
    if (err instanceof AppError && err.headers) reply.headers(err.headers);
    const { status, code, message, details } = app.recordError(req, err);
    return reply.status(status).send({ error: { code, message, requestId: req.id, ...(details ? { details } : {}) } });
  });

  app.setNotFoundHandler((req, reply) => {
    app.metrics.errors.inc({ service: opts.service, route: 'unmatched', status: '404', code: 'ROUTE_NOT_FOUND' });
    return reply.status(404).send({
      error: {
        code: 'ROUTE_NOT_FOUND',
        message: `no route ${req.method} ${req.url.split('?')[0]}`,
        requestId: req.id,
      },
    });
  });

  const ops = { tags: ['ops'] };
  app.get(
    '/health',
    {
      schema: {
        ...ops,
        summary: 'Liveness: the process is up',
        response: {
          200: Type.Object({
            status: Type.Literal('healthy'),
            service: Type.String(),
            version: Type.String(),
            timestamp: Type.String(),
            uptime_s: Type.Integer(),
          }),
        },
      },
    },
    async () => ({
      status: 'healthy' as const,
      service: opts.service,
      version: opts.version ?? '0.1.0',
      timestamp: new Date().toISOString(),
      uptime_s: Math.floor((Date.now() - startedAt) / 1000),
    }),
  );

  const Check = Type.Object({
    status: Type.Union([Type.Literal('healthy'), Type.Literal('unhealthy')]),
    latency_ms: Type.Number(),
    error: Type.Optional(Type.String()),
  });
  const ReadyBody = Type.Object({
    status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]),
    service: Type.String(),
    checks: Type.Record(Type.String(), Check),
  });
  const timeoutMs = opts.readinessTimeoutMs ?? 2000;
  app.get(
    '/ready',
    {
      schema: {
        ...ops,
        summary: 'Readiness: every dependency with status and latency',
        response: { 200: ReadyBody, 503: ReadyBody },
      },
    },
    async (_req, reply) => {
      const entries = await Promise.all(
        Object.entries(opts.readiness ?? {}).map(async ([name, check]) => {
          const t0 = performance.now();
          try {
            await withTimeout(check(), timeoutMs, name);
            return [name, { status: 'healthy' as const, latency_ms: round(performance.now() - t0) }] as const;
          } catch (e) {
            return [
              name,
              {
                status: 'unhealthy' as const,
                latency_ms: round(performance.now() - t0),
                error: String((e as Error).message ?? e),
              },
            ] as const;
          }
        }),
      );
      const checks = Object.fromEntries<Static<typeof Check>>(entries);
      const ok = entries.every(([, c]) => c.status === 'healthy');
      return reply.status(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not_ready', service: opts.service, checks });
    },
  );

  app.get('/metrics', { schema: { ...ops, summary: 'Prometheus metrics', hide: true } }, async (_req, reply) => {
    reply.header('content-type', app.metrics.registry.contentType);
    return app.metrics.registry.metrics();
  });

  app.get(
    '/errors',
    {
      schema: {
        ...ops,
        summary: 'Most recent errors served by this instance (newest first) with a summary by code',
        querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }) }),
      },
    },
    async (req) => ({ summary: app.recentErrors.summary(), errors: app.recentErrors.list(req.query.limit) }),
  );

  return app;
}

function mapFastifyCode(err: FastifyError, status: number): string {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'BODY_TOO_LARGE';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'UNSUPPORTED_MEDIA_TYPE';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'EMPTY_BODY';
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return 'INVALID_JSON';
    default:
      if (err instanceof SyntaxError) return 'INVALID_JSON';
      return status === 404 ? 'NOT_FOUND' : status === 405 ? 'METHOD_NOT_ALLOWED' : 'BAD_REQUEST';
  }
}

function makeAjv(coerceTypes: false | 'array') {
  const ajv = new Ajv({ coerceTypes, useDefaults: true, removeAdditional: false, allErrors: false, strict: false });
  addFormats.default(ajv);
  return ajv;
}
const strictAjv = makeAjv(false);

/**
 * `validate`, and then no NUL character in any string of the validated part. JSON and URLs can carry `\u0000`, but
 * PostgreSQL's text cannot store it (invalid byte sequence, a 500 at the first query), and no field of this API
 * means one: refused here, as a validation error of its field, for every route at once.
 */
function refusingNul(validate: ValidateFunction): ValidateFunction {
  const wrapped = ((data: unknown, ctx?: Parameters<ValidateFunction>[1]) => {
    if (!validate(data, ctx)) {
      wrapped.errors = validate.errors;
      return false;
    }
    const at = nulAt(data, 0);
    if (!at) {
      wrapped.errors = null;
      return true;
    }
    wrapped.errors = [
      {
        instancePath: at.map((k) => `/${k}`).join(''),
        schemaPath: '#/nul',
        keyword: 'nul',
        params: {},
        message: 'must not contain NUL (\\u0000)',
      },
    ];
    return false;
  }) as ValidateFunction;
  // fastify passes the parent (the request) when the validator has a schemaEnv, so coercion can replace a root value
  Object.assign(wrapped, { schema: validate.schema, schemaEnv: validate.schemaEnv });
  return wrapped;
}

/**
 * The path (keys from the root) to the first string holding a NUL, or to the object with such a key; undefined when
 * there is none. It allocates only on a find, as it runs on every request. Depth is bounded by the body limit.
 */
function nulAt(v: unknown, depth: number): string[] | undefined {
  if (typeof v === 'string') return v.includes('\u0000') ? [] : undefined;
  if (v === null || typeof v !== 'object' || depth > 64) return undefined;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const at = nulAt(v[i], depth + 1);
      if (at) return [String(i), ...at];
    }
    return undefined;
  }
  for (const k in v) {
    if (k.includes('\u0000')) return [];
    const at = nulAt((v as Record<string, unknown>)[k], depth + 1);
    if (at) return [k, ...at];
  }
  return undefined;
}

const coercingAjv = makeAjv('array');

const round = (ms: number) => Math.round(ms * 100) / 100;

function withTimeout<T>(p: Promise<T>, ms: number, name: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${name} check timed out after ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}
