/**
 * The remembered signatures of `CredentialStore`: RSA verification once per token and credential, while everything
 * else of Kong's jwt checks (expiry, the key's credential, the token's exact bytes) still holds on every request.
 */
import { generateKeyPairSync } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type { KongConfig } from './kong-config.ts';
import { CredentialStore, verifyKongJwt, type JwtPluginConfig } from './jwt.ts';

const KID = 'kid-1';
const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
const pem = (k: typeof keys) => k.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const kong = (publicKey: string): KongConfig =>
  ({
    consumers: [
      { username: 'exchange-auth', jwt_secrets: [{ key: KID, algorithm: 'RS256', rsa_public_key: publicKey }] },
    ],
  }) as KongConfig;
const conf: JwtPluginConfig = { key_claim_name: 'kid', claims_to_verify: ['exp'], header_names: ['authorization'] };
const now = Math.floor(Date.now() / 1000);
const sign = (payload: object, key = keys.privateKey) =>
  jwt.sign({ sub: 'u1', exp: now + 300, ...payload }, key, { algorithm: 'RS256', keyid: KID });
const request = (token: string) => ({ headers: { authorization: `Bearer ${token}` }, query: new URLSearchParams() });

test('a verified token is remembered for its credential; expiry is still checked on every request', async () => {
  const store = new CredentialStore({ kong: kong(pem(keys)) });
  const token = sign({});
  const first = await verifyKongJwt(conf, request(token), store, now);
  expect(first.ok).toBe(true);
  const credential = (first as Extract<typeof first, { ok: true }>).credential;
  expect(store.signatureVerified(token, credential)).toBe(true);

  expect(await verifyKongJwt(conf, request(token), store, now + 1)).toMatchObject({ ok: true });
  expect(await verifyKongJwt(conf, request(token), store, now + 300)).toEqual({
    ok: false,
    status: 401,
    body: { exp: 'token expired' },
  });
});

test('another payload under a remembered signature, or the same token under another key, is verified afresh', async () => {
  const store = new CredentialStore({ kong: kong(pem(keys)) });
  const token = sign({});
  expect((await verifyKongJwt(conf, request(token), store, now)).ok).toBe(true);

  // The remembered token's header and signature with a payload of the attacker's choosing.
  const [h, , s] = token.split('.');
  const forgedPayload = Buffer.from(JSON.stringify({ sub: 'admin', exp: now + 300, kid: KID })).toString('base64url');
  expect(await verifyKongJwt(conf, request(`${h}.${forgedPayload}.${s}`), store, now)).toEqual({
    ok: false,
    status: 401,
    body: { message: 'Invalid signature' },
  });

  // The kid now names another key: the token signed with the old one must not pass on the strength of the old check.
  const rotated = new CredentialStore({ kong: kong(pem(other)) });
  const credential = await rotated.get(KID);
  expect(store.signatureVerified(token, credential!)).toBe(false);
  expect(await verifyKongJwt(conf, request(token), rotated, now)).toMatchObject({ ok: false, status: 401 });
});

test('the remembered tokens are bounded (oldest out first)', async () => {
  const store = new CredentialStore({ kong: kong(pem(keys)) });
  const credential = (await store.get(KID))!;
  const max = CredentialStore.VERIFIED_MAX;
  for (let i = 0; i <= max; i++) store.rememberSignature(`t${i}`, credential);
  expect(store.signatureVerified('t0', credential)).toBe(false);
  expect(store.signatureVerified('t1', credential)).toBe(true);
  expect(store.signatureVerified(`t${max}`, credential)).toBe(true);
});
