/**
 * The demo market maker as a process of the host-mode stack (tools/stack starts it unless `--no-demo`).
 *   EXCHANGE_URL (the gateway, default http://127.0.0.1:8000), DEMO_PASSWORD (both demo accounts; required),
 *   LOG_LEVEL (info). Refuses to run with NODE_ENV=production: the demo accounts mint sandbox money.
 */
import { pino } from 'pino';
import { runMarketMaker } from './market-maker.ts';

const log = pino({ level: process.env.LOG_LEVEL ?? 'info', base: { service: 'demo' } });

if (process.env.NODE_ENV === 'production') {
  log.error('the demo market maker does not run in production (NODE_ENV=production)');
  process.exit(1);
}
const password = process.env.DEMO_PASSWORD;
if (!password) {
  log.error('DEMO_PASSWORD is not set');
  process.exit(1);
}

const stop = new AbortController();
process.once('SIGINT', () => stop.abort());
process.once('SIGTERM', () => stop.abort());

try {
  const stats = await runMarketMaker({
    baseUrl: process.env.EXCHANGE_URL ?? 'http://127.0.0.1:8000',
    password,
    signal: stop.signal,
    log: (level, msg, fields) => log[level](fields ?? {}, msg),
  });
  log.info(stats, 'demo market maker stopped');
} catch (err) {
  if (!stop.signal.aborted) {
    log.error({ err }, 'demo market maker failed');
    process.exit(1);
  }
}
