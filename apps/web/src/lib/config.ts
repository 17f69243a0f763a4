/** Runtime settings from /config.js (replaced per deployment; see public/config.js). */
interface RuntimeConfig {
  jaegerUrl?: string;
}

const config: RuntimeConfig = (globalThis as { EXCHANGE_CONFIG?: RuntimeConfig }).EXCHANGE_CONFIG ?? {};

export const jaegerUrl = (config.jaegerUrl ?? 'http://localhost:16686').replace(/\/+$/, '');

/** Jaeger's search for the trace of one order (the order service tags the placing span with `order.id`). */
export function jaegerOrderUrl(orderId: string): string {
  const tags = encodeURIComponent(JSON.stringify({ 'order.id': orderId }));
  return `${jaegerUrl}/search?service=order&tags=${tags}&lookback=7d&limit=20`;
}
