import { trace } from '@opentelemetry/api';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { AmqplibInstrumentation } from '@opentelemetry/instrumentation-amqplib';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';

let sdk: NodeSDK | undefined;

/**
 * Start tracing: OTLP/HTTP export (to Jaeger's OTLP receiver) with http, pg and amqplib instrumented and W3C
 * trace context propagation. Off when no endpoint is configured. Call it before the service imports pg/amqplib
 * (services do it in `src/instrument.ts`, loaded with `node --import`).
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
        ignoreIncomingRequestHook: (req) => ['/health', '/ready', '/metrics'].includes(req.url ?? ''),
      }),
      new PgInstrumentation(),
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
 * Tag the current request's span so a trace can be found by a business id in Jaeger (the operator console links
 * each order to `search?tags={"order.id":"<id>"}`). A no-op when tracing is off.
 */
export function tagActiveSpan(attributes: Record<string, string>): void {
  trace.getActiveSpan()?.setAttributes(attributes);
}
