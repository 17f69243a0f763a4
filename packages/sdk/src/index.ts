export { ExchangeClient } from './client.ts';
export type { ExchangeClientOptions, CallOptions, Session } from './client.ts';
export { ExchangeApiError, ExchangeNetworkError, parseRetryAfter } from './errors.ts';
export { signRequest } from './signing.ts';
export type { ApiKeyCredentials } from './signing.ts';
export { ExchangeStream } from './stream.ts';
export type { StreamMessage, StreamOptions } from './stream.ts';
export { FileSessionStore, defaultSessionPath } from './session-store.ts';
export type * from './types.ts';
