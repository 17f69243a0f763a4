/**
 * Serving the web app: by the gateway itself for Kong's `web` routes (host mode) and by the web-only server
 * (compose/Kubernetes). A small fake build in a temp dir stands in for apps/web/dist.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createGateway } from './gateway.ts';
import { createWebServer } from './web.ts';

const root = mkdtempSync(join(tmpdir(), 'web-dist-'));
mkdirSync(join(root, 'assets'));
writeFileSync(join(root, 'index.html'), '<!doctype html><title>Exchange</title>');
writeFileSync(join(root, 'assets/index-abc123.js'), 'console.log(1)');
writeFileSync(join(root, 'config.js'), 'window.EXCHANGE_CONFIG = {};');

let gateway: FastifyInstance;
let web: FastifyInstance;
beforeAll(async () => {
  gateway = await createGateway({
    upstreams: { auth: 'http://127.0.0.1:9', wallet: 'http://127.0.0.1:9', order: 'http://127.0.0.1:9' },
    web: { root, config: { jaegerUrl: 'https://jaeger.internal' } },
  });
  web = await createWebServer({ root, logger: false });
});
afterAll(async () => {
  await gateway.close();
  await web.close();
  rmSync(root, { recursive: true, force: true });
});

test.each(['/', '/markets/BTC-USD', '/console/users', '/wallet'])(
  'the gateway answers the app path %s with index.html, never cached',
  async (url) => {
    const res = await gateway.inject({ method: 'GET', url });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.headers['cache-control']).toBe('no-cache');
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.body).toContain('<title>Exchange</title>');
  },
);

test('hashed assets are cached for a year; a missing asset is 404, not index.html', async () => {
  const res = await gateway.inject({ method: 'GET', url: '/assets/index-abc123.js' });
  expect(res.statusCode).toBe(200);
  expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
  expect((await gateway.inject({ method: 'GET', url: '/assets/nope.js' })).statusCode).toBe(404);
});

test('config.js carries the runtime settings (Jaeger UI URL)', async () => {
  const res = await gateway.inject({ method: 'GET', url: '/config.js' });
  expect(res.headers['content-type']).toMatch(/^text\/javascript/);
  expect(res.body).toBe('window.EXCHANGE_CONFIG = {"jaegerUrl":"https://jaeger.internal"};\n');
});

test('paths outside the app stay unrouted, and the app is never served for writes', async () => {
  for (const url of ['/internal/holds', '/metrics', '/ready', '/whatever'])
    expect((await gateway.inject({ method: 'GET', url })).statusCode).toBe(404);
  expect((await gateway.inject({ method: 'POST', url: '/markets' })).statusCode).toBe(404);
});

test('the web-only server serves the built config.js and reports whether the app is built', async () => {
  expect((await web.inject({ method: 'GET', url: '/config.js' })).body).toBe('window.EXCHANGE_CONFIG = {};');
  expect((await web.inject({ method: 'GET', url: '/health' })).json()).toEqual({ status: 'ok', built: true });
  expect((await web.inject({ method: 'GET', url: '/orders' })).body).toContain('<title>Exchange</title>');
});
