import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import jwt from 'jsonwebtoken';
import { createTestDatabase, freePortBlock } from '@exchange/db/testing';
import { keyStoreFor } from './app.ts';
import { parseRecipients } from './backups/service.ts';
import { bearer, login, newAdmin, newUser, PASSWORD, startAuth, totpCode, type Harness } from './testing/index.ts';

const run = promisify(execFile);
let h: Harness;
const tokens: Record<'user' | 'support' | 'admin', string> = { user: '', support: '', admin: '' };
let victimId: string;

beforeAll(async () => {
  h = await startAuth();
  tokens.user = (await newUser(h.app, 'plain@example.com')).accessToken;
  tokens.support = (await newAdmin(h, 'support@example.com', ['support'])).accessToken;
  tokens.admin = (await newAdmin(h, 'admin@example.com', ['admin'])).accessToken;
  victimId = (await newUser(h.app, 'victim@example.com')).user.id;
});
afterAll(async () => {
  await h.close();
});

type Who = 'none' | 'user' | 'support' | 'admin';
const call = (who: Who, method: string, url: string, payload?: object) =>
  h.app.inject({
    method: method as 'GET',
    url,
    headers: who === 'none' ? {} : bearer(tokens[who]),
    ...(payload ? { payload } : {}),
  });

describe('authorization matrix: every admin route × every role', () => {
  const routes: Array<[string, string, () => object | undefined, Record<Who, number>]> = [
    [
      'GET',
      '/api/v1/admin/users?email=victim@example.com',
      () => undefined,
      { none: 401, user: 403, support: 200, admin: 200 },
    ],
    ['GET', '/api/v1/admin/audit?limit=5', () => undefined, { none: 401, user: 403, support: 200, admin: 200 }],
    [
      'POST',
      '/api/v1/admin/users/:id/lock',
      () => ({ reason: 'matrix' }),
      { none: 401, user: 403, support: 200, admin: 200 },
    ],
    ['POST', '/api/v1/admin/users/:id/unlock', () => undefined, { none: 401, user: 403, support: 403, admin: 200 }],
    [
      'PUT',
      '/api/v1/admin/users/:id/roles',
      () => ({ roles: ['user'] }),
      { none: 401, user: 403, support: 403, admin: 200 },
    ],
    ['GET', '/api/v1/admin/backups', () => undefined, { none: 401, user: 403, support: 403, admin: 200 }],
  ];
  const cases = routes.flatMap(([method, path, body, expected]) =>
    (['none', 'user', 'support', 'admin'] as const).map((who) => [method, path, who, expected[who], body] as const),
  );
  test.each(cases)('%s %s as %s → %i', async (method, path, who, status, body) => {
    const res = await call(who, method, path.replace(':id', victimId), body());
    expect(res.statusCode).toBe(status);
    if (status >= 400) expect(res.json().error.code).toBe(status === 401 ? 'UNAUTHENTICATED' : 'FORBIDDEN');
  });
  test('POST /api/v1/admin/backups: none 401, user 403, support 403 (admin: see backups test)', async () => {
    expect((await call('none', 'POST', '/api/v1/admin/backups')).statusCode).toBe(401);
    expect((await call('user', 'POST', '/api/v1/admin/backups')).statusCode).toBe(403);
    expect((await call('support', 'POST', '/api/v1/admin/backups')).statusCode).toBe(403);
  });
});

describe('admin actions', () => {
  test('lock revokes sessions and blocks login, refresh and API keys; unlock restores login', async () => {
    const s = await newUser(h.app, 'lockme@example.com');
    const lock = await call('admin', 'POST', `/api/v1/admin/users/${s.user.id}/lock`, { reason: 'fraud review' });
    expect(lock.statusCode).toBe(200);
    expect(lock.json().locked).toBe(true);
    expect(
      (await h.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: bearer(s.accessToken) })).json().error.code,
    ).toBe('SESSION_REVOKED');
    const relog = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { email: 'lockme@example.com', password: PASSWORD },
    });
    expect(relog.statusCode).toBe(403);
    expect(relog.json().error.code).toBe('ACCOUNT_LOCKED');
    // a wrong password on a locked account still says nothing more than INVALID_CREDENTIALS
    const wrong = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { email: 'lockme@example.com', password: 'nope nope nope' },
    });
    expect(wrong.json().error.code).toBe('INVALID_CREDENTIALS');
    expect((await call('admin', 'POST', `/api/v1/admin/users/${s.user.id}/unlock`)).json().locked).toBe(false);
    await login(h.app, 'lockme@example.com');
    const { rows } = await h.db.pool.query(
      `SELECT action, actor_id, details FROM auth.audit_log WHERE target_id = $1 AND action LIKE 'admin.%' ORDER BY id`,
      [s.user.id],
    );
    expect(rows.map((r) => r.action)).toEqual(['admin.user_locked', 'admin.user_unlocked']);
    expect(rows[0].details.reason).toBe('fraud review');
  });

  test('support cannot lock staff; nobody locks themselves; unknown user 404; bad id 400', async () => {
    const adminId = (jwt.decode(tokens.admin) as jwt.JwtPayload).sub!;
    expect((await call('support', 'POST', `/api/v1/admin/users/${adminId}/lock`)).statusCode).toBe(403);
    expect((await call('admin', 'POST', `/api/v1/admin/users/${adminId}/lock`)).json().error.code).toBe(
      'CANNOT_LOCK_SELF',
    );
    expect((await call('admin', 'POST', `/api/v1/admin/users/${randomUUID()}/lock`)).statusCode).toBe(404);
    expect((await call('admin', 'POST', '/api/v1/admin/users/nope/lock')).statusCode).toBe(400);
  });

  test('roles: promote to support; the user’s sessions are revoked so the new role applies at once', async () => {
    const s = await newUser(h.app, 'promote@example.com');
    const res = await call('admin', 'PUT', `/api/v1/admin/users/${s.user.id}/roles`, { roles: ['support'] });
    expect(res.statusCode).toBe(200);
    expect(res.json().roles).toEqual(['user', 'support']);
    expect(
      (await h.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: bearer(s.accessToken) })).statusCode,
    ).toBe(401);
    const again = await login(h.app, 'promote@example.com');
    expect((jwt.decode(again.accessToken) as jwt.JwtPayload).roles).toEqual(['user', 'support']);
    expect((await call('admin', 'PUT', `/api/v1/admin/users/${s.user.id}/roles`, { roles: ['root'] })).statusCode).toBe(
      400,
    );
  });

  test('admin writes need a fresh 2FA check; reads need 2FA enrolled', async () => {
    const a = await newAdmin(h, 'mfa-admin@example.com');
    const s = await login(h.app, 'mfa-admin@example.com', PASSWORD, { totpCode: await totpCode(a.totpSecret!, 1) });
    await h.db.pool.query(`UPDATE auth.sessions SET mfa_at = now() - interval '1 hour' WHERE id = $1`, [s.sessionId]);
    const stale = (
      await h.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken: s.refreshToken } })
    ).json();
    const res = await h.app.inject({
      method: 'POST',
      url: `/api/v1/admin/users/${victimId}/lock`,
      headers: bearer(stale.accessToken),
    });
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe('MFA_REQUIRED');
    // reads do not need a fresh check
    expect(
      (await h.app.inject({ method: 'GET', url: '/api/v1/admin/audit', headers: bearer(stale.accessToken) }))
        .statusCode,
    ).toBe(200);
  });

  test('staff without 2FA: every admin and support route refuses, reads included; login says to enrol', async () => {
    for (const role of ['admin', 'support'] as const) {
      const email = `no-mfa-${role}@example.com`;
      const a = await newAdmin(h, email, [role], { mfa: false });
      const first = await h.app.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        payload: { email, password: PASSWORD },
      });
      expect(first.json().mfaEnrolmentRequired).toBe(true);
      for (const [method, url] of [
        ['GET', '/api/v1/admin/audit'],
        ['GET', `/api/v1/admin/users?email=victim@example.com`],
        ['POST', `/api/v1/admin/users/${victimId}/lock`],
      ] as const) {
        const res = await h.app.inject({ method, url, headers: bearer(a.accessToken) });
        expect([method, url, res.statusCode, res.json().error.code]).toEqual([
          method,
          url,
          403,
          'MFA_ENROLMENT_REQUIRED',
        ]);
      }
    }
  });

  test('staff cannot turn 2FA off', async () => {
    const a = await newAdmin(h, 'keeps-mfa@example.com');
    const res = await h.app.inject({ method: 'POST', url: '/api/v1/auth/2fa/disable', headers: bearer(a.accessToken) });
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe('MFA_REQUIRED_FOR_ROLE');
  });

  test('admin writes honour Idempotency-Key (same key + body → replay; other body → 422)', async () => {
    const s = await newUser(h.app, 'idem@example.com');
    const lock = (reason: string) =>
      h.app.inject({
        method: 'POST',
        url: `/api/v1/admin/users/${s.user.id}/lock`,
        headers: { ...bearer(tokens.admin), 'idempotency-key': 'lock-idem-1' },
        payload: { reason },
      });
    const a = await lock('first');
    const b = await lock('first');
    expect(a.statusCode).toBe(200);
    expect(b.statusCode).toBe(200);
    expect(b.headers['idempotent-replayed']).toBe('true');
    expect(b.json()).toEqual(a.json());
    expect((await lock('other')).statusCode).toBe(422);
  });

  test('user search: exact and prefix', async () => {
    const exact = await call('support', 'GET', '/api/v1/admin/users?email=VICTIM@example.com');
    expect(exact.json().users.map((u: { email: string }) => u.email)).toEqual(['victim@example.com']);
    const prefix = await call('support', 'GET', '/api/v1/admin/users?email=pro*');
    expect(prefix.json().users.map((u: { email: string }) => u.email)).toEqual(['promote@example.com']);
    expect((await call('support', 'GET', '/api/v1/admin/users')).statusCode).toBe(400);
  });
});

describe('audit trail', () => {
  test('paginates newest first with nextBefore and filters', async () => {
    const seen: number[] = [];
    let before: number | null | undefined;
    for (let page = 0; page < 50; page++) {
      const res = await call('admin', 'GET', `/api/v1/admin/audit?limit=7${before ? `&before=${before}` : ''}`);
      expect(res.statusCode).toBe(200);
      const body = res.json();
      seen.push(...body.items.map((i: { id: number }) => i.id));
      before = body.nextBefore;
      if (!before) break;
    }
    expect(seen.length).toBeGreaterThan(10);
    expect([...seen].sort((a, b) => b - a)).toEqual(seen);
    expect(new Set(seen).size).toBe(seen.length);
    const logins = (await call('admin', 'GET', '/api/v1/admin/audit?action=auth.login&limit=200')).json().items;
    expect(logins.length).toBeGreaterThan(3);
    expect(logins[0]).toMatchObject({ action: 'auth.login', ip: '127.0.0.1', userAgent: 'lightMyRequest' });
  });

  test('the table is append-only for real: UPDATE, DELETE and TRUNCATE are rejected by the database', async () => {
    await expect(h.db.pool.query(`UPDATE auth.audit_log SET action = 'x'`)).rejects.toThrow(/append-only/);
    await expect(h.db.pool.query('DELETE FROM auth.audit_log')).rejects.toThrow(/append-only/);
    await expect(h.db.pool.query('TRUNCATE auth.audit_log')).rejects.toThrow(/append-only/);
  });
});

describe('backups', () => {
  test('admin creates an encrypted backup, lists it with size and sha256, and it decrypts and restores into a fresh database', async () => {
    const created = await call('admin', 'POST', '/api/v1/admin/backups');
    expect(created.statusCode).toBe(201);
    const b = created.json();
    expect(b.name).toMatch(/^exchange-\d{8}T\d{9}Z\.dump\.age$/);
    expect(b.encrypted).toBe(true);
    expect(b.sizeBytes).toBeGreaterThan(1000);
    const list = (await call('admin', 'GET', '/api/v1/admin/backups')).json().backups;
    expect(list[0]).toEqual(b);
    // the run is recorded: /metrics reports when the latest backup succeeded (BackupStale watches it)
    const metrics = (await h.app.inject({ url: '/metrics' })).body;
    const success = Number(/^backup_last_success_timestamp_seconds(?:{[^}]*})? (\S+)$/m.exec(metrics)?.[1]);
    expect(Math.abs(success - Date.now() / 1000)).toBeLessThan(120);
    expect(metrics).toMatch(/^backup_last_failure_timestamp_seconds(?:{[^}]*})? 0$/m);
    const { createHash } = await import('node:crypto');
    const file = join(h.config.BACKUP_DIR, b.name);
    expect(
      createHash('sha256')
        .update(await readFile(file))
        .digest('hex'),
    ).toBe(b.sha256);
    // what lies on the disk is age ciphertext, not a pg_dump archive (PGDMP) nor any of the data
    const stored = await readFile(file);
    expect(stored.subarray(0, 21).toString()).toBe('age-encryption.org/v1');
    expect(stored.includes('PGDMP')).toBe(false);
    expect(stored.includes('victim@example.com')).toBe(false);

    const target = await createTestDatabase('auth_restore');
    try {
      // the restore path: decrypt with the private key (the restore side's Secret), then pg_restore
      const plain = join(await mkdtemp(join(tmpdir(), 'auth-restore-')), 'dump');
      await run('age', ['-d', '-i', h.backupIdentityFile, '-o', plain, file]);
      await run('pg_restore', ['--no-owner', '--exit-on-error', '--dbname', target.url, plain]);
      const { rows } = await target.pool.query(
        `SELECT count(*)::int AS n FROM auth.users WHERE email = 'victim@example.com'`,
      );
      expect(rows[0].n).toBe(1);
      const audit = await target.pool.query('SELECT count(*)::int AS n FROM auth.audit_log');
      expect(audit.rows[0].n).toBeGreaterThan(0);
      // the restored audit table is still append-only
      await expect(target.pool.query('DELETE FROM auth.audit_log')).rejects.toThrow(/append-only/);
    } finally {
      await target.drop();
    }
  });

  test('without age recipients no backup is written: 503, recorded as failed (BackupFailed fires)', async () => {
    const bare = await startAuth({ BACKUP_AGE_RECIPIENTS: '' });
    try {
      const admin = await newAdmin(bare, 'bare-admin@example.com');
      const res = await bare.app.inject({
        method: 'POST',
        url: '/api/v1/admin/backups',
        headers: bearer(admin.accessToken),
      });
      expect(res.statusCode).toBe(503);
      expect(res.json().error.code).toBe('BACKUP_ENCRYPTION_NOT_CONFIGURED');
      expect(await readdir(bare.config.BACKUP_DIR)).toEqual([]);
      const metrics = (await bare.app.inject({ url: '/metrics' })).body;
      const failed = Number(/^backup_last_failure_timestamp_seconds(?:{[^}]*})? (\S+)$/m.exec(metrics)?.[1]);
      expect(Math.abs(failed - Date.now() / 1000)).toBeLessThan(120);
    } finally {
      await bare.close();
    }
    // a malformed key fails the start (adminRoutes parses them) instead of the first backup
    expect(() => parseRecipients('age1notakey')).toThrow(/not an age public key/);
    expect(parseRecipients(' age1zs3zydu5dcyxpnv80wm0wwfwfmemd93dphd9g0pxv75ghywk64pscvk36s,\n')).toHaveLength(1);
  });
});

describe('admin seeding', () => {
  const cli = fileURLToPath(new URL('./cli.ts', import.meta.url));
  const env = () => ({
    ...process.env,
    DATABASE_URL: h.db.url,
    SIGNING_KEY_ENCRYPTION_KEY: h.config.SIGNING_KEY_ENCRYPTION_KEY,
    LOG_LEVEL: 'silent',
  });
  const runCli = (args: string[], stdin = '') =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const p = spawn(process.execPath, [cli, ...args], { env: env() });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr.on('data', (d) => (stderr += d));
      p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
      p.stdin.end(stdin);
    });

  test('create-admin --password-stdin creates an admin, idempotently', async () => {
    const first = await runCli(
      ['create-admin', '--email', 'ops@example.com', '--password-stdin'],
      'a long operator passphrase\n',
    );
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ created: true });
    const second = await runCli(
      ['create-admin', '--email', 'ops@example.com', '--password-stdin'],
      'a different passphrase!!\n',
    );
    expect(JSON.parse(second.stdout)).toMatchObject({ created: false, userId: JSON.parse(first.stdout).userId });
    const s = await login(h.app, 'ops@example.com', 'a long operator passphrase');
    expect((jwt.decode(s.accessToken) as jwt.JwtPayload).roles).toEqual(['user', 'admin']);
    expect((await runCli(['create-admin', '--email', 'x@example.com'])).code).toBe(64);
    const weak = await runCli(['create-admin', '--email', 'weak@example.com', '--password-stdin'], 'short');
    expect(weak.code).toBe(1);
  }, 120_000);

  test('rotate-keys: a new kid becomes active, the old one stays published', async () => {
    const before = (await h.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json().keys.length;
    const r = await runCli(['rotate-keys']);
    expect(r.code).toBe(0);
    const { kid, activatesAt } = JSON.parse(r.stdout);
    expect(Date.parse(activatesAt)).toBeGreaterThan(Date.now() + 30_000); // published now, signs after the delay
    const { rows } = await h.db.pool.query('SELECT kid FROM auth.signing_keys WHERE retired_at IS NULL');
    expect(rows.map((x) => x.kid)).toEqual([kid]);
    // any replica (re)reading the table publishes it right away
    const fresh = keyStoreFor(h.db.pool, h.config);
    expect((await fresh.publicJwks()).keys.map((k) => k.kid)).toContain(kid);
    expect(await fresh.activeKid()).not.toBe(kid);
    const now = await runCli(['rotate-keys', '--now']);
    expect(Date.parse(JSON.parse(now.stdout).activatesAt)).toBeLessThanOrEqual(Date.now());
    const { rows: all } = await h.db.pool.query('SELECT count(*)::int AS n FROM auth.signing_keys');
    expect(all[0].n).toBe(before + 2);
  }, 120_000);

  test('ADMIN_EMAIL/ADMIN_PASSWORD at start (main.ts) seeds the admin', async () => {
    const db = await createTestDatabase('auth_main');
    const port = await freePortBlock(1);
    const child = spawn(process.execPath, [fileURLToPath(new URL('./main.ts', import.meta.url))], {
      env: {
        ...process.env,
        DATABASE_URL: db.url,
        PORT: String(port),
        HOST: '127.0.0.1',
        INTERNAL_API_TOKEN: 'x'.repeat(20),
        SIGNING_KEY_ENCRYPTION_KEY: h.config.SIGNING_KEY_ENCRYPTION_KEY,
        API_KEY_ENCRYPTION_KEY: h.config.API_KEY_ENCRYPTION_KEY,
        ADMIN_EMAIL: 'Boss@Example.com',
        ADMIN_PASSWORD: 'chief operator passphrase',
        LOG_LEVEL: 'warn',
      },
      stdio: 'ignore',
    });
    try {
      let ok = false;
      let exited = false;
      child.once('exit', () => (exited = true));
      for (let i = 0; i < 300 && !ok && !exited; i++) {
        await new Promise((r) => setTimeout(r, 200));
        ok = await fetch(`http://127.0.0.1:${port}/ready`).then(
          (r) => r.ok,
          () => false,
        );
      }
      expect(ok).toBe(true);
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'boss@example.com', password: 'chief operator passphrase' }),
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { user: { roles: string[] } };
      expect(body.user.roles).toContain('admin');
      const jwks = (await (await fetch(`http://127.0.0.1:${port}/.well-known/jwks.json`)).json()) as {
        keys: unknown[];
      };
      expect(jwks.keys).toHaveLength(1);
    } finally {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      await db.drop();
    }
  }, 120_000);
});
