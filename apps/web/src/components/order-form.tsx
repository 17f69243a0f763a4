/**
 * The order form: knows the market's tick, lot, quantity limits, minimum notional and price band, refuses what the
 * order service would refuse before sending (same rule in the message), and previews the hold and the fee.
 */
import { useState, type FormEvent } from 'react';
import type { Market, Order, OrderType, PlaceOrderRequest, Side, TimeInForce } from '@exchange/sdk';
import { checkOrder, type OrderDraft } from '../lib/order-rules.ts';
import { ErrorBox } from './ui.tsx';

export interface OrderFormProps {
  market: Market;
  /** Sends the order (the page passes the SDK's placeOrder). */
  place: (req: PlaceOrderRequest) => Promise<Order>;
  onPlaced?: (order: Order) => void;
  /** Price to start with (a click on a book level). */
  initialPrice?: string;
}

export function OrderForm({ market, place, onPlaced, initialPrice }: OrderFormProps) {
  const [draft, setDraft] = useState<OrderDraft>({
    side: 'buy',
    type: 'limit',
    price: initialPrice ?? '',
    quantity: '',
    timeInForce: 'GTC',
    postOnly: false,
    displayQuantity: '',
  });
  const [touched, setTouched] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [placed, setPlaced] = useState<Order | null>(null);
  const [busy, setBusy] = useState(false);
  const check = checkOrder(market, draft);
  const invalid = Object.keys(check.errors).length > 0;
  const set = (patch: Partial<OrderDraft>) => {
    setPlaced(null);
    setDraft((d) => ({ ...d, ...patch }));
  };
  const show = (f: keyof typeof check.errors) => (touched ? check.errors[f] : undefined);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setTouched(true);
    setError(null);
    if (invalid) return;
    setBusy(true);
    try {
      const order = await place({
        market: market.symbol,
        side: draft.side,
        type: draft.type,
        quantity: draft.quantity,
        ...(draft.type === 'limit' ? { price: draft.price } : {}),
        timeInForce: draft.timeInForce,
        ...(draft.postOnly ? { postOnly: true } : {}),
        ...(draft.type === 'limit' && draft.displayQuantity ? { displayQuantity: draft.displayQuantity } : {}),
      });
      setPlaced(order);
      setTouched(false);
      setDraft((d) => ({ ...d, quantity: '' }));
      onPlaced?.(order);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const describedBy = (f: string) => (show(f as keyof typeof check.errors) ? `${f}-err` : undefined);

  return (
    <form
      className="order-form"
      onSubmit={submit}
      noValidate
      aria-label={`Order ${market.symbol}`}
      data-testid="order-form"
    >
      {check.errors.market ? (
        <div className="error" role="alert" data-testid="market-halted">
          {check.errors.market}
        </div>
      ) : null}
      <fieldset className="segmented">
        <legend className="sr-only">Side</legend>
        {(['buy', 'sell'] as Side[]).map((s) => (
          <label key={s} className={`seg ${s} ${draft.side === s ? 'active' : ''}`}>
            <input type="radio" name="side" value={s} checked={draft.side === s} onChange={() => set({ side: s })} />
            {s === 'buy' ? 'Buy' : 'Sell'}
          </label>
        ))}
      </fieldset>
      <div className="grid2">
        <label>
          Type
          <select
            name="type"
            value={draft.type}
            onChange={(e) => {
              const type = e.target.value as OrderType;
              set({ type, timeInForce: type === 'market' ? 'IOC' : 'GTC', postOnly: false });
            }}
          >
            <option value="limit">Limit</option>
            <option value="market">Market</option>
          </select>
        </label>
        <label>
          Time in force
          <select
            name="timeInForce"
            value={draft.timeInForce}
            onChange={(e) => set({ timeInForce: e.target.value as TimeInForce })}
            aria-describedby={describedBy('timeInForce')}
          >
            {draft.type === 'limit' ? <option value="GTC">GTC</option> : null}
            <option value="IOC">IOC</option>
            <option value="FOK">FOK</option>
          </select>
        </label>
      </div>
      {draft.type === 'limit' ? (
        <label>
          Price ({market.quote})
          <input
            name="price"
            inputMode="decimal"
            autoComplete="off"
            placeholder={`tick ${market.tickSize}`}
            value={draft.price}
            onChange={(e) => set({ price: e.target.value.trim() })}
            aria-invalid={Boolean(show('price'))}
            aria-describedby={describedBy('price')}
          />
        </label>
      ) : null}
      {show('price') ? (
        <p className="field-error" id="price-err" data-testid="price-error">
          {show('price')}
        </p>
      ) : null}
      <label>
        Quantity ({market.base})
        <input
          name="quantity"
          inputMode="decimal"
          autoComplete="off"
          placeholder={`lot ${market.lotSize}`}
          value={draft.quantity}
          onChange={(e) => set({ quantity: e.target.value.trim() })}
          aria-invalid={Boolean(show('quantity'))}
          aria-describedby={describedBy('quantity')}
        />
      </label>
      {show('quantity') ? (
        <p className="field-error" id="quantity-err" data-testid="quantity-error">
          {show('quantity')}
        </p>
      ) : null}
      {show('timeInForce') ? (
        <p className="field-error" id="timeInForce-err">
          {show('timeInForce')}
        </p>
      ) : null}
      {draft.type === 'limit' ? (
        <label className="check">
          <input
            type="checkbox"
            name="postOnly"
            checked={draft.postOnly}
            onChange={(e) => set({ postOnly: e.target.checked, ...(e.target.checked ? { timeInForce: 'GTC' } : {}) })}
          />
          Post-only (maker only)
        </label>
      ) : null}
      {show('postOnly') ? <p className="field-error">{show('postOnly')}</p> : null}
      {draft.type === 'limit' ? (
        <label>
          Iceberg: show at a time ({market.base}, optional)
          <input
            name="displayQuantity"
            inputMode="decimal"
            autoComplete="off"
            placeholder="whole quantity"
            value={draft.displayQuantity ?? ''}
            onChange={(e) => set({ displayQuantity: e.target.value.trim() })}
            aria-invalid={Boolean(show('displayQuantity'))}
            aria-describedby={describedBy('displayQuantity')}
          />
        </label>
      ) : null}
      {show('displayQuantity') ? (
        <p className="field-error" id="displayQuantity-err" data-testid="display-error">
          {show('displayQuantity')}
        </p>
      ) : null}
      <dl className="preview" aria-live="polite">
        <dt>Hold</dt>
        <dd data-testid="hold">
          {check.hold
            ? `${check.hold.amount} ${check.hold.asset}`
            : draft.type === 'market' && draft.side === 'buy'
              ? 'set by the price band'
              : '—'}
        </dd>
        <dt>Fee (up to)</dt>
        <dd data-testid="fee">{check.fee ? `${check.fee.amount} ${check.fee.asset} (${check.fee.bps} bps)` : '—'}</dd>
        <dt>Rules</dt>
        <dd className="small muted">
          tick {market.tickSize} · lot {market.lotSize} · min {market.minNotional} {market.quote}
          {market.priceBand ? ` · band ${market.priceBand.low}–${market.priceBand.high}` : ''}
        </dd>
      </dl>
      <ErrorBox error={error} />
      {placed ? (
        // order ids are UUIDv7: their first digits are the time, the same for every order of the same minute
        <p className="ok-msg" role="status">
          Order {placed.id.slice(-8)} {placed.status}
        </p>
      ) : null}
      <button type="submit" className={`primary ${draft.side}`} disabled={busy || Boolean(check.errors.market)}>
        {draft.side === 'buy' ? 'Buy' : 'Sell'} {market.base}
      </button>
    </form>
  );
}
