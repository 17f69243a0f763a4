import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';

const fixture = fileURLToPath(new URL('../test/fixtures/slow-server.ts', import.meta.url));
const instrument = fileURLToPath(new URL('./instrument.ts', import.meta.url));

function start(env: Record<string, string> = {}, preload: string[] = []) {
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', ...preload, fixture], {
    env: { ...process.env, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const port = new Promise<number>((resolve, reject) => {
    const t = setInterval(() => {
      const m = /LISTENING (\d+)/.exec(out);
      if (m) {
        clearInterval(t);
        resolve(Number(m[1]));
      }
    }, 20);
    child.on('exit', () => reject(new Error(`fixture exited: ${out}`)));
  });
  return { child, port, output: () => out };
}

/** Until the fixture says a /slow request is being handled. */
async function inFlight(output: () => string) {
  while (!output().includes('SLOW STARTED')) await new Promise((r) => setTimeout(r, 20));
}

async function exitOf(child: ChildProcess) {
  if (child.exitCode !== null) return child.exitCode;
  const [code] = await once(child, 'exit');
  return code as number;
}

describe('graceful shutdown', () => {
  it('on SIGTERM drains the in-flight request, refuses new work, runs preClose then onClose, exits 0', async () => {
    const { child, port, output } = start();
    const p = await port;
    const inflight = fetch(`http://127.0.0.1:${p}/slow`).then((r) => r.json());
    await inFlight(output);
    child.kill('SIGTERM');
    // New connections are refused once the server stops listening, which follows SIGTERM by a moment (a fixed
    // 100 ms raced under load): ask until refused, for at most 5 s.
    // A new TCP connection each time (fetch would reuse its kept-alive one).
    const refusedNow = () =>
      new Promise<boolean>((resolve) => {
        const socket = connect(p, '127.0.0.1');
        socket.once('connect', () => {
          socket.destroy();
          resolve(false);
        });
        socket.once('error', () => resolve(true));
      });
    let refused = false;
    for (const until = Date.now() + 5_000; !refused && Date.now() < until;) {
      refused = await refusedNow();
      if (!refused) await new Promise((r) => setTimeout(r, 25));
    }
    expect(refused).toBe(true);
    expect(await inflight).toEqual({ done: true });
    expect(await exitOf(child)).toBe(0);
    const out = output();
    expect(out.indexOf('PRECLOSE')).toBeGreaterThan(-1);
    expect(out.indexOf('ONCLOSE')).toBeGreaterThan(out.indexOf('PRECLOSE'));
  });

  it('gives up after the shutdown timeout instead of hanging', async () => {
    const { child, port, output } = start({ SLOW_MS: '20000', SHUTDOWN_TIMEOUT_MS: '500' });
    const p = await port;
    void fetch(`http://127.0.0.1:${p}/slow`).catch(() => {});
    await inFlight(output);
    const t0 = Date.now();
    child.kill('SIGTERM');
    const code = await exitOf(child);
    expect(code).not.toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});

describe('telemetry', () => {
  let collector: Server;
  const spans: Array<{ name: string; traceId: string; service: string }> = [];
  beforeAll(async () => {
    // A real OTLP/HTTP JSON receiver standing in for Jaeger's collector.
    collector = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        try {
          const doc = JSON.parse(body);
          for (const rs of doc.resourceSpans ?? []) {
            const service = rs.resource?.attributes?.find((a: { key: string }) => a.key === 'service.name')?.value
              ?.stringValue;
            for (const ss of rs.scopeSpans ?? [])
              for (const s of ss.spans ?? []) spans.push({ name: s.name, traceId: s.traceId, service });
          }
        } catch {
          /* protobuf or empty: ignored */
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    }).listen(0, '127.0.0.1');
    await once(collector, 'listening');
  });
  afterAll(() => collector.close());

  it('exports server spans over OTLP and continues an incoming W3C trace', async () => {
    const addr = collector.address() as { port: number };
    const { child, port } = start(
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${addr.port}`,
        OTEL_SERVICE_NAME: 'fixture',
        OTEL_BSP_SCHEDULE_DELAY: '100',
      },
      ['--import', instrument],
    );
    const p = await port;
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const r = await fetch(`http://127.0.0.1:${p}/slow`, {
      headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
    });
    expect(r.status).toBe(200);
    const deadline = Date.now() + 10_000;
    while (!spans.some((s) => s.traceId === traceId) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGTERM');
    await exitOf(child);
    const mine = spans.filter((s) => s.traceId === traceId);
    expect(mine.length).toBeGreaterThan(0);
    expect(mine[0]!.service).toBe('fixture');
  });
});
