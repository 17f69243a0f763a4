/**
 * Issue 17 (session side), end to end through the gateway with the SDK:
 *  - a fee tier changes exactly at its threshold (30-day volume), the new rates apply to the next order, and a maker
 *    rebate settles exactly, the ledger balanced;
 *  - cancel-on-disconnect: a client process opens a COD session, places orders and is killed with SIGKILL; its
 *    orders get cancelled and their holds released;
 *  - the dead-man's switch fires and cancels the open orders.
 * The stack runs a catalog whose BTC-USD has a low, reachable tier: from 1000 USD of volume, maker -5 bps (rebate),
 * taker 10 bps.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { DEFAULT_ASSETS, DEFAULT_MARKETS } from '@exchange/contracts/markets';
import { assertLedgerInvariants } from '@exchange/wallet/testing';
import { balance, eventually, orderReaches, startTestStack, trader, type TestStack } from './index.ts';

const CATALOG = `/tmp/e2e-fee-tiers-${process.pid}.json`;
const CLIENT = fileURLToPath(new URL('./fixtures/cod-client.ts', import.meta.url));
let t: TestStack;
const children: ChildProcess[] = [];

beforeAll(async () => {
  const markets = DEFAULT_MARKETS.map((m) =>
    m.symbol === 'BTC-USD'
      ? { ...m, makerFeeBps: 10, takerFeeBps: 20, feeTiers: [{ minVolume: '1000', makerFeeBps: -5, takerFeeBps: 10 }] }
      : m,
  );
  writeFileSync(CATALOG, JSON.stringify({ assets: DEFAULT_ASSETS, markets }));
  t = await startTestStack({ env: { MARKETS_FILE: CATALOG, DEAD_MAN_POLL_MS: '200' } });
}, 180_000);
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await t?.close();
  rmSync(CATALOG, { force: true });
}, 60_000);

type Client = ReturnType<TestStack['client']>;
const sell = { market: 'BTC-USD', side: 'sell', type: 'limit', price: '50000', quantity: '0.01' } as const;
const buy = { ...sell, side: 'buy' } as const;
const btcFees = async (c: Client) => (await c.accountFees()).markets.find((m) => m.market === 'BTC-USD')!;

async function trade(maker: Client, taker: Client) {
  const m = await maker.placeOrder(sell);
  await eventually(async () => (await maker.book('BTC-USD')).asks.length > 0, 20_000, 'the ask on the book');
  const k = await taker.placeOrder(buy);
  await orderReaches(maker, m.id, 'filled', 'the maker filled');
  await orderReaches(taker, k.id, 'filled', 'the taker filled');
  return m;
}

it('the fee tier changes exactly at the threshold, and a maker rebate settles exactly', async () => {
  const alice = await trader(t, { BTC: '1.00000000' }); // the maker who climbs a tier
  const bob = await trader(t, { USD: '10000.00' });
  const carol = await trader(t, { USD: '10000.00' });

  expect(await btcFees(alice)).toMatchObject({
    volume30d: '0.00',
    tier: { tier: 0, makerFeeBps: 10, takerFeeBps: 20 },
    nextTier: { tier: 1, minVolume: '1000.00', makerFeeBps: -5, takerFeeBps: 10 },
    volumeToNextTier: '1000.00',
  });
  // 500.00 USD of volume: still the base tier for the next order
  const first = await trade(alice, bob);
  expect(first).toMatchObject({ makerFeeBps: 10, takerFeeBps: 20 });
  await eventually(async () => (await btcFees(alice)).volume30d === '500.00', 30_000, '500 of volume');
  expect(await btcFees(alice)).toMatchObject({ tier: { tier: 0 }, volumeToNextTier: '500.00' });
  const second = await trade(alice, bob);
  expect(second).toMatchObject({ makerFeeBps: 10, takerFeeBps: 20 });
  // exactly 1000.00: the rebate tier from the next order on
  await eventually(async () => (await btcFees(alice)).volume30d === '1000.00', 30_000, '1000 of volume');
  expect(await btcFees(alice)).toMatchObject({
    tier: { tier: 1, minVolume: '1000.00', makerFeeBps: -5, takerFeeBps: 10 },
    nextTier: null,
    volumeToNextTier: null,
  });
  // Carol has no volume: she takes at the base tier's 20 bps while Alice rests at -5 bps
  const third = await trade(alice, carol);
  expect(third).toMatchObject({ makerFeeBps: -5, takerFeeBps: 10 });

  const fills = (await alice.fills({ market: 'BTC-USD' })).items;
  expect(fills.map((f) => [f.orderId, f.liquidity, f.fee, f.feeAsset]).sort()).toEqual(
    [
      [first.id, 'maker', '0.50', 'USD'], // 10 bps of 500.00
      [second.id, 'maker', '0.50', 'USD'],
      [third.id, 'maker', '-0.25', 'USD'], // the 5 bps rebate of 500.00
    ].sort(),
  );
  const carolFill = (await carol.fills({ market: 'BTC-USD' })).items[0]!;
  expect(carolFill).toMatchObject({ liquidity: 'taker', fee: '0.00002000', feeAsset: 'BTC' }); // 20 bps of 0.01 BTC

  // 3 × 500.00 - 0.50 - 0.50 + 0.25
  await eventually(async () => (await balance(alice, 'USD')).total === '1499.25', 30_000, 'alice settled');
  expect(await balance(alice, 'BTC')).toMatchObject({ total: '0.97000000', held: '0.00000000' });
  await eventually(async () => (await balance(carol, 'BTC')).total === '0.00998000', 30_000, 'carol settled');
  expect(await balance(carol, 'USD')).toMatchObject({ total: '9500.00', held: '0.00' });
  await assertLedgerInvariants(t.db.pool);
}, 300_000);

it('cancel-on-disconnect: a client process killed with SIGKILL has its orders cancelled', async () => {
  const dave = await trader(t, { USD: '10000.00' });
  const child = spawn(process.execPath, [CLIENT], {
    env: {
      ...process.env,
      EXCHANGE_URL: t.url('gateway'),
      ACCESS_TOKEN: dave.getSession()!.accessToken,
      ORDERS: JSON.stringify([
        { market: 'BTC-USD', side: 'buy', type: 'limit', price: '48000', quantity: '0.01' },
        { market: 'BTC-USD', side: 'buy', type: 'limit', price: '48001', quantity: '0.02' },
      ]),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const ids = await new Promise<string[]>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      if (l.startsWith('ready ')) resolve(JSON.parse(l.slice(6)) as string[]);
    });
    child.once('exit', (code) => reject(new Error(`client exited early (${code})`)));
  });
  for (const id of ids) await orderReaches(dave, id, 'new', 'orders open');
  expect(await balance(dave, 'USD')).toMatchObject({ held: '1440.02' }); // 480.00 + 960.02

  child.kill('SIGKILL');
  for (const id of ids) {
    const o = await orderReaches(dave, id, 'cancelled', 'the order cancelled after the kill', 60_000);
    expect(o.reason).toBe('disconnect');
  }
  await eventually(async () => (await balance(dave, 'USD')).held === '0.00', 30_000, 'holds released');
  expect(await balance(dave, 'USD')).toMatchObject({ total: '10000.00' });
}, 180_000);

it("the dead-man's switch fires when it is not called again", async () => {
  const erin = await trader(t, { USD: '10000.00' });
  const o = await erin.placeOrder({ market: 'BTC-USD', side: 'buy', type: 'limit', price: '48000', quantity: '0.01' });
  await orderReaches(erin, o.id, 'new', 'order open');
  const armed = await erin.cancelAllAfter(2);
  expect(armed).toMatchObject({ armed: true, timeoutSeconds: 2, cancelledOnArm: 0 });
  expect(await erin.deadManSwitch()).toMatchObject({ armed: true, firesAt: armed.firesAt });
  const cancelled = await orderReaches(erin, o.id, 'cancelled', 'the switch to fire', 60_000);
  expect(cancelled.reason).toBe('dead_man_switch');
  expect(await erin.deadManSwitch()).toEqual({ armed: false, timeoutSeconds: 0, firesAt: null });
  await eventually(async () => (await balance(erin, 'USD')).held === '0.00', 30_000, 'hold released');
}, 120_000);
