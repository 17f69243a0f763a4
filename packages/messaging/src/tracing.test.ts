import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { withTransaction } from '@exchange/db';
import { EVENTS_EXCHANGE, createMessaging, silentLogger, type Messaging } from './index.ts';
import { SCHEMA, TestItem, setupEnv, waitFor, type TestEnv } from '../test/helpers.ts';

let env: TestEnv;
let messaging: Messaging;
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

beforeAll(async () => {
  // What the service's OTel SDK does at startup.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  env = await setupEnv('msg_trace');
  messaging = createMessaging({
    url: env.vhost.url,
    service: 'svc',
    pool: env.pool,
    schema: SCHEMA,
    logger: silentLogger,
    relay: { pollIntervalMs: 100 },
  });
  await messaging.declareQueue({
    name: 'svc.traced',
    bindings: [{ exchange: EVENTS_EXCHANGE, routingKey: 'test.item' }],
  });
  await messaging.start();
});

afterAll(async () => {
  await messaging?.close();
  await env?.drop();
  trace.disable();
  propagation.disable();
  context.disable();
});

describe('trace context', () => {
  it('travels from the enqueueing span through the outbox and the broker into the consumer span', async () => {
    const seen: Array<{ traceId: string; headers: Record<string, unknown> }> = [];
    const consumer = await messaging.consume({
      queue: 'svc.traced',
      handler: async (_msg, _client, ctx) => {
        seen.push({ traceId: trace.getActiveSpan()!.spanContext().traceId, headers: ctx.headers });
      },
    });
    const tracer = trace.getTracer('test');
    const msg = TestItem.create({ seq: 1, key: 'k' }, { producer: 'svc' });
    const producerSpan = await tracer.startActiveSpan('POST /api/v1/orders', async (span) => {
      await withTransaction(env.pool, (c) =>
        messaging.enqueue(c, { exchange: EVENTS_EXCHANGE, routingKey: 'test.item', message: msg }),
      );
      span.end();
      return span.spanContext();
    });
    await waitFor(() => seen.length === 1, { what: 'delivery' });
    expect(seen[0]!.traceId).toBe(producerSpan.traceId);
    expect(String(seen[0]!.headers.traceparent)).toBe(`00-${producerSpan.traceId}-${producerSpan.spanId}-01`);
    await waitFor(() => exporter.getFinishedSpans().some((s) => s.name === 'svc.traced process'));
    const consumerSpan = exporter.getFinishedSpans().find((s) => s.name === 'svc.traced process')!;
    expect(consumerSpan.spanContext().traceId).toBe(producerSpan.traceId);
    expect(consumerSpan.parentSpanContext?.spanId).toBe(producerSpan.spanId);
    expect(consumerSpan.attributes['messaging.message.id']).toBe(msg.id);
    await consumer.stop();
  });

  it('stays one trace when AMQP auto-instrumentation re-injects headers at publish time', async () => {
    // What @opentelemetry/instrumentation-amqplib does to ConfirmChannel#publish: a PRODUCER span parented on the
    // *active* context at publish time, injected over the message's headers. The relay publishes in the context the
    // message was enqueued in, so that span (and the consumer after it) stays in the request's trace.
    const probe = await messaging.connection.confirmChannel();
    const proto = Object.getPrototypeOf(probe) as { publish: (...args: unknown[]) => boolean };
    await probe.close();
    const original = proto.publish;
    const tracer = trace.getTracer('fake-amqplib-instrumentation');
    proto.publish = function (this: unknown, ...args: unknown[]) {
      const options = (args[3] ?? {}) as { headers?: Record<string, unknown> };
      const span = tracer.startSpan(`publish ${String(args[0]) || '<default>'}`);
      options.headers = options.headers ?? {};
      propagation.inject(trace.setSpan(context.active(), span), options.headers);
      span.end();
      return original.apply(this, args);
    };
    try {
      const seen: string[] = [];
      const consumer = await messaging.consume({
        queue: 'svc.traced',
        handler: async () => {
          seen.push(trace.getActiveSpan()!.spanContext().traceId);
        },
      });
      const msg = TestItem.create({ seq: 2, key: 'k' }, { producer: 'svc' });
      const traceId = await trace.getTracer('test').startActiveSpan('POST /api/v1/orders', async (span) => {
        await withTransaction(env.pool, (c) =>
          messaging.enqueue(c, { exchange: EVENTS_EXCHANGE, routingKey: 'test.item', message: msg }),
        );
        span.end();
        return span.spanContext().traceId;
      });
      await waitFor(() => seen.length === 1, { what: 'delivery' });
      expect(seen[0]).toBe(traceId);
      const publishSpan = exporter.getFinishedSpans().find((s) => s.name === 'publish exchange.events');
      expect(publishSpan?.spanContext().traceId).toBe(traceId);
      await consumer.stop();
    } finally {
      proto.publish = original;
    }
  });
});
