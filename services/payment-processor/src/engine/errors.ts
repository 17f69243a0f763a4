/**
 * What a failed engine command means. The engine never skips a command of its market, so an error is either
 * transient (waited out for as long as it lasts), or the command's content (rejected as an engine outcome, see
 * MarketEngine), or unexplained: retried a few times, then the market is halted (see EngineHost).
 */
import { isDatabaseUnavailable } from '@exchange/messaging';

/**
 * SQLSTATEs that say nothing about the command: the database cannot do it right now.
 *   08xxx connection exception · 40001 serialization failure · 40P01 deadlock · 40003 statement completion unknown ·
 *   53xxx insufficient resources (53100 disk full, 53200 out of memory, 53300 too many connections) ·
 *   55P03 lock timeout · 55006 object in use · 57014 statement timeout / cancel · 57P0x shutdown, crash, cannot
 *   connect now · 25006 read-only transaction (a replica after failover) · 25P03 idle-in-transaction timeout ·
 *   58xxx system / I/O error · 72000 snapshot too old
 */
const TRANSIENT_SQLSTATES = new Set(['40001', '40P01', '40003', '55P03', '55006', '57014', '25006', '25P03', '72000']);
const TRANSIENT_CLASSES = ['08', '53', '57P', '58'];

export function isTransientEngineError(err: unknown): boolean {
  if (isDatabaseUnavailable(err)) return true;
  if (!err || typeof err !== 'object') return false;
  const code = (err as { code?: unknown }).code;
  if (
    typeof code === 'string' &&
    (TRANSIENT_SQLSTATES.has(code) || TRANSIENT_CLASSES.some((c) => code.startsWith(c)))
  ) {
    return true;
  }
  const msg = err instanceof Error ? err.message : String(err);
  // pg-pool and the driver without a SQLSTATE: connection checkout timeouts, a socket closed mid-query
  return /timeout exceeded when trying to connect|Connection terminated|Query read timeout|ECONNRESET|EPIPE/i.test(msg);
}
