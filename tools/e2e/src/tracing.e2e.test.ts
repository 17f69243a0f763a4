/**
 * One trace per order: the whole stack (gateway included) exports OTLP/HTTP to an in-process receiver while one
 * trade goes through. The buyer's order, placed through the gateway, must be ONE trace from the gateway's span
 * through the order service, its wallet hold (service-to-service fetch), the RabbitMQ hop to the payment-processor,
 * the settlement in the wallet and the order update back in the order service, with the broker hops as
 * producer/consumer spans and the server spans named by route. And an idle stack must export no trace at all:
 * background pollers (outbox relays, sweepers, revoked-session polls, schedulers) stay out of traces.
 */
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { crossTrade, eventually, startTestStack, type TestStack } from './index.ts';

interface Span {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  service: string;
  attributes: Record<string, unknown>;
}
const KIND = { server: 2, client: 3, producer: 4, consumer: 5 };

const spans: Span[] = [];
let receiver: Server;
let t: TestStack;

/** OTLP/HTTP JSON (what @opentelemetry/exporter-trace-otlp-http sends) → flat spans. */
function collect(body: string): void {
  const req = JSON.parse(body) as {
    resourceSpans: Array<{
      resource: { attributes: Array<{ key: string; value: Record<string, unknown> }> };
      scopeSpans: Array<{ spans: Array<Record<string, unknown>> }>;
    }>;
  };
  const value = (v: Record<string, unknown>) => Object.values(v)[0];
  for (const rs of req.resourceSpans) {
    const service = String(value(rs.resource.attributes.find((a) => a.key === 'service.name')!.value));
    for (const ss of rs.scopeSpans)
      for (const s of ss.spans)
        spans.push({
          traceId: String(s.traceId),
          spanId: String(s.spanId),
          ...(s.parentSpanId ? { parentSpanId: String(s.parentSpanId) } : {}),
          name: String(s.name),
          kind: Number(s.kind),
          service,
          attributes: Object.fromEntries(
            ((s.attributes as Array<{ key: string; value: Record<string, unknown> }>) ?? []).map((a) => [
              a.key,
              value(a.value),
            ]),
          ),
        });
  }
}

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      if (req.url === '/v1/traces') collect(body);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  receiver.listen(0, '127.0.0.1');
  await once(receiver, 'listening');
  const { port } = receiver.address() as { port: number };
  t = await startTestStack({
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      // export within a fraction of a second instead of 5 s
      OTEL_BSP_SCHEDULE_DELAY: '200',
    },
  });
}, 180_000);
afterAll(async () => {
  await t?.close();
  receiver?.close();
}, 60_000);

test('an idle stack exports no trace (pollers stay out of traces)', async () => {
  // everything the start-up did (migrations, seeding, first JWKS fetches) has been exported by now
  await new Promise((r) => setTimeout(r, 2_000));
  const before = new Set(spans.map((s) => s.traceId));
  // several poll periods of every background loop (SCHEDULER_POLL_MS is 100 ms in e2e; revoked sessions 5 s)
  await new Promise((r) => setTimeout(r, 12_000));
  const idle = spans.filter((s) => !before.has(s.traceId));
  expect(idle.map((s) => `${s.service}: ${s.name}`)).toEqual([]);
}, 30_000);

test('one order is one trace: gateway → order → wallet hold → payment-processor → settlement → order update', async () => {
  const buyId = await crossTrade(t, '60000');

  // the order's trace, found as Jaeger finds it: by the order.id tag
  const traceId = await eventually(
    async () => spans.find((s) => s.attributes['order.id'] === buyId)?.traceId,
    15_000,
    'a span tagged with the order id',
  );
  const has = (service: string, kind: number, name: RegExp) => (s: Span) =>
    s.traceId === traceId && s.service === service && s.kind === kind && name.test(s.name);
  const expected: Array<[string, (s: Span) => boolean]> = [
    ['gateway server span', has('gateway', KIND.server, /^kong POST /)],
    ['gateway → order client span', has('gateway', KIND.client, /^POST$|^POST /)],
    ['order server span, named by route', has('order', KIND.server, /^POST \/api\/v1\/orders$/)],
    ['order → wallet hold (fetch)', has('order', KIND.client, /^POST/)],
    ['wallet hold server span', has('wallet', KIND.server, /^POST \/internal\/holds/)],
    ['order publishes the command', has('order', KIND.producer, /.*/)],
    ['payment-processor consumes it', has('payment-processor', KIND.consumer, /^orders\.BTC-USD process$/)],
    ['payment-processor publishes the results', has('payment-processor', KIND.producer, /.*/)],
    ['wallet settles the trade', has('wallet', KIND.consumer, /^wallet\.settlement process$/)],
    ['order applies the update', has('order', KIND.consumer, /^order\.events process$/)],
  ];
  const missing = () => expected.filter(([, p]) => !spans.some(p)).map(([what]) => what);
  await eventually(async () => missing().length === 0, 20_000, 'every hop in the trace').catch((e) => {
    const inTrace = spans.filter((s) => s.traceId === traceId).map((s) => `${s.service} ${s.kind} ${s.name}`);
    throw new Error(`${(e as Error).message}\nmissing: ${missing().join(', ')}\ntrace has:\n${inTrace.join('\n')}`);
  });
  // one trace: every span of it hangs off another span of it, up to the gateway's root
  // (a parent ends, and is exported, after its children: give the last ones a moment)
  const roots = () => {
    const ids = new Set(spans.filter((s) => s.traceId === traceId).map((s) => s.spanId));
    return spans
      .filter((s) => s.traceId === traceId && (!s.parentSpanId || !ids.has(s.parentSpanId)))
      .map((s) => `${s.service}: ${s.name}`);
  };
  await eventually(async () => roots().length === 1, 10_000, 'the trace to be complete').catch(() => undefined);
  expect(roots()).toEqual([expect.stringMatching(/^gateway: kong POST /)]);
  // no server span anywhere is named by its method alone
  expect(
    spans
      .filter((s) => s.kind === KIND.server && /^(GET|POST|PUT|PATCH|DELETE)$/.test(s.name))
      .map((s) => `${s.service} ${s.name}`),
  ).toEqual([]);
}, 120_000);
