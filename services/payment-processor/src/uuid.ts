import { createHash } from 'node:crypto';

/** Namespace of every id the payment-processor derives (a fixed random UUID). */
export const PAYMENT_NAMESPACE = '3d6f1c2e-8a4b-4f0e-9c71-5b2d7e9a1f40';

function parse(uuid: string): Buffer {
  const hex = uuid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new TypeError(`not a UUID: ${uuid}`);
  return Buffer.from(hex, 'hex');
}

/** SHA-1 of (namespace, name): RFC 9562's name-based hash. */
function nameHash(name: string, namespace: string): Buffer {
  return createHash('sha1').update(parse(namespace)).update(name, 'utf8').digest();
}

/** 32 hex digits in the 8-4-4-4-12 form. */
function format(x: string): string {
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/**
 * RFC 9562 UUID version 5 (SHA-1, name-based): the same name always gives the same id, for ids derived from
 * something other than a journal seq (payouts, auction ends). Trade and message ids use `orderedUuid`.
 */
export function uuidv5(name: string, namespace: string = PAYMENT_NAMESPACE): string {
  const h = nameHash(name, namespace);
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  return format(h.subarray(0, 16).toString('hex'));
}

const SUB_LIMIT = 2 ** 24;
const prefixes = new Map<string, bigint>();

/** 50 bits of the SHA-1 of (namespace, name), cached: one name serves a market's epoch, thousands of ids a second. */
function namePrefix(name: string, namespace: string): bigint {
  const key = `${namespace}\n${name}`;
  let p = prefixes.get(key);
  if (p === undefined) {
    if (prefixes.size >= 1024) prefixes.clear();
    p = nameHash(name, namespace).readBigUInt64BE(0) >> 14n;
    prefixes.set(key, p);
  }
  return p;
}

/**
 * RFC 9562 UUID version 8 (custom layout): deterministic like `uuidv5`, but ordered. 32 bits of the name's hash,
 * then `seq` (48 bits), `sub` (24 bits) and 18 more bits of the hash, around the version and variant bits.
 *
 * Why: these ids key btree indexes that grow with every order (the consumers' inboxes, trades, the wallet's
 * settlements and journal). A SHA-1 id lands on a random leaf of an index that outgrows the buffer cache once the
 * database holds millions of rows: a page read and, after each checkpoint, a full-page image in the WAL per row. The
 * ids of one name (a market's epoch) are consecutive here, so each insert lands on the rightmost leaf of that name's
 * range, the one the last insert touched.
 *
 * Two names share ids only if their 50 hash bits collide and they reach the same (seq, sub): across ten thousand
 * market epochs, about 1 in 20 million. A `sub` past 24 bits (a command with 16 million messages) falls back to
 * `uuidv5`, which another version nibble keeps apart.
 */
export function orderedUuid(name: string, seq: number, sub = 0, namespace: string = PAYMENT_NAMESPACE): string {
  if (!Number.isSafeInteger(seq) || seq < 0 || seq >= 2 ** 48) throw new RangeError(`seq out of range: ${seq}`);
  if (!Number.isSafeInteger(sub) || sub < 0) throw new RangeError(`sub out of range: ${sub}`);
  if (sub >= SUB_LIMIT) return uuidv5(`${name}:${seq}:${sub}`, namespace);
  const h = namePrefix(name, namespace);
  // 122 bits in order of significance: hash high 32, seq 48, sub 24, hash low 18
  const bits = ((h >> 18n) << 90n) | (BigInt(seq) << 42n) | (BigInt(sub) << 18n) | (h & 0x3ffffn);
  const id =
    ((bits >> 74n) << 80n) | // UUID bits 0-47
    (0x8n << 76n) | // version 8
    (((bits >> 62n) & 0xfffn) << 64n) | // bits 52-63
    (0b10n << 62n) | // RFC 9562 variant
    (bits & ((1n << 62n) - 1n)); // bits 66-127
  return format(id.toString(16).padStart(32, '0'));
}
