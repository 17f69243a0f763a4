// Shared set-up for this service's tests (not a test file itself): a fresh database per test file, migrated, a
// signing key, and the app built on it.
import { execFileSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from 'otplib';
import { loadConfig } from '@exchange/config';
import { createTestDatabase, type TestDatabase } from '@exchange/db/testing';
import type { App } from '@exchange/platform';
import { buildApp, keyStoreFor } from '../app.ts';
import { ConfigSchema, type Config } from '../config.ts';
import type { KeyStore } from '../signing-keys/service.ts';
import { runMigrations } from '../migrate.ts';
import { ensureAdmin } from '../seed.ts';

export const INTERNAL_TOKEN = 'internal-token-for-tests-0123456789';
export const PASSWORD = 'correct horse battery staple';

export interface Harness {
  db: TestDatabase;
  /** The age private key admin backups are encrypted to (a file; only the restore side holds it). */
  backupIdentityFile: string;
  app: App;
  config: Config;
  keys: KeyStore;
  close(): Promise<void>;
}

export async function startAuth(env: Record<string, string> = {}): Promise<Harness> {
  const db = await createTestDatabase('auth');
  await runMigrations(db.pool);
  const keyDir = await mkdtemp(join(tmpdir(), 'auth-age-'));
  const backupIdentityFile = join(keyDir, 'identity.txt');
  const identity = execFileSync('age-keygen', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  await writeFile(backupIdentityFile, identity, { mode: 0o600 });
  const recipient = /public key: (age1\S+)/.exec(identity)![1]!;
  const config = loadConfig('auth', ConfigSchema, {
    BACKUP_AGE_RECIPIENTS: recipient,
    DATABASE_URL: db.url,
    INTERNAL_API_TOKEN: INTERNAL_TOKEN,
    SIGNING_KEY_ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64'),
    API_KEY_ENCRYPTION_KEY: Buffer.alloc(32, 2).toString('base64'),
    LOG_LEVEL: 'silent',
    BACKUP_DIR: await mkdtemp(join(tmpdir(), 'auth-backups-')),
    ...env,
  });
  const keys = keyStoreFor(db.pool, config);
  await keys.ensureKey();
  const app = await buildApp({ pool: db.pool, config, keys, fastify: { logger: false } });
  await app.ready();
  return {
    db,
    backupIdentityFile,
    app,
    config,
    keys,
    async close() {
      await app.close();
      await db.drop();
    },
  };
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

export async function register(app: App, email: string, password = PASSWORD) {
  const res = await app.inject({ method: 'POST', url: '/api/v1/auth/register', payload: { email, password } });
  if (res.statusCode !== 202) throw new Error(`register ${res.statusCode} ${res.body}`);
}

export async function login(app: App, email: string, password = PASSWORD, extra: Record<string, string> = {}) {
  const res = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password, ...extra } });
  if (res.statusCode !== 200) throw new Error(`login ${res.statusCode} ${res.body}`);
  return res.json() as { accessToken: string; refreshToken: string; sessionId: string; user: { id: string } };
}

/** A registered account with its email verified (as if the link was followed), logged in. */
export async function newUser(app: App, email: string) {
  await register(app, email);
  await app.authContext.pool.query('UPDATE auth.users SET email_verified_at = now() WHERE email = $1', [
    email.trim().toLowerCase(),
  ]);
  return login(app, email);
}

/** A registered account that has not followed its verification link yet, logged in. */
export async function newUnverifiedUser(app: App, email: string) {
  await register(app, email);
  return login(app, email);
}

/** A TOTP code of `secret` for the 30 s step `offset` steps from now. */
export const totpCode = (secret: string, offset = 0) =>
  generate({ secret, epoch: Math.floor(Date.now() / 1000) + offset * 30 });

/** Enrol TOTP for a logged-in user; returns the secret, recovery codes and an access token with a fresh check. */
export async function enrolTotp(app: App, accessToken: string, password = PASSWORD) {
  const setup = await app.inject({
    method: 'POST',
    url: '/api/v1/auth/2fa/setup',
    headers: bearer(accessToken),
    payload: { password },
  });
  if (setup.statusCode !== 200) throw new Error(`2fa setup ${setup.statusCode} ${setup.body}`);
  const secret = (setup.json() as { secret: string }).secret;
  const verify = await app.inject({
    method: 'POST',
    url: '/api/v1/auth/2fa/verify',
    headers: bearer(accessToken),
    payload: { totpCode: await totpCode(secret) },
  });
  if (verify.statusCode !== 200) throw new Error(`2fa verify ${verify.statusCode} ${verify.body}`);
  const v = verify.json() as { accessToken: string; recoveryCodes: string[] };
  return { secret, accessToken: v.accessToken, recoveryCodes: v.recoveryCodes };
}

/**
 * A staff account with 2FA enrolled (staff routes refuse accounts without it); `accessToken` carries a fresh check.
 * `mfa: false` leaves 2FA off, for tests of exactly that refusal.
 */
export async function newAdmin(
  h: Harness,
  email: string,
  roles: Array<'admin' | 'support'> = ['admin'],
  opts: { mfa?: boolean } = {},
) {
  const { id } = await ensureAdmin(h.db.pool, h.app.authContext.passwords, email, PASSWORD, 'test');
  await h.db.pool.query('UPDATE auth.users SET roles = $2 WHERE id = $1', [id, ['user', ...roles]]);
  const session = await login(h.app, email);
  if (opts.mfa === false) return { ...session, totpSecret: undefined };
  const e = await enrolTotp(h.app, session.accessToken);
  return { ...session, accessToken: e.accessToken, totpSecret: e.secret };
}
