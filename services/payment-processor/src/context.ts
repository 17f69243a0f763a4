/** The payment-processor's service context: what its routes share, and its Fastify decoration (`app.payment`). */
import type { Pool } from '@exchange/db';
import type { EngineHost } from './engine/engine-host.ts';

export interface PaymentContext {
  pool: Pool;
  /** This replica's market engines. */
  engines: EngineHost;
  replicaId: string;
}

declare module 'fastify' {
  interface FastifyInstance {
    payment: PaymentContext;
  }
}
