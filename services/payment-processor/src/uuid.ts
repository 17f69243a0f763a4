import { createHash } from 'node:crypto';

/** Namespace of every id the payment-processor derives (a fixed random UUID). */
export const PAYMENT_NAMESPACE = '3d6f1c2e-8a4b-4f0e-9c71-5b2d7e9a1f40';

function parse(uuid: string): Buffer {
  const hex = uuid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new TypeError(`not a UUID: ${uuid}`);
  return Buffer.from(hex, 'hex');
}

/**
 * RFC 9562 UUID version 5 (SHA-1, name-based): the same name always gives the same id. Trade ids and the ids of
 * every message the engine emits are derived this way, so re-applying a command yields byte-identical messages.
 */
export function uuidv5(name: string, namespace: string = PAYMENT_NAMESPACE): string {
  const h = createHash('sha1').update(parse(namespace)).update(name, 'utf8').digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}
