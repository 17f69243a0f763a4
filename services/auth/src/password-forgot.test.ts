// POST /api/v1/auth/password/forgot is limited per client IP as well as per email: one client cannot walk a list of
// addresses (mail bombing, or probing which exist), while another client is not affected.
import { startAuth, type Harness } from './testing/index.ts';

let h: Harness;

beforeAll(async () => {
  h = await startAuth({ PASSWORD_FORGOT_IP_LIMIT: '3', PASSWORD_FORGOT_EMAIL_LIMIT: '5', PASSWORD_FORGOT_MIN_MS: '0' });
});

afterAll(async () => {
  await h?.close();
});

const forgot = (email: string, ip: string) =>
  h.app.inject({
    method: 'POST',
    url: '/api/v1/auth/password/forgot',
    payload: { email },
    remoteAddress: ip,
  });

test('the fourth address from one client IP gets 429 RATE_LIMITED; another client IP still gets through', async () => {
  for (let i = 0; i < 3; i++) {
    const r = await forgot(`walk-${i}@example.com`, '198.51.100.7');
    expect(r.statusCode).toBe(202);
    expect(r.json()).toEqual({ accepted: true });
  }
  const limited = await forgot('walk-3@example.com', '198.51.100.7');
  expect(limited.statusCode).toBe(429);
  expect(limited.json().error.code).toBe('RATE_LIMITED');
  expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);

  const other = await forgot('walk-3@example.com', '198.51.100.8');
  expect(other.statusCode).toBe(202);
});
