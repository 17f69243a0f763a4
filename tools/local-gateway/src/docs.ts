/**
 * Browsable API reference at /docs (Scalar, served from the package: no CDN), over docs/openapi.yaml, which
 * `pnpm openapi` generates from the services. The raw document is at /docs/openapi.yaml and /docs/openapi.json.
 * The file is re-read on every request, so regenerating it needs no restart.
 */
import { existsSync, readFileSync } from 'node:fs';
import apiReference from '@scalar/fastify-api-reference';
import Fastify, { type FastifyInstance } from 'fastify';
import { parse } from 'yaml';

const PLACEHOLDER = {
  openapi: '3.1.0',
  info: {
    title: 'Exchange API',
    version: '0',
    description: 'docs/openapi.yaml has not been generated yet: run `pnpm openapi`.',
  },
  paths: {},
};

export function readOpenapi(path: string): Record<string, unknown> {
  if (!existsSync(path)) return PLACEHOLDER;
  return parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
}

export async function registerDocs(app: FastifyInstance, opts: { openapiPath: string }): Promise<void> {
  await app.register(apiReference, {
    routePrefix: '/docs',
    logLevel: 'warn',
    configuration: { content: () => readOpenapi(opts.openapiPath), title: 'Exchange API' },
  });
}

/** Docs-only server (compose/Kubernetes: the `api-docs` upstream of Kong's /docs route). */
export async function createDocsServer(opts: { openapiPath: string; logger?: boolean }): Promise<FastifyInstance> {
  const app = Fastify({ logger: opts.logger ?? true });
  await registerDocs(app, opts);
  app.get('/health', async () => ({ status: 'ok' }));
  return app;
}
