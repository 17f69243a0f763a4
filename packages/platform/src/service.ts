import closeWithGrace from 'close-with-grace';
import type { App } from './app.ts';

export interface RunOptions {
  host: string;
  port: number;
  /** Upper bound for the whole shutdown; past it the process exits non-zero. */
  shutdownTimeoutMs: number;
}

/**
 * Listen, then on SIGTERM/SIGINT (or an uncaught error) shut down gracefully within a bounded time:
 * stop accepting connections and drain in-flight requests (fastify close; new requests get 503), run `preClose`
 * hooks (services stop their consumers and relays there) and then `onClose` hooks (pools, broker connection).
 */
export async function runService(app: App, opts: RunOptions): Promise<void> {
  closeWithGrace({ delay: opts.shutdownTimeoutMs }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'shutting down after an unexpected error');
    else app.log.info({ signal }, 'shutting down');
    await app.close();
    app.log.info('shutdown complete');
  });
  await app.listen({ host: opts.host, port: opts.port });
}
