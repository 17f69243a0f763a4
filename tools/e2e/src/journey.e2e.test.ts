/**
 * Issue 8: a full user journey with the SDK through the local gateway (the same kong/kong.yml Kong runs): register,
 * login, deposit, trade, cancel, withdraw; 401 on missing and forged tokens; 429 when a limit is exceeded; the request
 * id propagated to the services' logs.
 */
import { randomUUID } from 'node:crypto';
import { ExchangeApiError } from '@exchange/sdk';
import { balance, eventually, latestOutboxPayload, newTrader, orderReaches, trader, useTestStack } from './index.ts';

// debug: per-request log lines (which carry the request id checked below) are at debug level.
const t = useTestStack({ env: { WITHDRAWAL_DISPATCH_DELAY_MS: '200', LOG_LEVEL: 'debug' } });

const gw = () => t.url('gateway');

it('register, login, deposit, trade, cancel and withdraw through the gateway', async () => {
  const maker = await trader(t, { BTC: '1.00000000' });
  const taker = t.client();
  const { email: takerEmail } = await newTrader(taker, { USD: '50000.00' });

  const requestId = `journey-${randomUUID()}`;
  const ask = await maker.placeOrder(
    { market: 'BTC-USD', side: 'sell', type: 'limit', price: '40000', quantity: '0.5', timeInForce: 'GTC' },
    { headers: { 'x-request-id': requestId } },
  );
  await eventually(async () => (await taker.book('BTC-USD')).asks.length === 1, 20_000, 'ask on the book');
  const bid = await taker.placeOrder({
    market: 'BTC-USD',
    side: 'buy',
    type: 'limit',
    price: '40000',
    quantity: '0.2',
    timeInForce: 'IOC',
  });
  await orderReaches(taker, bid.id, 'filled', 'IOC filled', 20_000);
  await maker.cancelOrder(ask.id);
  await orderReaches(maker, ask.id, 'cancelled', 'cancelled', 20_000);

  // Taker: 0.2 BTC less 20 bps; paid 8000.00 USD.
  await eventually(async () => (await balance(taker, 'BTC')).total === '0.19960000', 20_000, 'taker settled');
  // Maker: 8000 USD less 10 bps = 7992.00; 0.8 BTC left, nothing held after the cancel.
  await eventually(
    async () => {
      const b = await maker.balances();
      return (
        b.find((x) => x.asset === 'USD')?.total === '7992.00' && b.find((x) => x.asset === 'BTC')?.held === '0.00000000'
      );
    },
    20_000,
    'maker settled and released',
  );

  // Withdrawals need a verified email: the link's token, as the notification service would mail it (no SMTP here),
  // comes from the registration event in auth's outbox; the link itself goes through the gateway.
  const registered = await latestOutboxPayload(t.db, {
    schema: 'auth',
    type: 'user.registered',
    field: 'email',
    value: takerEmail,
  });
  const verifyToken = registered.verificationToken as string;
  expect(await taker.verifyEmail(verifyToken)).toEqual({ emailVerified: true });

  // Withdraw 0.1 BTC (fee 0.0001) to a valid address: above the email-confirmation threshold (0.02 BTC), it waits
  // for the emailed link, then the payout rail completes it.
  const requested = await taker.withdraw({
    asset: 'BTC',
    amount: '0.1',
    address: 'bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq',
  });
  expect(requested.status).toBe('awaiting_confirmation');
  const confirmation = await latestOutboxPayload(t.db, {
    schema: 'wallet',
    type: 'withdrawal.confirmation_requested',
    field: 'withdrawalId',
    value: requested.id,
  });
  const confirmToken = confirmation.confirmationToken as string;
  const w = await taker.confirmWithdrawal(confirmToken);
  expect(w.id).toBe(requested.id);
  const done = await eventually(
    async () => {
      const x = await taker.getWithdrawal(w.id);
      return x.status === 'completed' ? x : undefined;
    },
    30_000,
    'withdrawal completed',
  );
  expect(done.amount).toBe('0.10000000');
  await eventually(async () => (await balance(taker, 'BTC')).total === '0.09950000', 20_000, 'withdrawal debited');

  // A bad withdrawal address is a 400 with a code, not a 500.
  await expect(taker.withdraw({ asset: 'BTC', amount: '0.01', address: 'not-an-address' })).rejects.toMatchObject({
    status: 400,
  });

  // The request id travelled from the client through the gateway into the order service's logs.
  expect(t.logs.some((l) => l.startsWith('[order]') && l.includes(requestId))).toBe(true);
  expect(t.logs.some((l) => l.startsWith('[gateway]') && l.includes(requestId))).toBe(true);
}, 180_000);

it('401 on a missing, forged or alg-none token, at the gateway', async () => {
  const missing = await fetch(`${gw()}/api/v1/wallet/balances`);
  expect(missing.status).toBe(401);
  const c = await trader(t, {});
  const token = c.getSession()!.accessToken;
  const [h, p] = token.split('.');
  const forgedPayload = Buffer.from(
    JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), roles: ['admin'] }),
  ).toString('base64url');
  const forged = await fetch(`${gw()}/api/v1/wallet/balances`, {
    headers: { authorization: `Bearer ${h}.${forgedPayload}.${token.split('.')[2]}` },
  });
  expect(forged.status).toBe(401);
  const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
  const algNone = await fetch(`${gw()}/api/v1/wallet/balances`, { headers: { authorization: `Bearer ${none}.${p}.` } });
  expect(algNone.status).toBe(401);
  const ok = await fetch(`${gw()}/api/v1/wallet/balances`, { headers: { authorization: `Bearer ${token}` } });
  expect(ok.status).toBe(200);
  // The SDK surfaces the same as a typed error.
  const anonymous = t.client();
  await expect(anonymous.balances()).rejects.toBeInstanceOf(ExchangeApiError);
}, 60_000);

it('429 with Retry-After and RateLimit headers when the login limit is exceeded', async () => {
  const ip = '203.0.113.77';
  let limited: Response | undefined;
  for (let i = 0; i < 30 && !limited; i++) {
    const r = await fetch(`${gw()}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': ip },
      body: JSON.stringify({ email: `nobody${i}@e2e.test`, password: 'wrong-password-123' }),
    });
    if (r.status === 429) limited = r;
    else expect(r.status).toBe(401);
  }
  expect(limited).toBeDefined();
  expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThan(0);
  expect(limited!.headers.get('ratelimit-limit')).toBeTruthy();
  expect(limited!.headers.get('ratelimit-remaining')).toBe('0');
}, 60_000);
