/**
 * Typed client for the wallet's internal hold API (synchronous, idempotent by hold id = order id).
 *   POST /internal/holds               → 201 created, 200 identical replay, 409 conflicting reuse, 400 INSUFFICIENT_FUNDS
 *   POST /internal/holds/:id/release   → releases what is left of the hold (idempotent)
 */
import type { Hold, HoldRequest } from '@exchange/contracts/wallet';

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
  const base = opts.baseUrl.replace(/\/$/, '');
  const timeoutMs = opts.timeoutMs ?? 5000;
  async function call(path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-internal-token': opts.internalToken },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new WalletUnavailableError(`wallet ${path}: ${(err as Error).message}`, { cause: err });
    }
    const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    if (res.status >= 500) throw new WalletUnavailableError(`wallet ${path}: HTTP ${res.status}`);
    return { status: res.status, json };
  }
  const errorOf = (json: Record<string, unknown>) => {
    const e = (json.error ?? {}) as { code?: unknown; message?: unknown };
    return {
      code: typeof e.code === 'string' ? e.code : 'UNKNOWN',
      message: typeof e.message === 'string' ? e.message : '',
    };
  };
  return {
    async hold(req) {
      const { status, json } = await call('/internal/holds', req);
      if (status === 201 || status === 200)
        return { outcome: 'held', replayed: status === 200, hold: json as unknown as Hold };
      const e = errorOf(json);
      if (status === 400 && e.code === 'INSUFFICIENT_FUNDS')
        return { outcome: 'insufficient_funds', message: e.message };
      if (status === 409) return { outcome: 'conflict', message: e.message };
      if (status === 401 || status === 403 || status === 404 || status === 429) {
        // Misconfiguration (token, URL) or throttling: not an answer about this hold.
        throw new WalletUnavailableError(`wallet /internal/holds: HTTP ${status} ${e.code}`);
      }
      return { outcome: 'rejected', status, code: e.code, message: e.message };
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
