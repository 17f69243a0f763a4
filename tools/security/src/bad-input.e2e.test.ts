/**
 * Bad input gets a 4xx with a stable code, never a 500. Every operation of the public API (docs/openapi.yaml, checked
 * against the services by `pnpm openapi --check`) is sent through the gateway with malformed path values, query
 * values and bodies: wrong types, out-of-range and overflowing numbers, NUL and emoji, very long text, broken JSON,
 * other media types. A trader sends them to every route, and the admin (2FA enrolled) to the staff routes, so each
 * request gets past authentication to validation and the handler. Every answer must be below 500 and, when refused,
 * carry a code: `{ error: { code } }` from a service, Kong's `{ message }` for what the gateway refuses by itself.
 *
 * Found by this suite when it was written: NUL in a string reached PostgreSQL (`invalid byte sequence`, a 500) on 9
 * staff routes (halts, kill switches, audit and user search, dead letters), and a 19-digit id or cursor overflowed
 * `bigint` on 11 routes (dead letters, the audit trail, a trader's fills).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ADMIN, staffAccessToken, startTestStack, type TestStack } from '@exchange/e2e';
import { ROOT } from '@exchange/stack';

let t: TestStack;
beforeAll(async () => {
  // One user sends thousands of requests here: its per-user limit (20/s, its own tests in local-gateway) would refuse
  // most of them before they reach validation. The per-IP limits stay, and each request comes from an address of its
  // own.
  t = await startTestStack({ env: { PER_USER_LIMIT_SECOND: '0', PER_USER_LIMIT_MINUTE: '0' } });
}, 300_000);
afterAll(async () => t?.close(), 60_000);

type Schema = Record<string, any>;
interface Operation {
  method: string;
  path: string;
  query: string[];
  body?: Schema;
}

const doc = parse(readFileSync(join(ROOT, 'docs/openapi.yaml'), 'utf8')) as Schema;
const resolve = (s: Schema | undefined): Schema =>
  s?.$ref
    ? resolve(
        s.$ref
          .split('/')
          .slice(1)
          .reduce((o: Schema, k: string) => o[k], doc),
      )
    : (s ?? {});

const operations: Operation[] = Object.entries<Schema>(doc.paths).flatMap(([path, item]) =>
  Object.entries<Schema>(item)
    .filter(([m]) => ['get', 'post', 'put', 'patch', 'delete'].includes(m))
    .map(([m, op]) => ({
      method: m.toUpperCase(),
      path,
      query: (op.parameters ?? [])
        .map(resolve)
        .filter((p: Schema) => p.in === 'query')
        .map((p: Schema) => p.name),
      body: op.requestBody?.content?.['application/json']?.schema,
    })),
);

/** A value the schema accepts (or close to it): the base that one field at a time is broken from. */
function sample(s: Schema | undefined): unknown {
  s = resolve(s);
  if (s.const !== undefined) return s.const;
  if (s.enum) return s.enum[0];
  if (s.anyOf || s.oneOf) return sample((s.anyOf ?? s.oneOf)[0]);
  switch (s.type) {
    case 'object':
      return Object.fromEntries(Object.entries<Schema>(s.properties ?? {}).map(([k, v]) => [k, sample(v)]));
    case 'array':
      return [sample(s.items)];
    case 'integer':
    case 'number':
      return s.minimum ?? 1;
    case 'boolean':
      return true;
    default:
      if (s.format === 'uuid') return randomUUID();
      if (s.format === 'email') return `fuzz-${randomUUID().slice(0, 8)}@e2e.test`;
      return s.pattern ? 'BTC-USD' : 'a'.repeat(Math.max(1, s.minLength ?? 1));
  }
}

const NUL = 'x\u0000y';
/** Values a field must refuse or handle: types, overflow, precision, encodings, length. */
const BAD_VALUES: unknown[] = [
  null,
  true,
  -1,
  1e308,
  '1e400',
  'NaN',
  '',
  'x'.repeat(5000),
  NUL,
  '\u{1F4A5}',
  [],
  {},
  { a: { b: { c: [1] } } },
  `0.${'1'.repeat(60)}`,
  '9999999999999999999',
  '99999999999999999999999999999999',
  '-9223372036854775809',
  '1.5',
  ' 1 ',
  '2026-13-45T99:00:00Z',
  "'; select 1; --",
];
const PATH_VALUES = ['x', '0', '-1', '1.5', '9999999999999999999', '%00', '%F0%9F%92%A5', 'a'.repeat(300)];
const GOOD_UUID = '00000000-0000-7000-8000-000000000000';

const queryText = (v: unknown) => encodeURIComponent(typeof v === 'string' ? v : JSON.stringify(v));
const withParams = (path: string, value: (name: string) => string) =>
  path.replace(/\{([^}]+)\}/g, (_, name: string) => value(name));
/** A path value the gateway routes (its routes name the markets and the kill switches) and the schema accepts. */
const plausible = (name: string) =>
  /market/i.test(name) ? 'BTC-USD' : /asset/i.test(name) ? 'USD' : name === 'flag' ? 'deposits' : GOOD_UUID;

interface Answer {
  op: string;
  request: string;
  status: number;
  code?: string;
  /** Kong's own refusals (its plugins, an unknown path) carry `{ message }` only. */
  gatewayMessage?: string;
}

let ipSeq = 1;
/** A public client address, new each time (the per-IP limits stay on). */
const publicIp = () => `203.0.${Math.floor(ipSeq / 250) % 250}.${(ipSeq++ % 250) + 1}`;
/** An address inside the private ranges the staff routes are open to (kong.yml's `ip-restriction`). */
const privateIp = () => `10.1.${Math.floor(ipSeq / 250) % 250}.${(ipSeq++ % 250) + 1}`;

/** Send every malformed request of `op` with `token`, one after another. */
async function fuzz(op: Operation, token: string, ip: () => string): Promise<Answer[]> {
  const answers: Answer[] = [];
  const send = async (path: string, body?: string, contentType = 'application/json') => {
    const res = await fetch(`${t.url('gateway')}${path}`, {
      method: op.method,
      headers: {
        authorization: `Bearer ${token}`,
        'x-forwarded-for': ip(),
        ...(body !== undefined ? { 'content-type': contentType } : {}),
      },
      ...(body !== undefined ? { body } : {}),
    });
    const text = await res.text();
    let json: { error?: { code?: string }; message?: string } = {};
    try {
      json = JSON.parse(text) as typeof json;
    } catch {
      // not JSON: no code, which `defects` reports
    }
    answers.push({
      op: `${op.method} ${op.path}`,
      request: `${op.method} ${path}${body === undefined ? '' : ` ${body.slice(0, 120)}`}`,
      status: res.status,
      ...(json.error?.code ? { code: json.error.code } : {}),
      ...(typeof json.message === 'string' ? { gatewayMessage: json.message } : {}),
    });
  };
  const good = withParams(op.path, plausible);
  if (op.path.includes('{')) {
    for (const v of PATH_VALUES) await send(withParams(op.path, () => v));
  }
  for (const name of op.query) for (const v of BAD_VALUES) await send(`${good}?${name}=${queryText(v)}`);
  if (op.body) {
    const base = sample(op.body) as Record<string, unknown>;
    await send(good, '{"a":');
    await send(good, 'not json', 'text/plain');
    await send(good, '[]');
    await send(good, 'null');
    await send(good, '{}');
    await send(good, JSON.stringify({ ...base, extra: NUL }));
    for (const k of Object.keys(base)) {
      for (const v of BAD_VALUES) await send(good, JSON.stringify({ ...base, [k]: v }));
    }
  }
  return answers;
}

/**
 * The statuses Kong answers by itself, in its `{ message }` shape (the SDK maps them to codes): its plugins' refusals,
 * and 404 for a path no route matches.
 */
const GATEWAY_REFUSALS = new Set([401, 403, 404, 413, 414, 429]);

/** What the suite finds wrong in `answers`: any 5xx, and any refusal without an error code. */
function defects(answers: Answer[]): string[] {
  const coded = (a: Answer) =>
    /^[A-Z][A-Z0-9_]+$/.test(a.code ?? '') || (GATEWAY_REFUSALS.has(a.status) && a.gatewayMessage !== undefined);
  return answers
    .filter((a) => a.status >= 500 || (a.status >= 400 && !coded(a)))
    .map((a) => `${a.status} ${a.code ?? '(no code)'} ${a.request}`);
}

/** Operations whose input the fuzz exercises (path params, query or body); the rest take nothing to break. */
const withInput = (op: Operation) => op.path.includes('{') || op.query.length > 0 || op.body !== undefined;
const isStaff = (op: Operation) => op.path.startsWith('/api/v1/admin/');

test('the public API: every route refuses malformed input with a 4xx and a code, never a 5xx', async () => {
  const client = t.client();
  const email = `fuzz-${randomUUID().slice(0, 8)}@e2e.test`;
  const password = `Pw-${randomUUID().slice(0, 12)}-x9`;
  await client.register({ email, password });
  await client.login({ email, password });
  await client.deposit({ asset: 'USD', amount: '1000.00' });
  // withdrawals check the body only for a verified email; no mail server runs here, so this stands in for the link
  await t.db.pool.query(`UPDATE auth.users SET email_verified_at = now() WHERE email = $1`, [email]);
  const ops = operations.filter((op) => !isStaff(op) && withInput(op));
  expect(ops.length).toBeGreaterThan(30);
  const answers: Answer[] = [];
  for (const op of ops) {
    // some routes end the session they are called with (logout): each op starts with a live one
    const me = await fetch(`${t.url('gateway')}/api/v1/auth/me`, {
      headers: { authorization: `Bearer ${client.getSession()!.accessToken}`, 'x-forwarded-for': publicIp() },
    });
    if (me.status === 401) await client.login({ email, password });
    answers.push(...(await fuzz(op, client.getSession()!.accessToken, publicIp)));
  }
  expect(defects(answers)).toEqual([]);
  // the requests reached validation: every route with input refused at least one of them as a 400
  const validated = new Set(answers.filter((a) => a.status === 400).map((a) => a.op));
  expect(ops.map((op) => `${op.method} ${op.path}`).filter((o) => !validated.has(o))).toEqual([]);
}, 600_000);

test('the staff routes, as the admin: the same, past the staff check', async () => {
  const token = await staffAccessToken(t.url('auth'), ADMIN);
  const ops = operations.filter((op) => isStaff(op) && withInput(op));
  expect(ops.length).toBeGreaterThan(15);
  const answers: Answer[] = [];
  for (const op of ops) answers.push(...(await fuzz(op, token, privateIp)));
  expect(defects(answers)).toEqual([]);
  // the admin's token (2FA fresh) opened every staff route
  expect(answers.filter((a) => a.status === 401).map((a) => a.request)).toEqual([]);
  const validated = new Set(answers.filter((a) => a.status === 400).map((a) => a.op));
  expect(ops.map((op) => `${op.method} ${op.path}`).filter((o) => !validated.has(o))).toEqual([]);
}, 600_000);
