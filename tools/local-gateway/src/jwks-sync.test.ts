// kong/jwks-sync.ts (the chart's sidecar next to Kong) against a stand-in JWKS endpoint and a stand-in Kong admin API:
// Kong gets the JWKS's keys as jwt credentials, nothing when nothing changed, the new set after a rotation, and
// keeps its keys when the JWKS is empty or unreachable. (No Kong here; what Kong does with POST /config is Kong's.)
import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { syncOnce } from '../../../kong/jwks-sync.ts';

const kongConfigPath = fileURLToPath(new URL('../../../kong/kong.yml', import.meta.url));
const servers: Server[] = [];
async function serve(handler: (body: string, url: string) => [number, string]): Promise<string> {
  const s = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const [status, out] = handler(body, req.url ?? '');
      // No keep-alive: a pooled socket that the server times out while a loaded machine stalls the test between two
      // passes reads as ECONNRESET on the next fetch (seen once in CI). The sidecar's passes are a poll interval apart.
      res.writeHead(status, { 'content-type': 'application/json', connection: 'close' }).end(out);
    });
  });
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  servers.push(s);
  return `http://127.0.0.1:${(s.address() as { port: number }).port}`;
}
afterAll(() => servers.forEach((s) => s.close()));

// Two RSA keys made once: generating one mid-test can take seconds on a loaded machine.
const publicJwks = [0, 1].map(
  () => generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' }) as object,
);
const jwk = (kid: string, n = 0) => ({
  ...publicJwks[n],
  kid,
  use: 'sig',
  alg: 'RS256',
});

test('loads the JWKS into Kong, skips unchanged, follows a rotation, never empties Kong', async () => {
  let keys: object[] = [jwk('key-1')];
  let jwksStatus = 200;
  const loads: any[] = [];
  const jwksUrl = `${await serve(() => [jwksStatus, JSON.stringify({ keys })])}/.well-known/jwks.json`;
  const kongAdminUrl = await serve((body, url) => {
    if (url === '/config') loads.push(JSON.parse(body));
    return [201, '{}'];
  });
  const opts = { jwksUrl, kongConfigPath, kongAdminUrl };
  const state: { last?: string } = {};
  const kids = (config: any) =>
    config.consumers.find((c: any) => c.username === 'exchange-auth').jwt_secrets.map((s: any) => s.key);

  expect(await syncOnce(opts, state)).toBe('loaded');
  expect(kids(loads[0])).toEqual(['key-1']);
  // the rest of kong.yml goes to Kong unchanged
  expect(loads[0].services.map((s: any) => s.name)).toContain('order-stream');
  expect(await syncOnce(opts, state)).toBe('unchanged');
  expect(loads).toHaveLength(1);

  // rotation: the new key is published before it signs anything; Kong learns it on the next pass
  keys = [...keys, jwk('key-2', 1)];
  expect(await syncOnce(opts, state)).toBe('loaded');
  expect(kids(loads[1]).sort()).toEqual(['key-1', 'key-2']);

  keys = [];
  await expect(syncOnce(opts, state)).rejects.toThrow(/no RSA signing key/);
  jwksStatus = 503;
  await expect(syncOnce(opts, state)).rejects.toThrow(/HTTP 503/);
  expect(loads).toHaveLength(2);
});

test('a configuration Kong refuses is an error, and is retried on the next pass', async () => {
  const jwksUrl = await serve(() => [200, JSON.stringify({ keys: [jwk('k')] })]);
  let kongStatus = 400;
  const kongAdminUrl = await serve(() => [kongStatus, '{"message":"declarative config is invalid"}']);
  const state: { last?: string } = {};
  await expect(syncOnce({ jwksUrl, kongConfigPath, kongAdminUrl }, state)).rejects.toThrow(/HTTP 400/);
  kongStatus = 201;
  expect(await syncOnce({ jwksUrl, kongConfigPath, kongAdminUrl }, state)).toBe('loaded');
});
