/**
 * The wallet client's deadline, against a real HTTP server on loopback that answers late or never: a call gets its
 * answer if it comes within `timeoutMs`, and a WalletUnavailableError naming the deadline if it does not.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { createWalletClient, WalletUnavailableError, type HoldRequest } from './wallet-client.ts';

let server: http.Server;
let url: string;
let delayMs = 0;
const hanging = new Set<http.ServerResponse>();

beforeAll(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (delayMs < 0) {
        hanging.add(res);
        return;
      }
      setTimeout(() => {
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            id: randomUUID(),
            userId: randomUUID(),
            accountId: '1',
            asset: 'USD',
            amount: '10',
            captured: '0',
            released: '0',
            status: 'active',
          }),
        );
      }, delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const res of hanging) res.destroy();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const request = (): HoldRequest => {
  const holdId = randomUUID();
  return { holdId, userId: randomUUID(), asset: 'USD', amount: '10', reason: 'order', refType: 'order', refId: holdId };
};

it('answers a hold that comes back within the deadline, however close to it', async () => {
  delayMs = 150;
  const client = createWalletClient({ baseUrl: url, internalToken: 't', timeoutMs: 400 });
  const result = await client.hold(request());
  expect(result.outcome).toBe('held');
});

it('gives up after the deadline with WalletUnavailableError', async () => {
  delayMs = -1;
  const client = createWalletClient({ baseUrl: url, internalToken: 't', timeoutMs: 200 });
  const started = performance.now();
  const err = await client.hold(request()).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(WalletUnavailableError);
  expect((err as Error).message).toMatch(/no answer within 200 ms/);
  expect(performance.now() - started).toBeGreaterThanOrEqual(190);
});

it('leaves no deadline armed once the answer came', async () => {
  delayMs = 0;
  const client = createWalletClient({ baseUrl: url, internalToken: 't', timeoutMs: 60_000 });
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  await client.hold(request()); // warm: the agent's socket
  const before = timers();
  for (let i = 0; i < 3; i++) expect((await client.hold(request())).outcome).toBe('held');
  expect(timers()).toBe(before);
});
