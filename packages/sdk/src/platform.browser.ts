/**
 * Browser side of the SDK's platform needs (see platform.node.ts). The native WebSocket cannot send handshake
 * headers, so `headers` are ignored here; API-key signing is refused because an API secret must never sit in a page.
 */
export { EventEmitter } from 'eventemitter3';

export interface SocketLike {
  readonly readyState: number;
  readonly OPEN: number;
  send(data: string): void;
  close(): void;
  addEventListener(type: 'open' | 'message' | 'error' | 'close', listener: (event: any) => void): void;
}

export function openSocket(url: string, _headers: Record<string, string>): SocketLike {
  return new WebSocket(url);
}

export function hmacSha256Hex(_secret: string, _data: string): string {
  throw new Error('API-key signing is not available in the browser: sign in with a session instead');
}
