/**
 * The order service's own time for `POST /api/v1/orders` over a phase, from its `http_request_duration_seconds`
 * histogram read before and after the phase. Beside the client's latency it shows where an order waits: what the
 * client sees beyond it is spent in front of the service (the gateway, its upstream pool, the kernel's queues).
 * docs/benchmarks.md, twenty-sixth round: at 500/s offered the client saw 19 s at p99 while the service's own
 * durations stayed under 1 s.
 */

/** Cumulative counts by upper bound (`le`, in seconds; +Inf included), summed over the series that matched. */
export type Histogram = Map<number, number>;

const SERIES = /^(\w+)_bucket\{([^}]*)\}\s+(\S+)/;
const LABEL = /(\w+)="((?:[^"\\]|\\.)*)"/g;

/**
 * The buckets of `metric` in a Prometheus text exposition, summed over every series whose labels include `match`
 * (all status codes of one route, say). Empty when no series matches.
 */
export function histogramOf(text: string, metric: string, match: Record<string, string>): Histogram {
  const out: Histogram = new Map();
  for (const line of text.split('\n')) {
    const m = SERIES.exec(line);
    if (!m || m[1] !== metric) continue;
    const labels = Object.fromEntries([...m[2]!.matchAll(LABEL)].map((l) => [l[1]!, l[2]!]));
    if (!Object.entries(match).every(([k, v]) => labels[k] === v) || labels.le === undefined) continue;
    const le = labels.le === '+Inf' ? Infinity : Number(labels.le);
    out.set(le, (out.get(le) ?? 0) + Number(m[3]));
  }
  return out;
}

/** What was observed between two reads of the same histogram (a restart in between gives counts below zero: NaN). */
export function between(before: Histogram, after: Histogram): Histogram {
  const out: Histogram = new Map();
  for (const [le, n] of after) out.set(le, n - (before.get(le) ?? 0));
  return out;
}

/**
 * The q-quantile in milliseconds, interpolated linearly inside its bucket as Prometheus's `histogram_quantile`
 * does (the first bucket starts at 0), and the largest finite bound when the rank falls in +Inf. NaN when nothing
 * was observed.
 */
export function quantileMs(h: Histogram, q: number): number {
  const bounds = [...h.keys()].sort((a, b) => a - b);
  const total = h.get(Infinity) ?? (bounds.length ? h.get(bounds[bounds.length - 1]!)! : 0);
  if (!(total > 0) || [...h.values()].some((n) => n < 0)) return NaN;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const le of bounds) {
    const count = h.get(le)!;
    if (count >= rank) {
      if (le === Infinity) return lower * 1000;
      if (count === below) return le * 1000;
      return (lower + ((le - lower) * (rank - below)) / (count - below)) * 1000;
    }
    lower = le;
    below = count;
  }
  return lower * 1000;
}

/** The order service's histogram for placing orders, or undefined when its /metrics does not answer. */
export async function readOrderEntryHistogram(orderServiceUrl: string): Promise<Histogram | undefined> {
  try {
    const res = await fetch(new URL('/metrics', orderServiceUrl), { signal: AbortSignal.timeout(5000) });
    if (!res.ok) return undefined;
    return histogramOf(await res.text(), 'http_request_duration_seconds', {
      method: 'POST',
      route: '/api/v1/orders',
    });
  } catch {
    return undefined;
  }
}
