import client from 'prom-client';

export { client as promClient };

export interface HttpMetrics {
  registry: client.Registry;
  requests: client.Counter<'service' | 'method' | 'route' | 'status'>;
  duration: client.Histogram<'service' | 'method' | 'route' | 'status'>;
  errors: client.Counter<'service' | 'route' | 'status' | 'code'>;
}

/**
 * How often the event-loop delay histogram (`nodejs_eventloop_lag_*`) samples. prom-client's default, 10 ms, wakes
 * an idle process 100 times a second: 8 ms of CPU per second per process on the guest the benchmarks run on, and half
 * of an idle stack's context switches (docs/benchmarks.md, twenty-third round). At 100 ms a block longer than the
 * interval is always seen and a shorter one in proportion to its length, which is what a lag alert needs. The
 * percentile gauges read the whole interval between samples: 0.100 s at rest (0.010 before), the lag is what is above.
 */
const EVENT_LOOP_SAMPLE_MS = 100;

/**
 * One registry per app (not prom-client's global), so several apps can live in one test process.
 * Names follow the runbooks: http_requests_total, http_request_duration_seconds, http_errors_total.
 */
export function createHttpMetrics(service: string, registry = new client.Registry()): HttpMetrics {
  registry.setDefaultLabels({ service });
  client.collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  const labelNames = ['service', 'method', 'route', 'status'] as const;
  return {
    registry,
    requests: new client.Counter({
      name: 'http_requests_total',
      help: 'HTTP requests served',
      labelNames,
      registers: [registry],
    }),
    duration: new client.Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration',
      labelNames,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
      registers: [registry],
    }),
    errors: new client.Counter({
      name: 'http_errors_total',
      help: 'HTTP responses with status >= 400, by error code',
      labelNames: ['service', 'route', 'status', 'code'],
      registers: [registry],
    }),
  };
}
