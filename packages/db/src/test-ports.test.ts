import { readFileSync } from 'node:fs';
import net from 'node:net';
import { freePortBlock } from './test-ports.ts';

const listen = (port: number) =>
  new Promise<net.Server>((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => resolve(s));
  });

test('a block of free ports below the ephemeral range, each one listenable', async () => {
  const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  for (let i = 0; i < 20; i++) {
    const base = await freePortBlock(6);
    expect(base).toBeGreaterThanOrEqual(20_000);
    expect(base + 5).toBeLessThan(low);
    const servers = await Promise.all([0, 1, 2, 3, 4, 5].map((d) => listen(base + d)));
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
});
