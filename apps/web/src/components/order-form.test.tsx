/**
 * @jest-environment jsdom
 */
// The order form against a market's published rules: every refusal names the rule, nothing invalid is sent,
// and the hold/fee previews are exact decimal strings.
import { act, cleanup, fireEvent, render, screen } from '@testing-library/react';
import type { Market, Order, PlaceOrderRequest } from '@exchange/sdk';
import { OrderForm } from './order-form.tsx';

const BTC_USD: Market = {
  symbol: 'BTC-USD',
  base: 'BTC',
  quote: 'USD',
  tickSize: '1',
  lotSize: '0.01',
  minQuantity: '0.01',
  maxQuantity: '100',
  minNotional: '10',
  makerFeeBps: 10,
  takerFeeBps: 20,
  priceBandBps: 1000,
  priceBand: { low: '27000', high: '33000' },
  lastPrice: '30000',
  halted: false,
  haltReason: null,
};

function setup(market: Market = BTC_USD) {
  const sent: PlaceOrderRequest[] = [];
  const place = async (req: PlaceOrderRequest) => {
    sent.push(req);
    return { id: '00000000-0000-4000-8000-000000000001', status: 'new' } as Order;
  };
  render(<OrderForm market={market} place={place} />);
  const input = (name: string) => document.querySelector(`[name="${name}"]`) as HTMLInputElement;
  const type = (name: string, value: string) => fireEvent.change(input(name), { target: { value } });
  const submit = async () => {
    await act(async () => {
      fireEvent.submit(screen.getByTestId('order-form'));
    });
  };
  return { sent, input, type, submit };
}

afterEach(cleanup);

test.each([
  ['30000.5', '0.01', 'price', 'price must be a multiple of the tick size 1'],
  ['1e4', '0.01', 'price', 'price must be a plain decimal such as 30000.5'],
  ['0', '0.01', 'price', 'price must be greater than zero'],
  ['26999', '0.01', 'price', 'price must be within 27000–33000 (10% of the last trade)'],
  ['33001', '0.01', 'price', 'price must be within 27000–33000 (10% of the last trade)'],
  ['30000', '0.015', 'quantity', 'quantity must be a multiple of the lot size 0.01'],
  ['30000', '100.01', 'quantity', 'quantity must be at most 100 BTC'],
  ['30000', '-1', 'quantity', 'quantity must be a plain decimal such as 0.01'],
  ['', '0.01', 'price', 'a limit order needs a price'],
])('price %s × quantity %s is refused before sending: %s', async (price, quantity, field, message) => {
  const f = setup();
  f.type('price', price);
  f.type('quantity', quantity);
  await f.submit();
  expect(screen.getByTestId(`${field}-error`).textContent).toBe(message);
  expect(f.input(field).getAttribute('aria-invalid')).toBe('true');
  expect(f.sent).toEqual([]);
});

test('minimum notional is checked on price × quantity, exactly', async () => {
  const f = setup({ ...BTC_USD, priceBand: null, lastPrice: null, tickSize: '0.01', minNotional: '10' });
  f.type('price', '999.99');
  f.type('quantity', '0.01'); // 9.9999 < 10
  await f.submit();
  expect(screen.getByTestId('price-error').textContent).toBe(
    'price × quantity must be at least 10 USD (minimum notional)',
  );
  f.type('price', '1000'); // exactly 10
  await f.submit();
  expect(f.sent).toHaveLength(1);
});

test('a valid limit buy shows its hold and fee and is sent as decimal strings', async () => {
  const f = setup();
  f.type('price', '30000');
  f.type('quantity', '0.07');
  expect(screen.getByTestId('hold').textContent).toBe('2100 USD');
  expect(screen.getByTestId('fee').textContent).toBe('0.00014 BTC (20 bps)');
  await f.submit();
  expect(f.sent).toEqual([
    { market: 'BTC-USD', side: 'buy', type: 'limit', quantity: '0.07', price: '30000', timeInForce: 'GTC' },
  ]);
});

test('a sell holds the base quantity; post-only pays the maker fee on the quote received', async () => {
  const f = setup();
  fireEvent.click(document.querySelector('input[name="side"][value="sell"]')!);
  f.type('price', '30001');
  f.type('quantity', '0.03');
  fireEvent.click(f.input('postOnly'));
  expect(screen.getByTestId('hold').textContent).toBe('0.03 BTC');
  // 30001 × 0.03 = 900.03; × 10 bps = 0.90003
  expect(screen.getByTestId('fee').textContent).toBe('0.90003 USD (10 bps)');
  await f.submit();
  expect(f.sent[0]).toMatchObject({
    side: 'sell',
    price: '30001',
    quantity: '0.03',
    postOnly: true,
    timeInForce: 'GTC',
  });
});

test('market orders are IOC/FOK without a price and need a last trade', async () => {
  const f = setup({ ...BTC_USD, lastPrice: null, priceBand: null });
  fireEvent.change(f.input('type'), { target: { value: 'market' } });
  expect(f.input('price')).toBeNull();
  expect(Array.from((f.input('timeInForce') as unknown as HTMLSelectElement).options).map((o) => o.value)).toEqual([
    'IOC',
    'FOK',
  ]);
  f.type('quantity', '0.01');
  await f.submit();
  expect(screen.getByTestId('quantity-error').textContent).toBe(
    'BTC-USD has no last trade yet; place a limit order instead',
  );
  expect(f.sent).toEqual([]);
});

test('a halted market says so and the form cannot be sent', async () => {
  const f = setup({ ...BTC_USD, halted: true, haltReason: 'incident 42' });
  expect(screen.getByTestId('market-halted').textContent).toBe('BTC-USD is halted: incident 42');
  f.type('price', '30000');
  f.type('quantity', '0.01');
  await f.submit();
  expect(f.sent).toEqual([]);
  expect((screen.getByRole('button', { name: /Buy BTC/ }) as HTMLButtonElement).disabled).toBe(true);
});

test.each([
  ['0.6', 'display quantity must not exceed the quantity'],
  ['0.015', 'display quantity must be a multiple of the lot size 0.01'],
  ['0.001', 'display quantity must be a multiple of the lot size 0.01'],
  ['1e-1', 'display quantity must be a plain decimal such as 0.01'],
])('iceberg display %s is refused before sending: %s', async (display, message) => {
  const f = setup();
  f.type('price', '30000');
  f.type('quantity', '0.5');
  f.type('displayQuantity', display);
  await f.submit();
  expect(f.sent).toEqual([]);
  expect(screen.getByTestId('display-error').textContent).toBe(message);
});

test('an iceberg is sent with its display quantity', async () => {
  const f = setup();
  f.type('price', '30000');
  f.type('quantity', '0.5');
  f.type('displayQuantity', '0.1');
  await f.submit();
  expect(f.sent).toEqual([
    {
      market: 'BTC-USD',
      side: 'buy',
      type: 'limit',
      quantity: '0.5',
      price: '30000',
      timeInForce: 'GTC',
      displayQuantity: '0.1',
    },
  ]);
});
