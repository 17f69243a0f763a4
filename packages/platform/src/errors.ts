/**
 * The one error type services throw for anything a client should see. `code` is stable (clients switch on it);
 * `message` is for humans. Anything that is not an AppError becomes a 500 with a generic message.
 */
export class AppError extends Error {
  readonly statusCode: number;
  readonly code: string;
  readonly details: Record<string, unknown> | undefined;
  readonly headers: Record<string, string> | undefined;
  constructor(
    statusCode: number,
    code: string,
    message: string,
    opts: { details?: Record<string, unknown>; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = 'AppError';
    this.statusCode = statusCode;
    this.code = code;
    this.details = opts.details;
    this.headers = opts.headers;
  }
}

export const badRequest = (code: string, message: string, details?: Record<string, unknown>) =>
  new AppError(400, code, message, details ? { details } : {});
export const unauthorized = (code = 'UNAUTHORIZED', message = 'authentication required') =>
  new AppError(401, code, message, { headers: { 'www-authenticate': 'Bearer' } });
export const forbidden = (code = 'FORBIDDEN', message = 'not allowed') => new AppError(403, code, message);
export const notFound = (code = 'NOT_FOUND', message = 'not found') => new AppError(404, code, message);
export const conflict = (code: string, message: string) => new AppError(409, code, message);
export const unprocessable = (code: string, message: string) => new AppError(422, code, message);
export const tooManyRequests = (message: string, retryAfterSeconds: number) =>
  new AppError(429, 'RATE_LIMITED', message, { headers: { 'retry-after': String(retryAfterSeconds) } });
export const serviceUnavailable = (code: string, message: string) => new AppError(503, code, message);
