// Emergency revocation of a signing key (docs/security.md, control 11e): a compromised kid stops being trusted by
// every verifier within the revocation poll, not when its tokens expire.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import jwt from 'jsonwebtoken';
import { registerAuth, requireAuth } from '@exchange/auth-client';
import { createApp, type App } from '@exchange/platform';
import { bearer, INTERNAL_TOKEN, login, newAdmin, newUser, startAuth, type Harness } from '../testing/index.ts';

const POLL_MS = 1000;
let h: Harness;
let authUrl: string;
let service: App;

beforeAll(async () => {
  h = await startAuth();
  authUrl = await h.app.listen({ host: '127.0.0.1', port: 0 });
  // another service: verifies with the JWKS over HTTP and polls the revocation list, as wallet and order do
  service = await createApp({ service: 'demo', fastify: { logger: false } });
  registerAuth(service, {
    jwksUrl: `${authUrl}/.well-known/jwks.json`,
    issuer: h.config.JWT_ISSUER,
    audience: h.config.JWT_AUDIENCE,
    internalToken: INTERNAL_TOKEN,
    revocation: { refreshMs: POLL_MS },
  });
  service.get('/me', { onRequest: requireAuth }, async (req) => ({ id: req.principal!.id }));
  await service.ready();
});
afterAll(async () => {
  await service?.close();
  await h?.close();
});

const kidOf = (token: string) => (jwt.decode(token, { complete: true })!.header.kid as string) ?? '';
const jwksKids = async () =>
  ((await (await fetch(`${authUrl}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> }).keys.map(
    (k) => k.kid,
  );
const serviceMe = (token: string) => service.inject({ method: 'GET', url: '/me', headers: bearer(token) });
const authMe = (token: string) => h.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: bearer(token) });

test('a revoked kid leaves the JWKS at once and its tokens are refused everywhere within the poll interval', async () => {
  const user = await newUser(h.app, 'holder@example.com');
  const admin = await newAdmin(h, 'keys-admin@example.com');
  const compromised = kidOf(user.accessToken);
  expect(kidOf(admin.accessToken)).toBe(compromised);
  // the service has verified (and cached) the token and the key before the revocation
  expect((await serviceMe(user.accessToken)).statusCode).toBe(200);
  expect(await jwksKids()).toContain(compromised);

  // support cannot, and a fresh 2FA check is needed (admin write)
  const listed = await h.app.inject({
    method: 'GET',
    url: '/api/v1/admin/signing-keys',
    headers: bearer(admin.accessToken),
  });
  expect(listed.statusCode).toBe(200);
  expect(listed.json().activeKid).toBe(compromised);

  const revoked = await h.app.inject({
    method: 'POST',
    url: `/api/v1/admin/signing-keys/${compromised}/revoke`,
    headers: bearer(admin.accessToken),
    payload: { reason: 'private key leaked' },
  });
  expect(revoked.statusCode).toBe(200);
  const r = revoked.json() as { kid: string; activeKid: string; replaced: boolean };
  expect(r).toMatchObject({ kid: compromised, replaced: true });
  expect(r.activeKid).not.toBe(compromised);
  const revokedAt = Date.now();

  // the JWKS drops it at once (the gateway's and Kong's next sync), the auth service refuses it at once
  expect(await jwksKids()).not.toContain(compromised);
  expect(await jwksKids()).toContain(r.activeKid);
  expect((await authMe(user.accessToken)).statusCode).toBe(401);

  // the other service, with the key and the token in its caches, refuses it within one poll
  let status = 200;
  let code: string | undefined;
  while (Date.now() - revokedAt < POLL_MS + 2000) {
    const res = await serviceMe(user.accessToken);
    status = res.statusCode;
    code = res.json().error?.code;
    if (status !== 200) break;
    await new Promise((done) => setTimeout(done, 100));
  }
  expect(status).toBe(401);
  expect(code).toBe('SIGNING_KEY_REVOKED');
  expect(Date.now() - revokedAt).toBeLessThan(POLL_MS + 2000);

  // a new login signs with the new key, which works everywhere
  const again = await login(h.app, 'holder@example.com');
  expect(kidOf(again.accessToken)).toBe(r.activeKid);
  expect((await serviceMe(again.accessToken)).statusCode).toBe(200);
  expect((await authMe(again.accessToken)).statusCode).toBe(200);

  // audited; revoking it twice is a 404
  const { rows } = await h.db.pool.query(
    `SELECT details FROM auth.audit_log WHERE action = 'admin.signing_key_revoked' AND actor_id = $1`,
    [admin.user.id],
  );
  expect(rows[0].details).toMatchObject({ kid: compromised, reason: 'private key leaked' });
  const admin2 = await newAdmin(h, 'keys-admin-2@example.com');
  const twice = await h.app.inject({
    method: 'POST',
    url: `/api/v1/admin/signing-keys/${compromised}/revoke`,
    headers: bearer(admin2.accessToken),
    payload: { reason: 'again' },
  });
  expect(twice.statusCode).toBe(404);
  expect(twice.json().error.code).toBe('SIGNING_KEY_NOT_FOUND');
}, 60_000);

test('the CLI revokes a kid too (a key that is not signing: nothing replaced)', async () => {
  const { kid: pending } = await h.keys.rotate(); // published, not yet signing
  expect(await jwksKids()).toContain(pending);
  const cli = fileURLToPath(new URL('../cli.ts', import.meta.url));
  const env = {
    ...process.env,
    DATABASE_URL: h.db.url,
    SIGNING_KEY_ENCRYPTION_KEY: h.config.SIGNING_KEY_ENCRYPTION_KEY,
    LOG_LEVEL: 'silent',
  };
  const { stdout } = await promisify(execFile)(process.execPath, [cli, 'revoke-key', '--kid', pending], { env });
  expect(JSON.parse(stdout)).toMatchObject({ kid: pending, replaced: false });
  // the running replica (another process's change) drops it at its next re-read, within 5 s
  const deadline = Date.now() + 6500;
  while ((await jwksKids()).includes(pending) && Date.now() < deadline) await new Promise((d) => setTimeout(d, 200));
  expect(await jwksKids()).not.toContain(pending);
  const usage = await promisify(execFile)(process.execPath, [cli, 'revoke-key'], { env }).catch((e: unknown) => e);
  expect((usage as { code: number }).code).toBe(64);
}, 60_000);
