import { createHttpMetrics } from '@exchange/platform';
import { between, histogramOf, quantileMs } from './service-time.ts';

// The histogram every service serves (@exchange/platform's metrics), with its own buckets and labels.
function service() {
  const { registry, duration } = createHttpMetrics('order');
  const route = { service: 'order', method: 'POST', route: '/api/v1/orders' };
  return {
    read: async () =>
      histogramOf(await registry.metrics(), 'http_request_duration_seconds', { method: 'POST', route: route.route }),
    observe: (seconds: number, status = '201') => duration.observe({ ...route, status }, seconds),
    other: (seconds: number) =>
      duration.observe({ service: 'order', method: 'GET', route: '/api/v1/orders', status: '200' }, seconds),
  };
}

describe('the order service time of a phase (bench:e2e)', () => {
  it('reads one route across its status codes and leaves the others out', async () => {
    const s = service();
    for (let i = 0; i < 10; i++) s.observe(0.02);
    s.observe(0.3, '503');
    s.other(7);
    const h = await s.read();
    expect(h.get(0.025)).toBe(10);
    expect(h.get(0.5)).toBe(11);
    expect(h.get(Infinity)).toBe(11);
  });

  it('interpolates quantiles inside a bucket as histogram_quantile does', async () => {
    const s = service();
    // 100 observations: 50 in (0.1, 0.25], 49 in (0.25, 0.5], 1 in (5, 10]
    for (let i = 0; i < 50; i++) s.observe(0.2);
    for (let i = 0; i < 49; i++) s.observe(0.3);
    s.observe(8);
    const h = await s.read();
    expect(quantileMs(h, 0.5)).toBeCloseTo(250, 6); // rank 50: the top of the 0.25 bucket
    expect(quantileMs(h, 0.25)).toBeCloseTo(175, 6); // rank 25: halfway through (0.1, 0.25]
    expect(quantileMs(h, 0.99)).toBeCloseTo(500, 6); // rank 99: the top of the 0.5 bucket
    expect(quantileMs(h, 1)).toBeCloseTo(10_000, 6);
  });

  it('counts only what a phase observed, and gives NaN for nothing or a restart', async () => {
    const s = service();
    for (let i = 0; i < 20; i++) s.observe(4); // before the phase
    const before = await s.read();
    for (let i = 0; i < 10; i++) s.observe(0.004);
    const phase = between(before, await s.read());
    expect(phase.get(Infinity)).toBe(10);
    expect(quantileMs(phase, 0.99)).toBeLessThanOrEqual(5);
    expect(quantileMs(between(before, before), 0.5)).toBeNaN();
    // the service restarted: its counters began again below what was read before
    const restarted = service();
    restarted.observe(0.004);
    expect(quantileMs(between(before, await restarted.read()), 0.5)).toBeNaN();
    expect(quantileMs(new Map(), 0.5)).toBeNaN();
  });

  it('falls back to the largest finite bound when the rank is in +Inf', async () => {
    const s = service();
    s.observe(0.003);
    s.observe(60);
    expect(quantileMs(await s.read(), 0.99)).toBe(10_000);
  });
});
