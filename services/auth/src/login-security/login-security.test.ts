import { solveChallenge } from 'altcha-lib';
import { deriveKey } from 'altcha-lib/algorithms/sha';
import { PASSWORD, register, startAuth, type Harness } from '../testing/index.ts';

// Backoff starts when an attempt is counted (before its argon2 check), so it must outlast one check on a busy box.
const BASE_MS = 1000;
let h: Harness;
beforeAll(async () => {
  h = await startAuth({
    LOGIN_ACCOUNT_SOFT_LIMIT: '3',
    LOGIN_ACCOUNT_LOCK_LIMIT: '5',
    LOGIN_IP_SOFT_LIMIT: '5',
    LOGIN_IP_LOCK_LIMIT: '8',
    LOGIN_BACKOFF_BASE_MS: String(BASE_MS),
    LOGIN_LOCK_SECONDS: '60',
    LOGIN_ACCOUNT_POW_LIMIT: '5',
    LOGIN_POW_HEX_ZEROS: '3',
    TRUST_PROXY: 'true',
  });
});
afterAll(async () => {
  await h.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const attempt = (email: string, password: string, ip: string) =>
  h.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password }, remoteAddress: ip });

/** Drive `email` from `ip` into lockout, honouring each Retry-After-free backoff; returns each step's status/code. */
async function bruteForce(email: string, ip: string) {
  const seen: Array<[number, string]> = [];
  for (let i = 0; i < 5; i++) {
    const res = await attempt(email, 'wrong password guess', ip);
    seen.push([res.statusCode, res.json().error.code]);
    if (i >= 2) {
      // backoff is active now: an immediate retry (even with the right password) is refused without being counted
      const fast = await attempt(email, PASSWORD, ip);
      seen.push([fast.statusCode, fast.json().error.code]);
      await sleep(BASE_MS * 2 ** (i - 2) + 60);
    }
  }
  return seen;
}

describe('brute force', () => {
  test('per-(account, client) backoff, then lockout of that client; the right password does not get through', async () => {
    await register(h.app, 'victim@example.com');
    const seen = await bruteForce('victim@example.com', '10.1.0.1');
    expect(seen.slice(0, 3)).toEqual([
      [401, 'INVALID_CREDENTIALS'],
      [401, 'INVALID_CREDENTIALS'],
      [401, 'INVALID_CREDENTIALS'],
    ]);
    expect(seen[3]).toEqual([429, 'LOGIN_THROTTLED']);
    expect(seen[seen.length - 1]).toEqual([429, 'LOGIN_LOCKED']);
    const locked = await attempt('victim@example.com', PASSWORD, '10.1.0.1'); // the guessing client stays locked
    expect(locked.statusCode).toBe(429);
    expect(locked.json().error.code).toBe('LOGIN_LOCKED');
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(30);

    const m = await h.app.metrics.registry.getSingleMetricAsString('auth_login_failures_total');
    expect(m).toMatch(/reason="bad_password"\S* [1-9]/);
    expect(m).toMatch(/reason="throttled"\S* [1-9]/);
    expect(m).toMatch(/reason="locked"\S* [1-9]/);
    const { rows } = await h.db.pool.query(
      `SELECT action, details FROM auth.audit_log WHERE details->>'email' = 'victim@example.com' ORDER BY id`,
    );
    expect(rows.filter((r) => r.action === 'auth.login_failed')).toHaveLength(5);
    expect(rows.some((r) => r.action === 'auth.login_failed' && r.details.lockedOut === true)).toBe(true);
    expect(rows.some((r) => r.action === 'auth.login_blocked')).toBe(true);
  });

  test('the owner is never locked out by someone else: from another client, a proof of work opens the login', async () => {
    await register(h.app, 'owner@example.com');
    await bruteForce('owner@example.com', '10.2.0.1'); // the attacker's client is now locked for this account
    const asked = await attempt('owner@example.com', PASSWORD, '10.2.0.2');
    expect(asked.statusCode).toBe(429);
    expect(asked.json().error.code).toBe('PROOF_OF_WORK_REQUIRED');
    const challenge = asked.json().error.details.challenge;
    const solution = await solveChallenge({ challenge, deriveKey });
    const proofOfWork = Buffer.from(JSON.stringify({ challenge, solution })).toString('base64');
    const ok = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { email: 'owner@example.com', password: PASSWORD, proofOfWork },
      remoteAddress: '10.2.0.2',
    });
    expect(ok.statusCode).toBe(200);
    // a solution opens one attempt only; a challenge for another account is refused
    const again = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { email: 'owner@example.com', password: 'wrong wrong wrong', proofOfWork },
      remoteAddress: '10.2.0.3',
    });
    expect(again.statusCode).toBe(401); // the success reset the account: no proof needed now
    await bruteForce('owner@example.com', '10.2.0.4');
    const replayed = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { email: 'owner@example.com', password: PASSWORD, proofOfWork },
      remoteAddress: '10.2.0.5',
    });
    expect(replayed.json().error.code).toBe('PROOF_OF_WORK_REQUIRED');
  });

  test('50 parallel wrong passwords: only as many are checked as the backoff allows', async () => {
    // a backoff longer than the whole burst: any attempt past the soft limit would be a race the throttle lost
    const p = await startAuth({ LOGIN_ACCOUNT_SOFT_LIMIT: '3', LOGIN_BACKOFF_BASE_MS: '60000', TRUST_PROXY: 'true' });
    try {
      await register(p.app, 'parallel@example.com');
      const results = await Promise.all(
        Array.from({ length: 50 }, () =>
          p.app.inject({
            method: 'POST',
            url: '/api/v1/auth/login',
            payload: { email: 'parallel@example.com', password: 'wrong guess in parallel' },
            remoteAddress: '10.6.0.1',
          }),
        ),
      );
      const { rows } = await p.db.pool.query(
        `SELECT count(*)::int AS n FROM auth.audit_log WHERE action = 'auth.login_failed'`,
      );
      const checked = rows[0].n;
      expect(results.filter((r) => r.statusCode === 401)).toHaveLength(checked);
      expect(checked).toBe(3); // LOGIN_ACCOUNT_SOFT_LIMIT
      expect(results.filter((r) => r.statusCode === 429)).toHaveLength(47);
    } finally {
      await p.close();
    }
  });

  test('an unknown email goes through exactly the same sequence (no enumeration via lockout)', async () => {
    await register(h.app, 'victim3@example.com');
    const a = await bruteForce('victim3@example.com', '10.3.0.1');
    const b = await bruteForce('nobody-here@example.com', '10.4.0.1');
    expect(b).toEqual(a);
  });

  test('per-IP: many accounts from one IP get that IP throttled and locked, other IPs unaffected', async () => {
    await register(h.app, 'bystander@example.com');
    const ip = '10.9.9.9';
    const codes: string[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await attempt(`stuffing-${i}@example.com`, 'Password123!', ip);
      codes.push(res.json().error.code);
      if (i >= 4) await sleep(BASE_MS * 2 ** (i - 4) + 60);
    }
    expect(codes.every((c) => c === 'INVALID_CREDENTIALS')).toBe(true);
    const blocked = await attempt('bystander@example.com', PASSWORD, ip);
    expect(blocked.statusCode).toBe(429);
    expect(blocked.json().error.code).toBe('LOGIN_LOCKED');
    expect((await attempt('bystander@example.com', PASSWORD, '10.9.9.10')).statusCode).toBe(200);
  });

  test('a success resets the account counter', async () => {
    await register(h.app, 'forgetful@example.com');
    const ip = '10.5.0.1';
    await attempt('forgetful@example.com', 'nope nope nope', ip);
    await attempt('forgetful@example.com', 'nope nope nope', ip);
    const ok = await attempt('forgetful@example.com', PASSWORD, ip);
    expect(ok.statusCode).toBe(200);
    const { rowCount } = await h.db.pool.query(
      `SELECT 1 FROM auth.login_throttle WHERE key IN ('forgetful@example.com', 'forgetful@example.com|10.5.0.1')`,
    );
    expect(rowCount).toBe(0);
  });
});

describe('client IP behind the gateway', () => {
  test('TRUST_PROXY=true trusts one hop: a spoofed leftmost X-Forwarded-For entry is ignored', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { email: 'spoofer@example.com', password: 'whatever it is' },
      remoteAddress: '10.0.0.2', // the gateway
      headers: { 'x-forwarded-for': '6.6.6.6, 203.0.113.7' }, // client-supplied entry, then the gateway's
    });
    expect(res.statusCode).toBe(401);
    const { rows } = await h.db.pool.query(
      `SELECT key FROM auth.login_throttle WHERE kind = 'ip' AND key IN ('6.6.6.6', '203.0.113.7')`,
    );
    expect(rows.map((r) => r.key)).toEqual(['203.0.113.7']);
  });
});

describe('account enumeration', () => {
  test('unknown email and wrong password: same status, code, message; similar timing', async () => {
    const N = 12;
    for (let i = 0; i < N; i++) await register(h.app, `enum-${i}@example.com`);
    const known: number[] = [];
    const unknown: number[] = [];
    const bodies = new Set<string>();
    for (let i = 0; i < N; i++) {
      // interleave, each attempt from its own IP and account so no throttling kicks in
      for (const [email, out] of [
        [`enum-${i}@example.com`, known],
        [`ghost-${i}@example.com`, unknown],
      ] as const) {
        const t0 = performance.now();
        const res = await attempt(email, 'definitely not it', `10.7.${i}.${out === known ? 1 : 2}`);
        out.push(performance.now() - t0);
        expect(res.statusCode).toBe(401);
        const { code, message } = res.json().error;
        bodies.add(`${code}|${message}`);
      }
    }
    expect([...bodies]).toEqual(['INVALID_CREDENTIALS|email or password is wrong']);
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const ratio = median(known) / median(unknown);
    // both paths run one argon2id verification; allow generous noise on a shared 2-core box
    expect(ratio).toBeGreaterThan(0.5);
    expect(ratio).toBeLessThan(2);
  });
});
