/**
 * The broker connection's socket has Nagle's algorithm off. amqplib leaves it on, and then a publish written right
 * after an ack on the same connection waits for the broker's delayed ACK (40 ms on Linux): at low load every hop of
 * the order → engine → wallet path took ~60 ms instead of a few. Checked on the socket the real connection opens.
 */
import net from 'node:net';
import { RabbitConnection } from './connection.ts';
import { silentLogger } from './index.ts';
import { createTestVhost, type TestVhost } from './testing.ts';

let vhost: TestVhost;
beforeAll(async () => {
  vhost = await createTestVhost('msg_conn_nodelay');
});
afterAll(async () => {
  await vhost?.drop();
});

it('opens its socket to the broker with TCP_NODELAY', async () => {
  const port = Number(new URL(vhost.url).port || 5672);
  const calls: Array<{ remotePort: number | undefined; noDelay: boolean | undefined }> = [];
  // Recorded on the way through to the real method: the socket, the broker and the connection are all real.
  const real = net.Socket.prototype.setNoDelay;
  net.Socket.prototype.setNoDelay = function (this: net.Socket, on?: boolean) {
    calls.push({ remotePort: this.remotePort, noDelay: on });
    return real.call(this, on);
  };
  const conn = new RabbitConnection({ url: vhost.url, name: 'nodelay-test', logger: silentLogger });
  try {
    await conn.start();
    await conn.channel();
    const toBroker = calls.filter((c) => c.remotePort === port);
    expect(toBroker.length).toBeGreaterThan(0);
    expect(toBroker.at(-1)!.noDelay).toBe(true);
  } finally {
    net.Socket.prototype.setNoDelay = real;
    await conn.close();
  }
});
