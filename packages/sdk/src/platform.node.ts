/**
 * Node side of the SDK's two platform needs (the browser side is platform.browser.ts; package.json `imports`
 * picks one through the `browser` condition): an event emitter, a WebSocket that can send extra handshake headers
 * (X-Forwarded-For for simulated clients in tests), and HMAC-SHA256 for API-key signing.
 */
import { createHmac } from 'node:crypto';
import WebSocket from 'ws';

export { EventEmitter } from 'node:events';

/** The WHATWG WebSocket surface the stream uses; `ws` implements it in Node, the browser natively. */
export type SocketLike = Pick<WebSocket, 'readyState' | 'OPEN' | 'send' | 'close'> & {
  addEventListener(type: 'open' | 'message' | 'error' | 'close', listener: (event: any) => void): void;
};

export function openSocket(url: string, headers: Record<string, string>): SocketLike {
  return new WebSocket(url, { headers });
}

export function hmacSha256Hex(secret: string, data: string): string {
  return createHmac('sha256', secret).update(data).digest('hex');
}
