import { ExchangeApiError } from '@exchange/sdk';

/** The API's code, message and request id of a failure (network failures get NETWORK_ERROR). */
export function errorOf(err: unknown): { code: string; message: string; requestId?: string | undefined } {
  if (err instanceof ExchangeApiError) return { code: err.code, message: err.message, requestId: err.requestId };
  if (err instanceof Error) return { code: 'NETWORK_ERROR', message: err.message };
  return { code: 'ERROR', message: String(err) };
}
