/** The subset of pino's API this package logs through (a pino/fastify logger fits as is). */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

function line(level: string, obj: object, msg?: string): string {
  const o: Record<string, unknown> = { level, time: new Date().toISOString(), msg };
  for (const [k, v] of Object.entries(obj)) o[k] = v instanceof Error ? { message: v.message, stack: v.stack } : v;
  return JSON.stringify(o);
}

/** Default: warnings and errors as JSON lines on stderr; debug/info dropped. */
export const stderrLogger: Logger = {
  debug() {},
  info() {},
  warn: (obj, msg) => process.stderr.write(line('warn', obj, msg) + '\n'),
  error: (obj, msg) => process.stderr.write(line('error', obj, msg) + '\n'),
};

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
