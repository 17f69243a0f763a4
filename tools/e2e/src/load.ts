/** A seeded order flow for the crash tests: limit orders around a mid on two markets, straight to the order service. */
import { ExchangeClient, type Session } from '@exchange/sdk';

export interface FlowStats {
  sent: number;
  accepted: number;
  rejected4xx: number;
  /** Every 5xx answer, also those a retry then got past (so "no 5xx" can fail). */
  serverErrors: number;
  /** Requests that got no answer (connection refused/reset), retried. */
  networkErrors: number;
  /** Up to 20 distinct samples each: `<status> <message>` for 4xx/5xx, `network: …`, `gave up: …`. */
  errors: string[];
}

export function recordFailure(stats: FlowStats, e: unknown): 'client' | 'retry' {
  const status = (e as { status?: number }).status;
  const sample = (s: string) => {
    if (stats.errors.length < 40 && !stats.errors.includes(s)) stats.errors.push(s);
  };
  if (status && status >= 400 && status < 500) {
    stats.rejected4xx++;
    sample(`${status} ${(e as Error).message}`);
    return 'client';
  }
  if (status) {
    stats.serverErrors++;
    sample(`${status} ${(e as Error).message}`);
  } else {
    stats.networkErrors++;
    sample(`network: ${(e as Error).message}`);
  }
  return 'retry';
}

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Send `count` orders with `concurrency` in flight, spread over the sessions. `onProgress(sent)` lets the test kill
 * or restart something mid-flow. A 5xx or a network error while a dependency is down is retried here (a client
 * would; the clientOrderId makes the retry idempotent, so nothing is placed twice) but every one is counted in
 * `serverErrors`/`networkErrors` and sampled in `errors`: the SDK's own retries are off so none is hidden.
 */
export async function orderFlow(opts: {
  orderUrl: string;
  sessions: Session[];
  count: number;
  concurrency: number;
  seed: number;
  onProgress?: (sent: number) => Promise<void> | void;
}): Promise<FlowStats> {
  const rand = rng(opts.seed);
  const clients = opts.sessions.map((session) => new ExchangeClient({ baseUrl: opts.orderUrl, session, retries: 0 }));
  const stats: FlowStats = { sent: 0, accepted: 0, rejected4xx: 0, serverErrors: 0, networkErrors: 0, errors: [] };
  const plan = Array.from({ length: opts.count }, (_, i) => {
    const btc = rand() < 0.7;
    const side = rand() < 0.5 ? ('buy' as const) : ('sell' as const);
    const offset = Math.floor(rand() * 40) - 20; // ticks around the mid; crosses about half the time
    const price = btc
      ? String(60_000 + (side === 'buy' ? offset : -offset))
      : (3000 + (side === 'buy' ? offset : -offset) / 10).toFixed(1);
    const quantity = btc
      ? (0.01 * (1 + Math.floor(rand() * 20))).toFixed(2)
      : (0.1 * (1 + Math.floor(rand() * 20))).toFixed(1);
    return {
      client: clients[i % clients.length]!,
      body: {
        market: btc ? 'BTC-USD' : 'ETH-USD',
        side,
        type: 'limit' as const,
        price,
        quantity,
        timeInForce: rand() < 0.15 ? ('IOC' as const) : ('GTC' as const),
        clientOrderId: `flow-${opts.seed}-${i}`,
      },
    };
  });
  let next = 0;
  const worker = async () => {
    while (next < plan.length) {
      const item = plan[next++]!;
      stats.sent++;
      await opts.onProgress?.(stats.sent);
      for (let attempt = 0; ; attempt++) {
        try {
          await item.client.placeOrder(item.body);
          stats.accepted++;
          break;
        } catch (e) {
          if (recordFailure(stats, e) === 'client') break;
          if (attempt >= 30) {
            stats.errors.push(`gave up: ${(e as Error).message}`);
            break;
          }
          await new Promise((r) => setTimeout(r, 200 * Math.min(attempt + 1, 10)));
        }
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  return stats;
}
