/**
 * Staff accounts work only with 2FA enrolled. Tests that act as the seeded admin go through the same first login a
 * human operator does: log in, enrol TOTP (password re-check, then a code), and from then on log in with a code.
 * The TOTP secret stays in this process; access tokens are reused while their 2FA check is fresh enough for admin
 * writes, and a new login waits for the next 30 s step when the last code's step was already used (a code is
 * accepted once).
 */
import { generate } from 'otplib';

interface Enrolled {
  secret: string;
  lastStep: number;
  token?: { value: string; at: number };
}

const enrolled = new Map<string, Enrolled>();
const TOKEN_REUSE_MS = 200_000; // below MFA_FRESH_SECONDS (300 s) with a margin

async function post(url: string, body: unknown, token?: string): Promise<{ status: number; json: any }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json().catch(() => ({})) };
}

/** A TOTP code for a step never used before by this helper (waits up to one step). */
async function freshCode(e: Enrolled): Promise<string> {
  let step = Math.floor(Date.now() / 30_000);
  if (step <= e.lastStep) {
    await new Promise((r) => setTimeout(r, (e.lastStep + 1) * 30_000 - Date.now() + 50));
    step = Math.floor(Date.now() / 30_000);
  }
  e.lastStep = step;
  return generate({ secret: e.secret, epoch: step * 30 });
}

/**
 * An access token of `creds` (a staff account) with a fresh 2FA check; enrols TOTP on the first call unless
 * `creds.totpSecret` says the account is enrolled already (e.g. a secret kept from an earlier run).
 */
export async function staffAccessToken(
  authUrl: string,
  creds: { email: string; password: string; totpSecret?: string },
): Promise<string> {
  const key = `${authUrl}|${creds.email}`;
  if (creds.totpSecret && !enrolled.has(key)) enrolled.set(key, { secret: creds.totpSecret, lastStep: 0 });
  const known = enrolled.get(key);
  const { totpSecret: _known, ...account } = creds;
  creds = account;
  if (known?.token && Date.now() - known.token.at < TOKEN_REUSE_MS) return known.token.value;
  if (known) {
    const login = await post(`${authUrl}/api/v1/auth/login`, { ...creds, totpCode: await freshCode(known) });
    if (login.status !== 200) throw new Error(`staff login: ${login.status} ${JSON.stringify(login.json)}`);
    known.token = { value: login.json.accessToken, at: Date.now() };
    return login.json.accessToken;
  }
  const login = await post(`${authUrl}/api/v1/auth/login`, creds);
  if (login.status !== 200) throw new Error(`staff login: ${login.status} ${JSON.stringify(login.json)}`);
  const setup = await post(`${authUrl}/api/v1/auth/2fa/setup`, { password: creds.password }, login.json.accessToken);
  if (setup.status !== 200) throw new Error(`2fa setup: ${setup.status} ${JSON.stringify(setup.json)}`);
  const e: Enrolled = { secret: setup.json.secret, lastStep: 0 };
  const verify = await post(
    `${authUrl}/api/v1/auth/2fa/verify`,
    { totpCode: await freshCode(e) },
    login.json.accessToken,
  );
  if (verify.status !== 200) throw new Error(`2fa verify: ${verify.status} ${JSON.stringify(verify.json)}`);
  e.token = { value: verify.json.accessToken, at: Date.now() };
  enrolled.set(key, e);
  return verify.json.accessToken;
}

/** A current TOTP code for an account this helper enrolled (for step-up calls). */
export async function staffTotpCode(authUrl: string, email: string): Promise<string> {
  const e = enrolled.get(`${authUrl}|${email}`);
  if (!e) throw new Error(`${email} was not enrolled by staffAccessToken`);
  return freshCode(e);
}

/**
 * Forget what this helper holds for an account (its TOTP secret and token): the next staffAccessToken enrols it
 * again. For a secret kept from an earlier run that the account no longer has (its database was recreated).
 */
export function forgetStaffEnrolment(authUrl: string, email: string): void {
  enrolled.delete(`${authUrl}|${email}`);
}

/** The TOTP secret this helper holds for an account (to keep it for a later run), if any. */
export function staffTotpSecret(authUrl: string, email: string): string | undefined {
  return enrolled.get(`${authUrl}|${email}`)?.secret;
}
