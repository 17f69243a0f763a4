/**
 * Every failed call throws an ExchangeApiError carrying the HTTP status, a stable `code`, the message and the
 * `requestId` (from the `{ error: { code, message, requestId } }` envelope, or the X-Request-Id header for errors
 * the gateway produces itself in Kong's `{ "message": ... }` shape).
 */
const GATEWAY_CODES: Record<number, string> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  411: 'LENGTH_REQUIRED',
  413: 'PAYLOAD_TOO_LARGE',
  429: 'RATE_LIMITED',
  502: 'BAD_GATEWAY',
  503: 'SERVICE_UNAVAILABLE',
  504: 'GATEWAY_TIMEOUT',
};

export class ExchangeApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly requestId: string | undefined;
  readonly details: unknown;
  /** Milliseconds the server asked to wait (Retry-After), when it did. */
  readonly retryAfterMs: number | undefined;
  readonly method: string;
  readonly path: string;

  constructor(p: {
    status: number;
    code: string;
    message: string;
    requestId?: string | undefined;
    details?: unknown;
    retryAfterMs?: number | undefined;
    method: string;
    path: string;
  }) {
    super(p.message);
    this.name = 'ExchangeApiError';
    this.status = p.status;
    this.code = p.code;
    this.requestId = p.requestId;
    this.details = p.details;
    this.retryAfterMs = p.retryAfterMs;
    this.method = p.method;
    this.path = p.path;
  }
}

/** The request never got an HTTP answer (connection refused, reset, timeout). */
export class ExchangeNetworkError extends Error {
  readonly method: string;
  readonly path: string;
  constructor(method: string, path: string, cause: unknown) {
    super(`${method} ${path}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'ExchangeNetworkError';
    this.method = method;
    this.path = path;
  }
}

/** Retry-After: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export async function errorFromResponse(res: Response, method: string, path: string): Promise<ExchangeApiError> {
  const text = await res.text().catch(() => '');
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  const headerId = res.headers.get('x-request-id') ?? undefined;
  const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
  const envelope = (body as { error?: { code?: unknown; message?: unknown; requestId?: unknown; details?: unknown } })
    ?.error;
  if (envelope && typeof envelope === 'object') {
    return new ExchangeApiError({
      status: res.status,
      code: typeof envelope.code === 'string' ? envelope.code : (GATEWAY_CODES[res.status] ?? `HTTP_${res.status}`),
      message: typeof envelope.message === 'string' ? envelope.message : res.statusText,
      requestId: typeof envelope.requestId === 'string' ? envelope.requestId : headerId,
      details: envelope.details,
      retryAfterMs,
      method,
      path,
    });
  }
  // The gateway's own errors (Kong): {"message": "..."} or, from the jwt plugin, {"exp": "token expired"}.
  const obj = body && typeof body === 'object' ? (body as Record<string, unknown>) : {};
  const message =
    typeof obj.message === 'string'
      ? obj.message
      : Object.entries(obj)
          .map(([k, v]) => `${k}: ${String(v)}`)
          .join('; ') ||
        text ||
        res.statusText;
  return new ExchangeApiError({
    status: res.status,
    code: GATEWAY_CODES[res.status] ?? `HTTP_${res.status}`,
    message,
    requestId: headerId,
    details: body,
    retryAfterMs,
    method,
    path,
  });
}
