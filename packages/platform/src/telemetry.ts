import { NodeSDK } from '@opentelemetry/sdk-node';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { AmqplibInstrumentation } from '@opentelemetry/instrumentation-amqplib';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { trace, type Attributes } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';

let sdk: NodeSDK | undefined;

/** Probes and scrapes: never traced. */
const UNTRACED = new Set(['/health', '/ready', '/metrics']);

/**
 * An incoming request that starts no trace: probes, and service-to-service `/internal/*` calls that arrive without
 * trace context. Those come from another service's background poller (revoked sessions, open orders for
 * reconciliation): the caller has no trace to continue, and a root trace per poll would bury the traces of real work.
 */
export function untracedRequest(url: string | undefined, headers: Record<string, unknown>): boolean {
  const path = (url ?? '').split('?')[0]!;
  return UNTRACED.has(path) || (path.startsWith('/internal/') && !headers.traceparent);
}

/**
 * Start tracing: OTLP/HTTP export (to Jaeger's OTLP receiver) with http (server and client), fetch/undici (every
 * service-to-service call, so e.g. the order's wallet hold joins the order's trace), pg and amqplib instrumented and
 * W3C trace context propagation. Off when no endpoint is configured. Call it before the service imports pg/amqplib
 * (services do it in `src/instrument.ts`, loaded with `node --import`).
 *
 * Cost and noise: client and database spans are only recorded inside a trace (`requireParent…`), so background
 * pollers (outbox relays, sweepers, schedulers) produce no spans at all while idle; once they do work they run in the
 * context of the message or request that caused it. Sampling follows the standard OTEL_TRACES_SAMPLER /
 * OTEL_TRACES_SAMPLER_ARG variables (default: parent-based, always on).
 */
export function startTelemetry(opts: {
  serviceName: string;
  version?: string;
  endpoint?: string | undefined;
}): boolean {
  if (!opts.endpoint || sdk) return false;
  sdk = new NodeSDK({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: opts.serviceName,
      [ATTR_SERVICE_VERSION]: opts.version ?? '0.1.0',
    }),
    traceExporter: new OTLPTraceExporter({ url: `${opts.endpoint.replace(/\/$/, '')}/v1/traces` }),
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (req) => untracedRequest(req.url, req.headers),
        requireParentforOutgoingSpans: true,
      }),
      new UndiciInstrumentation({ requireParentforSpans: true }),
      new PgInstrumentation({ requireParentSpan: true }),
      new AmqplibInstrumentation(),
    ],
  });
  sdk.start();
  return true;
}

export async function stopTelemetry(): Promise<void> {
  await sdk?.shutdown();
  sdk = undefined;
}

/**
 * Names the current HTTP server span after the matched route (`POST /api/v1/orders`, not `POST`) and records
 * `http.route`, as Fastify's own instrumentation would; Jaeger lists operations by this name. No-op when untraced.
 */
export function nameServerSpan(method: string, route: string | undefined): void {
  if (!route) return;
  const span = trace.getActiveSpan();
  if (!span?.isRecording()) return;
  span.updateName(`${method} ${route}`);
  span.setAttribute('http.route', route);
}

/** Adds business identifiers (e.g. `order.id`) to the current span, so a trace can be found by them in Jaeger. */
export function annotateSpan(attributes: Attributes): void {
  const span = trace.getActiveSpan();
  if (span?.isRecording()) span.setAttributes(attributes);
}
