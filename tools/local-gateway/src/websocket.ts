/**
 * WebSocket proxying: the HTTP/1.1 upgrade request goes through the same admission as any request (route match,
 * jwt, ip-restriction, rate limits), then the gateway opens the upgrade to the upstream and, once the upstream
 * answers 101, splices the two sockets together (as Kong/nginx do). Any other upstream answer is relayed as is.
 */
import { randomUUID } from 'node:crypto';
import { request as httpRequest, type IncomingMessage, STATUS_CODES } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import proxyAddr from 'proxy-addr';
import type { GatewayCore, GatewayOptions } from './gateway.ts';

type GatewayTrust = NonNullable<GatewayOptions['trustProxy']>;

function writeResponse(socket: Duplex, status: number, headers: Record<string, string>, body: string): void {
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`];
  const all = {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    connection: 'close',
  };
  for (const [k, v] of Object.entries(all)) lines.push(`${k}: ${v}`);
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

function rawHeaders(res: IncomingMessage, extra: Record<string, string>): string {
  const lines: string[] = [];
  for (let i = 0; i < res.rawHeaders.length; i += 2) lines.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`);
  for (const [k, v] of Object.entries(extra)) if (res.headers[k.toLowerCase()] === undefined) lines.push(`${k}: ${v}`);
  return lines.join('\r\n');
}

/** The client IP by the same rules as Fastify's trustProxy (proxy-addr): never the client-controlled leftmost entry. */
function clientIp(req: IncomingMessage, trustProxy: GatewayTrust): string {
  const trust =
    trustProxy === false
      ? () => false
      : typeof trustProxy === 'function'
        ? trustProxy
        : proxyAddr.compile(trustProxy.split(',').map((s) => s.trim()));
  const ip = proxyAddr(req, trust);
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}

export function attachWebSocketProxy(
  app: FastifyInstance,
  core: GatewayCore,
  opts: { trustProxy: GatewayTrust; correlationHeader: string | null; echoCorrelation: boolean },
): void {
  // Upgraded connections are not tracked by the HTTP server: close them with the gateway.
  const open = new Set<Duplex>();
  app.addHook('onClose', async () => {
    for (const s of open) s.destroy();
  });
  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    socket.on('error', () => socket.destroy());
    void (async () => {
      const echo: Record<string, string> = {};
      if (opts.correlationHeader) {
        const existing = req.headers[opts.correlationHeader];
        const id = (Array.isArray(existing) ? existing[0] : existing) ?? randomUUID();
        req.headers[opts.correlationHeader] = id;
        if (opts.echoCorrelation) echo[opts.correlationHeader] = id;
      }
      const url = new URL(req.url ?? '/', 'http://gateway.local');
      const ip = clientIp(req, opts.trustProxy);
      const verdict = await core.admit({
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        ip,
        preflight: false,
      });
      if (!verdict.ok) {
        writeResponse(socket, verdict.status, { ...verdict.headers, ...echo }, JSON.stringify(verdict.body));
        return;
      }
      const target = new URL(verdict.upstream);
      const basePath = target.pathname.replace(/\/$/, '');
      const xff = req.headers['x-forwarded-for'];
      const upstreamReq = (target.protocol === 'https:' ? httpsRequest : httpRequest)({
        protocol: target.protocol,
        hostname: target.hostname,
        port: target.port,
        method: req.method,
        path: `${basePath}${verdict.match.upstreamPath}${url.search}`,
        headers: {
          ...req.headers,
          ...verdict.upstreamHeaders,
          host: target.host,
          'x-forwarded-for': xff ? `${xff}, ${ip}` : ip,
          'x-real-ip': ip,
        },
      });
      const extra = { ...verdict.responseHeaders, ...echo };
      upstreamReq.on('upgrade', (res, upstreamSocket, upstreamHead) => {
        socket.write(`HTTP/1.1 101 Switching Protocols\r\n${rawHeaders(res, extra)}\r\n\r\n`);
        if (upstreamHead.length > 0) socket.write(upstreamHead);
        if (head.length > 0) upstreamSocket.write(head);
        open.add(upstreamSocket);
        upstreamSocket.on('close', () => open.delete(upstreamSocket));
        upstreamSocket.on('error', () => socket.destroy());
        socket.on('close', () => upstreamSocket.destroy());
        upstreamSocket.on('close', () => socket.destroy());
        upstreamSocket.pipe(socket).pipe(upstreamSocket);
      });
      upstreamReq.on('response', (res) => {
        socket.write(`HTTP/1.1 ${res.statusCode} ${res.statusMessage}\r\n${rawHeaders(res, extra)}\r\n\r\n`);
        res.pipe(socket);
      });
      upstreamReq.on('error', () => {
        writeResponse(
          socket,
          502,
          echo,
          JSON.stringify({ message: 'An invalid response was received from the upstream server' }),
        );
      });
      upstreamReq.end();
    })().catch(() => socket.destroy());
  });
}
