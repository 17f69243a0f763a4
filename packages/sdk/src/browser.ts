/** The SDK in a browser (package.json `exports` picks this through the `browser` condition): no file session store. */
export { ExchangeClient } from './client.ts';
export type { ExchangeClientOptions, CallOptions, Session } from './client.ts';
export { ExchangeApiError, ExchangeNetworkError, parseRetryAfter } from './errors.ts';
export { ExchangeStream } from './stream.ts';
export type { StreamMessage, StreamOptions } from './stream.ts';
export type * from './types.ts';
