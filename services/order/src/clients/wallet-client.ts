/**
 * Typed client for the wallet's internal hold API (synchronous, idempotent by hold id = order id).
 *   POST /internal/holds               → 201 created, 200 identical replay, 409 conflicting reuse, 400 INSUFFICIENT_FUNDS
 *   POST /internal/holds/batch         → the same answer per hold, for the holds asked for in the same turn
 *   POST /internal/holds/:id/release   → releases what is left of the hold (idempotent)
 */
import http from 'node:http';
import https from 'node:https';
import { MAX_HOLD_BATCH, type Hold, type HoldBatchResult, type HoldRequest } from '@exchange/contracts/wallet';

export type { HoldRequest };

export type HoldResult =
  | { outcome: 'held'; replayed: boolean; hold: Hold }
  | { outcome: 'insufficient_funds'; message: string }
  | { outcome: 'conflict'; message: string }
  | { outcome: 'rejected'; status: number; code: string; message: string };

/** The wallet could not give an answer (network, timeout, 5xx): the truth is unknown, the order stays pending. */
export class WalletUnavailableError extends Error {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super(message, opts);
    this.name = 'WalletUnavailableError';
  }
}

export interface WalletClient {
  hold(req: HoldRequest): Promise<HoldResult>;
  release(holdId: string, reason: string): Promise<void>;
}

export function createWalletClient(opts: { baseUrl: string; internalToken: string; timeoutMs?: number }): WalletClient {
  const base = new URL(opts.baseUrl.replace(/\/$/, ''));
  const timeoutMs = opts.timeoutMs ?? 5000;
  // node:http with a keep-alive agent rather than fetch(): every order makes this call, and fetch's WHATWG machinery
  // (Request/Response objects, web streams) cost the order service more CPU per order than all its SQL (profile in
  // docs/benchmarks.md). Connections are reused; at most `maxSockets` calls are in flight, the rest queue.
  const transport = base.protocol === 'https:' ? https : http;
  // Idle sockets are closed well before the server's keep-alive timeout (fastify: 72 s), so a reused socket is
  // rarely closed under a request; when one is (ECONNRESET on a reused socket), the call is sent again once — both
  // calls are idempotent by hold id.
  const agent = new transport.Agent({ keepAlive: true, maxSockets: 64, timeout: 30_000 });
  function call(
    path: string,
    body: unknown,
    retried = false,
  ): Promise<{ status: number; json: Record<string, unknown> }> {
    const payload = JSON.stringify(body);
    return new Promise((resolve, reject) => {
      // A timer cleared on the answer, not AbortSignal.timeout(): that one's timer stays armed after the answer and,
      // when it fires, builds an AbortError with its stack for a signal nobody listens to any more, once per order.
      const settle = () => clearTimeout(timer);
      const fail = (err: Error) => {
        settle();
        reject(new WalletUnavailableError(`wallet ${path}: ${err.message}`, { cause: err }));
      };
      const req: http.ClientRequest = transport.request(
        new URL(`${base.pathname.replace(/\/$/, '')}${path}`, base),
        {
          method: 'POST',
          agent,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(payload),
            'x-internal-token': opts.internalToken,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', fail);
          res.on('end', () => {
            settle();
            const status = res.statusCode ?? 0;
            if (status >= 500) return reject(new WalletUnavailableError(`wallet ${path}: HTTP ${status}`));
            let json: Record<string, unknown> = {};
            try {
              json = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
            } catch {
              // not JSON: judged by its status alone
            }
            resolve({ status, json });
          });
        },
      );
      // declared after the request, read only by its callbacks, which run on later turns
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (!retried && req.reusedSocket && err.code === 'ECONNRESET') {
          settle();
          call(path, body, true).then(resolve, reject);
        } else fail(err);
      });
      req.end(payload);
    });
  }
  const errorOf = (json: Record<string, unknown>) => {
    const e = (json.error ?? {}) as { code?: unknown; message?: unknown };
    return {
      code: typeof e.code === 'string' ? e.code : 'UNKNOWN',
      message: typeof e.message === 'string' ? e.message : '',
    };
  };
  /** A hold's answer, judged by the status and body the wallet gave it (alone or as an item of a batch). */
  const judge = (status: number, json: Record<string, unknown>): HoldResult => {
    if (status === 201 || status === 200)
      return { outcome: 'held', replayed: status === 200, hold: json as unknown as Hold };
    const e = errorOf(json);
    if (status >= 500) throw new WalletUnavailableError(`wallet /internal/holds: HTTP ${status} ${e.code}`);
    if (status === 400 && e.code === 'INSUFFICIENT_FUNDS') return { outcome: 'insufficient_funds', message: e.message };
    if (status === 409) return { outcome: 'conflict', message: e.message };
    if (status === 401 || status === 403 || status === 404 || status === 429) {
      // Misconfiguration (token, URL) or throttling: not an answer about this hold.
      throw new WalletUnavailableError(`wallet /internal/holds: HTTP ${status} ${e.code}`);
    }
    return { outcome: 'rejected', status, code: e.code, message: e.message };
  };
  const holdOne = async (req: HoldRequest): Promise<HoldResult> => {
    const { status, json } = await call('/internal/holds', req);
    return judge(status, json);
  };

  // Holds asked for in the same turn of the event loop go in one call: order entry's pending inserts are batched, so
  // the orders of one insert batch reach their hold together. Nothing waits for more: an idle service sends each hold
  // alone (the single route), as before.
  type Waiter = { req: HoldRequest; resolve(r: HoldResult): void; reject(e: unknown): void };
  let queued: Waiter[] = [];
  const one = (w: Waiter) => holdOne(w.req).then(w.resolve, w.reject);
  async function send(batch: Waiter[]): Promise<void> {
    if (batch.length === 1) return one(batch[0]!);
    let res: { status: number; json: Record<string, unknown> };
    try {
      res = await call('/internal/holds/batch', { holds: batch.map((w) => w.req) });
    } catch (err) {
      for (const w of batch) w.reject(err);
      return;
    }
    const results = (res.json as Partial<HoldBatchResult>).results;
    if (res.status !== 200 || !Array.isArray(results) || results.length !== batch.length) {
      // A wallet without the batch route (404, during a rolling deploy) or one request it refuses whole (400: a hold
      // its schema rejects): every hold alone, each getting the answer the single route gives it.
      if (res.status === 404 || res.status === 400) {
        await Promise.all(batch.map(one));
        return;
      }
      const err = new WalletUnavailableError(`wallet /internal/holds/batch: HTTP ${res.status}`);
      for (const w of batch) w.reject(err);
      return;
    }
    batch.forEach((w, i) => {
      const r = results[i]!;
      try {
        w.resolve(judge(r.status, (r.hold ?? { error: r.error }) as Record<string, unknown>));
      } catch (err) {
        w.reject(err);
      }
    });
  }
  function flush(): void {
    const all = queued;
    queued = [];
    for (let i = 0; i < all.length; i += MAX_HOLD_BATCH) void send(all.slice(i, i + MAX_HOLD_BATCH));
  }

  return {
    hold(req) {
      return new Promise<HoldResult>((resolve, reject) => {
        if (queued.length === 0) setImmediate(flush);
        queued.push({ req, resolve, reject });
      });
    },
    async release(holdId, reason) {
      const { status, json } = await call(`/internal/holds/${encodeURIComponent(holdId)}/release`, { reason });
      // 404: no such hold (never created) — nothing to release.
      if (status === 200 || status === 201 || status === 404) return;
      const e = errorOf(json);
      if (status === 409) return; // already released/captured: releasing is idempotent from our side
      throw new WalletUnavailableError(`wallet release ${holdId}: HTTP ${status} ${e.code}`);
    },
  };
}
