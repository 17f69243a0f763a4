import { createHash } from 'node:crypto';
import pg from 'pg';

/**
 * Server-side prepared statements for the statements a service runs over and over.
 *
 * Every order costs tens of statements, and on this hardware a statement's round trip — not its execution — is
 * where the CPU goes: PostgreSQL parses and plans an unnamed statement on every call. A named statement is parsed
 * once per connection and then only bound and executed (measured on the order path's `SELECT … WHERE user_id = $1
 * AND client_order_id = $2`: backend CPU 198 → 85 µs, client 200 → 145 µs per call; docs/benchmarks.md).
 *
 * Naming is automatic, so no call site has to remember it, and bounded, so a statement whose text varies (a
 * multi-row VALUES list sized by its batch) cannot fill every connection with prepared statements:
 * - only statements with parameters are named (a parameterless text may hold several statements, which the
 *   extended protocol cannot prepare; BEGIN/COMMIT gain nothing);
 * - a text is named from its third use on, and at most `MAX_NAMED` texts per process are;
 * - the name is a hash of the text, so every connection of every pool agrees on it.
 * A statement PostgreSQL refuses to re-use ("cached plan must not change result type", after a migration changed a
 * table under a running service) is never named again in this process: that call fails once, like any statement
 * racing a DDL change, and the next runs unnamed.
 */
const MAX_NAMED = 256;
const MIN_USES = 3;
const MAX_TRACKED = 10_000;

const named = new Map<string, string>();
const uses = new Map<string, number>();
const refused = new Set<string>();

function nameFor(text: string): string | undefined {
  const name = named.get(text);
  if (name !== undefined) return name;
  if (refused.has(text) || named.size >= MAX_NAMED) return undefined;
  const n = (uses.get(text) ?? 0) + 1;
  if (n < MIN_USES) {
    if (uses.size < MAX_TRACKED) uses.set(text, n);
    return undefined;
  }
  uses.delete(text);
  const fresh = 'x_' + createHash('sha1').update(text).digest('hex').slice(0, 20);
  named.set(text, fresh);
  return fresh;
}

/** SQLSTATE 0A000 with this message: the statement's result columns changed since it was prepared. */
function isStalePlan(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | null;
  return e?.code === '0A000' && /cached plan must not change result type/.test(e.message ?? '');
}

function refuse(text: string): void {
  named.delete(text);
  refused.add(text);
}

type QueryArgs = [config: unknown, values?: unknown, callback?: unknown];

/** `pg.Client` that names its repeated, parameterised statements (see above). Used by `createPool`. */
export class PreparingClient extends pg.Client {
  // pg's overloads (text or config, values, callback, submittables) are passed through untouched except for the name.
  override query(...args: QueryArgs): never {
    const [config, values, callback] = args;
    const superQuery = super.query as (...a: unknown[]) => unknown;
    const isConfigObject = typeof config === 'object' && config !== null;
    if (isConfigObject && (typeof (config as { submit?: unknown }).submit === 'function' || 'name' in config)) {
      return superQuery.apply(this, args) as never;
    }
    const text = typeof config === 'string' ? config : isConfigObject ? (config as { text?: unknown }).text : undefined;
    const params = Array.isArray(values)
      ? values
      : isConfigObject
        ? (config as { values?: unknown }).values
        : undefined;
    if (typeof text !== 'string' || !Array.isArray(params) || params.length === 0) {
      return superQuery.apply(this, args) as never;
    }
    const name = nameFor(text);
    if (name === undefined) return superQuery.apply(this, args) as never;
    const withName = isConfigObject ? { ...(config as object), name } : { text, name };
    if (typeof callback === 'function' || typeof values === 'function') {
      const cb = (typeof callback === 'function' ? callback : values) as (err: unknown, res: unknown) => void;
      const onDone = (err: unknown, res: unknown) => {
        if (err && isStalePlan(err)) refuse(text);
        cb(err, res);
      };
      return (
        typeof values === 'function'
          ? superQuery.call(this, withName, onDone)
          : superQuery.call(this, withName, values, onDone)
      ) as never;
    }
    const result = superQuery.call(this, withName, values) as Promise<unknown>;
    return result.catch((err: unknown) => {
      if (isStalePlan(err)) refuse(text);
      throw err;
    }) as never;
  }
}
