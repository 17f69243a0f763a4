/**
 * A JSON call to another service's internal API (`x-internal-token`): GET without a body, POST with one; anything but
 * 200 is an error naming the service and path, and a call never waits longer than `timeoutMs`.
 */
export function internalJsonCaller(opts: {
  service: string;
  baseUrl: string;
  internalToken: string;
  timeoutMs?: number;
}): <T>(path: string, body?: unknown) => Promise<T> {
  const base = opts.baseUrl.replace(/\/$/, '');
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return async <T>(path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${base}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: {
        'x-internal-token': opts.internalToken,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (res.status !== 200) throw new Error(`${opts.service} ${path}: HTTP ${res.status}`);
    return (await res.json()) as T;
  };
}
