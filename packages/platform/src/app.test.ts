import { Writable } from 'node:stream';
import { Type } from '@sinclair/typebox';
import { createTestDatabase, type TestDatabase } from '@exchange/db/testing';
import {
  AppError,
  badRequest,
  createApp,
  errorResponses,
  FeatureFlags,
  registerFeatureFlagRoutes,
  registerIdempotency,
} from './index.ts';

function captureLogs() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  return { lines, stream };
}

async function makeApp(readiness = {}) {
  const logs = captureLogs();
  const app = await createApp({
    service: 'demo',
    readiness,
    fastify: {
      logger: {
        level: 'info',
        stream: logs.stream,
        redact: { paths: ['req.headers.authorization', '*.password', '*.token'], censor: '[redacted]' },
      },
    } as never,
  });
  app.post(
    '/things',
    {
      schema: {
        body: Type.Object(
          { amount: Type.String({ pattern: '^[0-9]+$' }), password: Type.Optional(Type.String()) },
          { additionalProperties: false },
        ),
        response: { 201: Type.Object({ ok: Type.Boolean(), n: Type.Integer() }), ...errorResponses(400) },
      },
    },
    async (req, reply) => {
      req.log.info({ body: req.body }, 'got body');
      if (req.body.amount === '13') throw badRequest('UNLUCKY', 'thirteen is not allowed', { amount: '13' });
      if (req.body.amount === '500') throw new Error('database password=hunter2 exploded');
      return reply.status(201).send({ ok: true, n: counter++ });
    },
  );
  let counter = 1;
  app.get('/teapot', async () => {
    throw new AppError(418, 'TEAPOT', 'short and stout');
  });
  await app.ready();
  return { app, logs };
}

describe('createApp', () => {
  it('serves /health', async () => {
    const { app } = await makeApp();
    const r = await app.inject({ url: '/health' });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ status: 'healthy', service: 'demo' });
    await app.close();
  });

  it('reports each dependency with latency on /ready and 503 when one is down', async () => {
    const { app } = await makeApp({
      database: async () => {},
      broker: async () => Promise.reject(new Error('ECONNREFUSED')),
    });
    const r = await app.inject({ url: '/ready' });
    expect(r.statusCode).toBe(503);
    const body = r.json();
    expect(body.checks.database.status).toBe('healthy');
    expect(typeof body.checks.database.latency_ms).toBe('number');
    expect(body.checks.broker).toMatchObject({ status: 'unhealthy', error: 'ECONNREFUSED' });
    await app.close();
  });

  it('renders validation errors as 400 VALIDATION_ERROR with the request id', async () => {
    const { app } = await makeApp();
    const r = await app.inject({
      method: 'POST',
      url: '/things',
      payload: { amount: 12 },
      headers: { 'x-request-id': 'abc-123' },
    });
    expect(r.statusCode).toBe(400);
    expect(r.headers['x-request-id']).toBe('abc-123');
    expect(r.json().error).toMatchObject({ code: 'VALIDATION_ERROR', requestId: 'abc-123' });
    await app.close();
  });

  it('refuses NUL in any string of a validated part as a 400, and still coerces and defaults', async () => {
    // PostgreSQL's text cannot hold \u0000: before this check such a string was a 500 at the first query
    const app = await createApp({ service: 'demo', fastify: { logger: false } });
    app.post(
      '/notes/:id',
      {
        schema: {
          params: Type.Object({ id: Type.String({ maxLength: 20 }) }),
          querystring: Type.Object({
            limit: Type.Integer({ minimum: 1, default: 5 }),
            q: Type.Optional(Type.String()),
          }),
          body: Type.Object({
            text: Type.String(),
            tags: Type.Optional(Type.Array(Type.Record(Type.String(), Type.String()))),
          }),
        },
      },
      async (req) => ({ id: req.params.id, limit: req.query.limit, text: req.body.text }),
    );
    await app.ready();
    const post = (url: string, payload: unknown) => app.inject({ method: 'POST', url, payload: payload as object });
    const refused = async (url: string, payload: unknown, where: string) => {
      const r = await post(url, payload);
      expect(r.statusCode).toBe(400);
      expect(r.json().error.code).toBe('VALIDATION_ERROR');
      expect(r.json().error.message).toBe(`${where} must not contain NUL (\\u0000)`);
    };
    await refused('/notes/1', { text: 'a\u0000b' }, 'body/text');
    await refused('/notes/1', { text: 'ok', tags: [{ k: 'v' }, { k: '\u0000' }] }, 'body/tags/1/k');
    await refused('/notes/1', { text: 'ok', tags: [{ ['k\u0000']: 'v' }] }, 'body/tags/0');
    await refused('/notes/1?q=a%00', { text: 'ok' }, 'querystring/q');
    await refused('/notes/a%00', { text: 'ok' }, 'params/id');
    // what is not NUL goes through as before: the query's integer coerced, its default filled in, emoji kept
    const ok = await post('/notes/%F0%9F%92%A5?limit=7', { text: 'caf\u00e9 \u{1F4A5}' });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ id: '\u{1F4A5}', limit: 7, text: 'caf\u00e9 \u{1F4A5}' });
    expect((await post('/notes/1', { text: 'x' })).json().limit).toBe(5);
    // the schema's own errors come first, unchanged
    const wrongType = await post('/notes/1', { text: 12 });
    expect(wrongType.json().error.message).toBe('body/text must be string');
    await app.close();
  });

  it('maps malformed JSON, unknown routes and AppErrors to stable codes', async () => {
    const { app } = await makeApp();
    const bad = await app.inject({
      method: 'POST',
      url: '/things',
      payload: '{"amount":',
      headers: { 'content-type': 'application/json' },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('INVALID_JSON');
    const missing = await app.inject({ url: '/nope' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('ROUTE_NOT_FOUND');
    const tea = await app.inject({ url: '/teapot' });
    expect(tea.statusCode).toBe(418);
    expect(tea.json().error).toMatchObject({ code: 'TEAPOT', message: 'short and stout' });
    const unlucky = await app.inject({ method: 'POST', url: '/things', payload: { amount: '13' } });
    expect(unlucky.json().error).toMatchObject({ code: 'UNLUCKY', details: { amount: '13' } });
    const big = await app.inject({ method: 'POST', url: '/things', payload: { amount: '1'.repeat(70_000) } });
    expect(big.statusCode).toBe(413);
    expect(big.json().error.code).toBe('BODY_TOO_LARGE');
    await app.close();
  });

  it('never leaks internals on a 500, and counts errors in http_errors_total', async () => {
    const { app } = await makeApp();
    const r = await app.inject({ method: 'POST', url: '/things', payload: { amount: '500' } });
    expect(r.statusCode).toBe(500);
    expect(r.json().error).toMatchObject({ code: 'INTERNAL_ERROR', message: 'internal error' });
    expect(r.body).not.toContain('hunter2');
    const m = await app.inject({ url: '/metrics' });
    expect(m.body).toMatch(/http_errors_total\{[^}]*route="\/things"[^}]*code="INTERNAL_ERROR"[^}]*\} 1/);
    expect(m.body).toMatch(/http_request_duration_seconds_bucket\{[^}]*route="\/things"/);
    expect(m.body).toContain('process_cpu_user_seconds_total');
    expect(m.body).toContain('nodejs_eventloop_lag_p99_seconds');
    const errors = await app.inject({ url: '/errors?limit=5' });
    expect(errors.json().summary.byCode.INTERNAL_ERROR).toBe(1);
    await app.close();
  });

  it('redacts passwords and tokens from logs', async () => {
    const { app, logs } = await makeApp();
    await app.inject({
      method: 'POST',
      url: '/things',
      payload: { amount: '1', password: 'correct horse battery' },
      headers: { authorization: 'Bearer secret.jwt.value' },
    });
    const all = logs.lines.join('\n');
    expect(all).toContain('got body');
    expect(all).not.toContain('correct horse battery');
    await app.close();
  });
});

describe('idempotency and feature flags (real Postgres)', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('platform');
    await db.pool.query(`CREATE SCHEMA svc;
      CREATE TABLE svc.idempotency_keys (principal text NOT NULL, key text NOT NULL, method text NOT NULL, path text NOT NULL,
        request_hash text NOT NULL, status_code integer, response_body text, created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (principal, key));
      CREATE TABLE svc.feature_flags (name text PRIMARY KEY, enabled boolean NOT NULL, reason text, updated_by text,
        updated_at timestamptz NOT NULL DEFAULT now());`);
  });
  afterAll(async () => db.drop());

  it('replays the same response for the same key and body, 422 for another body', async () => {
    const app = await createApp({ service: 'demo', fastify: { logger: false } });
    registerIdempotency(app, { pool: db.pool, schema: 'svc' });
    let n = 0;
    app.post('/pay', { schema: { body: Type.Object({ amount: Type.String() }) } }, async (_req, reply) =>
      reply.status(201).send({ n: ++n }),
    );
    await app.ready();
    const send = (amount: string, key = 'k-1') =>
      app.inject({ method: 'POST', url: '/pay', payload: { amount }, headers: { 'idempotency-key': key } });
    const a = await send('10');
    const b = await send('10');
    expect(a.statusCode).toBe(201);
    expect(b.statusCode).toBe(201);
    expect(b.json()).toEqual(a.json());
    expect(b.headers['idempotent-replayed']).toBe('true');
    expect(n).toBe(1);
    const c = await send('11');
    expect(c.statusCode).toBe(422);
    expect(c.json().error.code).toBe('IDEMPOTENCY_KEY_REUSED');
    const d = await send('10', 'bad key with spaces');
    expect(d.json().error.code).toBe('INVALID_IDEMPOTENCY_KEY');
    await app.close();
  });

  it('persists kill switches and serves the admin routes', async () => {
    const flags = new FeatureFlags({ pool: db.pool, schema: 'svc', defaults: { trading: true } });
    const app = await createApp({ service: 'demo', fastify: { logger: false } });
    registerFeatureFlagRoutes(app, flags, {
      authorize: async (req) => {
        if (req.headers['x-role'] !== 'admin') throw new AppError(403, 'FORBIDDEN', 'admin only');
      },
      actorOf: () => 'admin-1',
    });
    await app.ready();
    expect(await flags.isEnabled('trading')).toBe(true);
    const denied = await app.inject({ method: 'POST', url: '/api/v1/admin/feature-flags/trading/disable' });
    expect(denied.statusCode).toBe(403);
    const r = await app.inject({
      method: 'POST',
      url: '/api/v1/admin/feature-flags/trading/disable',
      headers: { 'x-role': 'admin' },
      payload: { reason: 'incident 42' },
    });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ name: 'trading', enabled: false, updatedBy: 'admin-1', reason: 'incident 42' });
    // A fresh instance (another replica, or after a restart) sees the persisted value.
    const other = new FeatureFlags({ pool: db.pool, schema: 'svc', defaults: { trading: true } });
    expect(await other.isEnabled('trading')).toBe(false);
    const unknown = await app.inject({
      method: 'POST',
      url: '/api/v1/admin/feature-flags/nope/disable',
      headers: { 'x-role': 'admin' },
    });
    expect(unknown.statusCode).toBe(404);
    await app.close();
  });
});
