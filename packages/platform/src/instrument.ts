// Loaded with `node --import @exchange/platform/instrument` before a service's main module, so that the ESM loader
// hook is in place before pg, amqplib and http are imported and OpenTelemetry can patch them.
import { register } from 'node:module';
import { startTelemetry } from './telemetry.ts';

const endpoint = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
// Without an endpoint nothing is traced (startTelemetry does nothing), so nothing needs patching either. The hook
// sends every module the service loads through a loader thread: about a second of each service's start-up.
if (endpoint) register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);
startTelemetry({
  serviceName: process.env.OTEL_SERVICE_NAME ?? 'exchange',
  version: process.env.SERVICE_VERSION,
  endpoint,
});
