import { PlaceOrderV1, SettleTradeV1 } from './trading.ts';

const ids = { orderId: '0192f3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b', userId: '0192f3c4-5d6e-7f80-9a1b-2c3d4e5f6a7c' };

describe('trading contracts', () => {
  it('accepts a well-formed place-order and rejects money as a JSON number', () => {
    const msg = PlaceOrderV1.create(
      {
        ...ids,
        market: 'BTC-USD',
        side: 'buy',
        type: 'limit',
        priceTicks: '65000',
        quantityLots: '25',
        timeInForce: 'GTC',
        postOnly: false,
        holdAmount: '1625000',
        acceptedAt: new Date().toISOString(),
      },
      { producer: 'order' },
    );
    expect(PlaceOrderV1.is(msg)).toBe(true);
    const bad = { ...msg, payload: { ...msg.payload, holdAmount: 1625000 } };
    expect(PlaceOrderV1.errors(bad).map((i) => i.path)).toContain('/payload/holdAmount');
  });

  it('settle-trade requires integer minor units', () => {
    const errs = SettleTradeV1.errors({
      id: ids.orderId,
      type: 'wallet.settle-trade',
      version: 1,
      occurredAt: new Date().toISOString(),
      producer: 'payment-processor',
      payload: { tradeId: ids.orderId, baseAmount: '1.5' },
    });
    expect(errs.length).toBeGreaterThan(0);
  });
});
