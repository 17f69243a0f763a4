/**
 * The simulated payment rail. Every decision is a pure function of (seed, withdrawal id): a redelivered or replayed
 * payout request gets the same answer (same rail transaction id, same failure), which is what a real rail's
 * idempotency key gives you.
 */
import { createHash } from 'node:crypto';

export interface RailOptions {
  /** Share of payouts rejected by the rail, 0..1. */
  failureRate: number;
  /** Simulated rail latency (ms). */
  delayMs: number;
  seed: string;
}

export interface PayoutRequest {
  withdrawalId: string;
  asset: string;
  amount: string;
  address: string;
}

export type RailResult = { status: 'completed'; railTxId: string } | { status: 'failed'; reason: string };

const FAILURE_REASONS = [
  'RAIL_REJECTED: beneficiary account closed',
  'RAIL_REJECTED: compliance screening failed',
  'RAIL_REJECTED: destination unreachable',
] as const;

function digest(seed: string, kind: string, withdrawalId: string): Buffer {
  return createHash('sha256').update(`${seed}\u0000${kind}\u0000${withdrawalId.toLowerCase()}`).digest();
}

/** The rail's answer for a payout (no side effects, no clock). */
export function railDecision(req: PayoutRequest, opts: Pick<RailOptions, 'failureRate' | 'seed'>): RailResult {
  if (!/^[1-9][0-9]*$/.test(req.amount)) return { status: 'failed', reason: 'RAIL_REJECTED: amount must be positive' };
  const d = digest(opts.seed, 'decision', req.withdrawalId);
  // 32 bits → [0, 1): exact in a double; compared with the configured rate only (never money).
  const u = d.readUInt32BE(0) / 2 ** 32;
  if (u < opts.failureRate) {
    return { status: 'failed', reason: FAILURE_REASONS[d[4]! % FAILURE_REASONS.length]! };
  }
  return {
    status: 'completed',
    railTxId: `sim_${digest(opts.seed, 'tx', req.withdrawalId).toString('hex').slice(0, 32)}`,
  };
}

/** Send a payout: wait the rail's latency, then answer. */
export async function sendPayout(req: PayoutRequest, opts: RailOptions): Promise<RailResult> {
  if (opts.delayMs > 0) await new Promise((r) => setTimeout(r, opts.delayMs));
  return railDecision(req, opts);
}
