import type pg from 'pg';
import { pingDatabase } from '@exchange/db';
import { createApp, type App } from '@exchange/platform';
import type { Messaging } from '@exchange/messaging';

export interface NotificationAppDeps {
  pool: pg.Pool;
  /** Set once the broker client exists (readiness asks it). */
  broker: { messaging?: Messaging };
  logLevel?: string;
  version?: string;
  fastify?: Parameters<typeof createApp>[0]['fastify'];
}

/**
 * The notification service's HTTP side: /health, /ready (database and broker) and /metrics only. It has no public
 * routes (nothing in Kong) and no internal ones: its input is the event bus, its output SMTP.
 */
export async function buildApp(deps: NotificationAppDeps): Promise<App> {
  return createApp({
    service: 'notification',
    ...(deps.version ? { version: deps.version } : {}),
    ...(deps.logLevel ? { logLevel: deps.logLevel } : {}),
    ...(deps.fastify ? { fastify: deps.fastify } : {}),
    readiness: {
      database: () => pingDatabase(deps.pool),
      broker: async () => {
        const h = await deps.broker.messaging?.health();
        if (!h?.ok) throw new Error(h?.error ?? 'not connected');
      },
    },
    openapi: { title: 'Exchange notification service', description: 'Account emails; no public API' },
  });
}
