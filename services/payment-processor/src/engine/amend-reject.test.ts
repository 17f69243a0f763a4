// An amend the engine core throws on (its content makes the book fail) is rejected as an engine outcome: the order
// stays exactly as it was, the amend is answered `ok: false` (reason invalid_command), and the extra reservation the
// order service made for it (the top-up hold) is released by exactly one wallet.adjust-hold, also after a reload.
import { OrderBook } from '@exchange/matching-engine';
import { AmendOrderV1, PlaceOrderV1, ROUTES } from '@exchange/contracts/trading';
import type { Runtime } from '../runtime.ts';
import { AT, orderId, userId } from '../testing/commands.ts';
import {
  Bus,
  type Env,
  journal,
  outboxMessages,
  startInProcess,
  stopInProcess,
  useEngineEnv,
  waitFor,
} from '../testing/harness.ts';
import type { JournalCommand, MarketCore } from './core.ts';
import { uuidv5 } from '../uuid.ts';

const QUEUE = ROUTES.ordersQueue('BTC-USD');
let env: Env;
let bus: Bus;
let rt: Runtime | undefined;
const originalAmend = OrderBook.prototype.amend;

useEngineEnv('pp_amendreject', {
  ready: (e, b) => {
    env = e;
    bus = b;
  },
  runtime: () => rt,
  beforeTeardown: () => {
    OrderBook.prototype.amend = originalAmend;
  },
});

const restingOrder = (r: Runtime, id: string) =>
  (r.engines.engines.get('BTC-USD') as unknown as { core: MarketCore }).core.orderBook.getOrder(id);

it('releases the top-up of an amend the engine throws on, once, and leaves the order unchanged', async () => {
  rt = await startInProcess(env);
  const user = userId(31, 0);
  const order = orderId(31, 0);
  const place = PlaceOrderV1.create(
    {
      orderId: order,
      userId: user,
      market: 'BTC-USD',
      side: 'buy',
      type: 'limit',
      priceTicks: '29000',
      quantityLots: '10',
      timeInForce: 'GTC',
      postOnly: false,
      holdAmount: String(29_000 * 10),
      acceptedAt: AT,
    },
    { producer: 'order', id: uuidv5('cmd:31:place') },
  );
  // doubles the quantity: the order service reserved the extra hold in a top-up hold named after the amend
  const amendId = uuidv5('amend:31:0');
  const amend = AmendOrderV1.create(
    {
      amendId,
      orderId: order,
      userId: user,
      market: 'BTC-USD',
      quantityLots: '20',
      topUpHoldId: amendId,
      topUpAmount: String(29_000 * 10),
      requestedAt: AT,
    },
    { producer: 'order', id: uuidv5('cmd:31:amend') },
  );
  // the book fails on this order's amend (as a book bug or an unforeseen input would)
  OrderBook.prototype.amend = function (this: OrderBook, cmd: Parameters<OrderBook['amend']>[0]) {
    if (cmd.id === order) throw new RangeError('injected: the book cannot apply this amend');
    return originalAmend.call(this, cmd);
  };
  await bus.publish(QUEUE, [place, amend]);
  await waitFor('amend answered', async () =>
    bus.events.find(
      (e) =>
        e.message.type === 'engine.order-amended' && (e.message.payload as { amendId: string }).amendId === amendId,
    ),
  );
  const answered = bus.events.find((e) => e.message.type === 'engine.order-amended')!;
  expect(answered.message.payload).toMatchObject({ amendId, orderId: order, ok: false, reason: 'invalid_command' });

  // journaled as a rejected amend naming its top-up; the order is untouched (10 lots at 29 000)
  const rejects = (await journal(env.db)).map((r) => r.command as JournalCommand).filter((c) => c.kind === 'reject');
  expect(rejects).toEqual([
    expect.objectContaining({ command: 'amend', amendId, orderId: order, userId: user, topUpHoldId: amendId }),
  ]);
  expect(restingOrder(rt, order)).toMatchObject({ price: 29_000, quantity: 10, remaining: 10 });

  // the top-up is ended by one adjust-hold of delta 0 (the order hold itself is unchanged)
  const adjusts = () =>
    bus.wallet.filter(
      (e) =>
        e.message.type === 'wallet.adjust-hold' &&
        (e.message.payload as { topUpHoldId?: string }).topUpHoldId === amendId,
    );
  await waitFor('top-up released', async () => adjusts().length > 0);
  expect(adjusts().map((e) => e.message.payload)).toEqual([
    {
      holdId: order,
      userId: user,
      asset: 'USD',
      delta: '0',
      topUpHoldId: amendId,
      reason: 'amend_rejected:invalid_command',
    },
  ]);

  // a reload (restart: snapshot + journal replay) answers nothing again
  await stopInProcess(rt);
  rt = undefined;
  OrderBook.prototype.amend = originalAmend;
  rt = await startInProcess(env);
  expect(restingOrder(rt, order)).toMatchObject({ quantity: 10, remaining: 10 });
  const inOutbox = (await outboxMessages(env.db)).filter((m) => m.message.type === 'wallet.adjust-hold');
  expect(inOutbox).toHaveLength(1);
  expect(adjusts()).toHaveLength(1);
  expect(Number((await env.db.pool.query('SELECT count(*) AS n FROM payment.dead_letters')).rows[0].n)).toBe(0);
}, 60_000);
