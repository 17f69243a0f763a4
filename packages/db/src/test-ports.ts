import { readFileSync } from 'node:fs';
import net from 'node:net';

/**
 * Ports for test processes that must get the same port back after a restart (a RabbitMQ node's `stop_app` and
 * `start_app`, a PostgreSQL restart, a service killed and started again). They come from below the kernel's
 * ephemeral range: a port inside it can be taken by any process's outgoing connection while its listener is down,
 * and the restart then fails with EADDRINUSE.
 */
const LOWEST = 20_000;

function ephemeralLow(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    const n = Number(low);
    return Number.isInteger(n) ? n : 32_768;
  } catch {
    return 32_768;
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * The first of `count` consecutive ports, all free now and all below the ephemeral range. The start is random so
 * that parallel test files rarely try the same block; a block with a port in use is skipped.
 */
export async function freePortBlock(count = 1): Promise<number> {
  // a machine whose ephemeral range starts below LOWEST leaves no safe block: take any, as before
  const top = ephemeralLow() - count > LOWEST + 1000 ? ephemeralLow() - count : 65_535 - count;
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = LOWEST + Math.floor(Math.random() * (top - LOWEST));
    let free = true;
    for (let p = base; p < base + count && free; p++) free = await canListen(p);
    if (free) return base;
  }
  throw new Error(`no ${count} consecutive free ports between ${LOWEST} and ${top}`);
}
