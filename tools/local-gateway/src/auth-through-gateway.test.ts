/**
 * The real auth service behind the local gateway, driven by the SDK: the gateway verifies the auth service's own
 * tokens (keys from its JWKS, as in host mode), rejects forged ones, and the correlation id reaches the service.
 */
import { generateKeyPairSync } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import jwt from 'jsonwebtoken';
import { ExchangeApiError, ExchangeClient } from '@exchange/sdk';
import { PASSWORD, startAuth, type Harness } from '@exchange/auth/testing';
import { createGateway } from './gateway.ts';

let auth: Harness;
let gateway: FastifyInstance;
let base: string;

beforeAll(async () => {
  auth = await startAuth({ ARGON2_MEMORY_KIB: '8192', ARGON2_TIME_COST: '1' });
  await auth.app.listen({ port: 0, host: '127.0.0.1' });
  const authUrl = `http://127.0.0.1:${(auth.app.server.address() as { port: number }).port}`;
  gateway = await createGateway({
    upstreams: { auth: authUrl },
    authJwksUrl: `${authUrl}/.well-known/jwks.json`,
    perUserLimits: false,
  });
  await gateway.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(gateway.server.address() as { port: number }).port}`;
}, 60_000);

afterAll(async () => {
  await gateway?.close();
  await auth?.close();
});

test('register, login, me, refresh and logout through the gateway with the SDK', async () => {
  const client = new ExchangeClient({ baseUrl: base });
  const email = `gw-${Date.now()}@example.com`;
  await client.register({ email, password: PASSWORD });
  const login = await client.login({ email, password: PASSWORD });
  const header = jwt.decode(login.accessToken, { complete: true })?.header;
  expect(header).toMatchObject({ alg: 'RS256', kid: expect.any(String) });
  expect((await client.me()).email).toBe(email);
  // A rejected access token is refreshed transparently.
  const session = client.getSession();
  if (!session) throw new Error('no session');
  await client.setSession({ ...session, accessToken: 'not-a-token' });
  expect((await client.me()).email).toBe(email);
  expect(client.getSession()?.refreshToken).not.toBe(login.refreshToken);
  await client.logout();
  expect(client.getSession()).toBeUndefined();
});

test('the gateway refuses missing and forged tokens before the service; the request id reaches the service', async () => {
  const anonymous = await fetch(`${base}/api/v1/auth/me`);
  expect(anonymous.status).toBe(401);
  expect(await anonymous.json()).toEqual({ message: 'Unauthorized' });

  const client = new ExchangeClient({ baseUrl: base });
  const email = `forge-${Date.now()}@example.com`;
  await client.register({ email, password: PASSWORD });
  const { accessToken } = await client.login({ email, password: PASSWORD });
  const decoded = jwt.decode(accessToken, { complete: true });
  if (!decoded || typeof decoded.payload === 'string') throw new Error('bad token');
  const attacker = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const forged = jwt.sign({ ...decoded.payload, roles: ['admin'] }, attacker.privateKey, {
    algorithm: 'RS256',
    keyid: decoded.header.kid as string,
  });
  const res = await fetch(`${base}/api/v1/auth/me`, { headers: { authorization: `Bearer ${forged}` } });
  expect(res.status).toBe(401);
  expect(await res.json()).toEqual({ message: 'Invalid signature' });

  // A service error carries the gateway's correlation id in its envelope.
  const err = (await client
    .login({ email, password: 'wrong password' }, { headers: { 'x-request-id': 'journey-req-1' } })
    .catch((e: unknown) => e)) as ExchangeApiError;
  expect(err).toBeInstanceOf(ExchangeApiError);
  expect({ status: err.status, code: err.code, requestId: err.requestId }).toEqual({
    status: 401,
    code: 'INVALID_CREDENTIALS',
    requestId: 'journey-req-1',
  });
});
