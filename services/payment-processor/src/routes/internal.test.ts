// The rail's payout records for the wallet's reconciliation: only the caller `wallet` (its own credential in
// INTERNAL_CALLERS) reads them; pages by withdrawal id cover every record exactly once; a lookup returns the named
// records that exist.
import { randomUUID } from 'node:crypto';
import { createTestIssuer, type TestIssuer } from '@exchange/auth-client/testing';
import type { PayoutRef } from '@exchange/contracts/payouts';
import type { App } from '@exchange/platform';
import { buildApp } from '../app.ts';
import { authOptions, createRuntime, type Runtime } from '../runtime.ts';
import { createEnv, testConfig, type Env } from '../testing/harness.ts';

const WALLET_TOKEN = 'wallet-credential-0123456789';
const ORDER_TOKEN = 'order-credential-0123456789';
let env: Env;
let issuer: TestIssuer;
let rt: Runtime;
let app: App;

beforeAll(async () => {
  env = await createEnv('pp_internal');
  issuer = await createTestIssuer();
  const config = testConfig(env, { INTERNAL_CALLERS: `wallet:${WALLET_TOKEN},order:${ORDER_TOKEN}` });
  rt = createRuntime(config); // not started: the routes read the database only
  app = await buildApp({
    pool: rt.pool,
    messaging: rt.messaging,
    engines: rt.engines,
    auth: {
      ...issuer.authOptions(),
      internalToken: config.INTERNAL_API_TOKEN,
      internalCallers: authOptions(config).internalCallers!,
    },
    replicaId: 'test',
    logLevel: 'silent',
  });
});

afterAll(async () => {
  await app?.close();
  await rt?.pool.end();
  await issuer?.close();
  await env?.drop();
});

it('serves the payout records to the wallet only, page by page and by id', async () => {
  const ids = Array.from({ length: 5 }, () => randomUUID());
  for (const [i, id] of ids.entries()) {
    await env.db.pool.query(
      `INSERT INTO payment.payouts (withdrawal_id, user_id, asset, amount, address, status, rail_tx_id, failure_reason,
         request_message_id, requested_at, processed_at)
       VALUES ($1, $2, 'USD', $3, 'DE89370400440532013000', $4, $5, $6, $7, now(), now())`,
      [
        id,
        randomUUID(),
        String(1000 + i),
        i === 3 ? 'failed' : 'completed',
        i === 3 ? null : `sim_${i}`,
        i === 3 ? 'RAIL_REJECTED' : null,
        randomUUID(),
      ],
    );
  }
  const get = (url: string, token?: string) => app.inject({ url, headers: token ? { 'x-internal-token': token } : {} });

  expect((await get('/internal/payouts')).statusCode).toBe(401);
  expect((await get('/internal/payouts', 'not-a-caller-credential')).statusCode).toBe(401);
  expect((await get('/internal/payouts', ORDER_TOKEN)).json()).toMatchObject({
    error: { code: 'INTERNAL_CALLER_FORBIDDEN' },
  });

  const seen: PayoutRef[] = [];
  let after: string | null = null;
  let pages = 0;
  do {
    const res = await get(`/internal/payouts?limit=2${after ? `&after=${after}` : ''}`, WALLET_TOKEN);
    expect(res.statusCode).toBe(200);
    const page = res.json() as { payouts: PayoutRef[]; next: string | null };
    seen.push(...page.payouts);
    after = page.next;
    pages++;
  } while (after);
  expect(pages).toBe(3);
  expect(seen.map((p) => p.withdrawalId).sort()).toEqual([...ids].sort());
  expect(seen.find((p) => p.withdrawalId === ids[3])).toMatchObject({
    status: 'failed',
    railTxId: null,
    amount: '1003',
  });
  expect(seen.find((p) => p.withdrawalId === ids[0])).toMatchObject({
    status: 'completed',
    asset: 'USD',
    amount: '1000',
    railTxId: 'sim_0',
  });

  const lookup = await app.inject({
    method: 'POST',
    url: '/internal/payouts/lookup',
    headers: { 'x-internal-token': WALLET_TOKEN },
    payload: { ids: [ids[1], randomUUID()] },
  });
  expect(lookup.statusCode).toBe(200);
  expect((lookup.json() as { payouts: PayoutRef[] }).payouts.map((p) => p.withdrawalId)).toEqual([ids[1]]);
  const bad = await app.inject({
    method: 'POST',
    url: '/internal/payouts/lookup',
    headers: { 'x-internal-token': WALLET_TOKEN },
    payload: { ids: ['not-a-uuid'] },
  });
  expect(bad.statusCode).toBe(400);
});
