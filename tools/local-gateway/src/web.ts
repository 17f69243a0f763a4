/**
 * Static serving of the web app (apps/web, built by Vite into apps/web/dist): by the local gateway itself for
 * Kong's `web` routes in host mode, and as the `web` upstream in compose/Kubernetes (web-main.ts). Paths of the
 * single-page app that are not files get index.html; hashed assets are cached for a year, index.html and
 * config.js never. `/config.js` is rendered from the runtime settings when given (JAEGER_UI_URL), so one build
 * serves every environment.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';

export const DEFAULT_WEB_ROOT = fileURLToPath(new URL('../../../apps/web/dist', import.meta.url));

export interface WebOptions {
  /** The built app (index.html, assets/, config.js). */
  root: string;
  /** Settings the page reads from /config.js; without them the built config.js is served. */
  config?: { jaegerUrl?: string };
}

export function webConfigFromEnv(env: NodeJS.ProcessEnv = process.env): WebOptions['config'] {
  return env.JAEGER_UI_URL ? { jaegerUrl: env.JAEGER_UI_URL } : undefined;
}

export async function registerWebFiles(app: FastifyInstance, opts: WebOptions): Promise<void> {
  await app.register(fastifyStatic, { root: opts.root, serve: false, index: false, etag: true, lastModified: true });
}

/** Answer one GET/HEAD of the web app; `path` is the request path without the query. */
export function sendWeb(reply: FastifyReply, path: string, opts: WebOptions): FastifyReply {
  if (!existsSync(join(opts.root, 'index.html'))) {
    return reply
      .code(503)
      .header('content-type', 'text/plain; charset=utf-8')
      .send('The web app is not built: run `pnpm --filter @exchange/web build` (pnpm start does it for you).\n');
  }
  reply.header('x-content-type-options', 'nosniff');
  reply.header('referrer-policy', 'no-referrer');
  reply.header('x-frame-options', 'DENY');
  if (path === '/config.js') {
    reply.header('cache-control', 'no-cache');
    if (opts.config) {
      return reply
        .type('text/javascript; charset=utf-8')
        .send(`window.EXCHANGE_CONFIG = ${JSON.stringify(opts.config)};\n`);
    }
    return reply.sendFile('config.js', { cacheControl: false });
  }
  if (path.startsWith('/assets/')) {
    // Vite names assets by content hash, so a name never changes meaning.
    return reply.sendFile(path.slice(1), { maxAge: '365d', immutable: true });
  }
  reply.header('cache-control', 'no-cache');
  return reply.sendFile('index.html', { cacheControl: false });
}

/** Web-only server for compose/Kubernetes (Kong routes the app's paths here). */
export async function createWebServer(opts: WebOptions & { logger?: boolean }): Promise<FastifyInstance> {
  const app = Fastify({ logger: opts.logger ?? true });
  await registerWebFiles(app, opts);
  app.get('/health', async () => ({ status: 'ok', built: existsSync(join(opts.root, 'index.html')) }));
  app.route({
    method: ['GET', 'HEAD'],
    url: '/*',
    handler: (request, reply) => sendWeb(reply, request.url.split('?')[0] ?? '/', opts),
  });
  return app;
}
