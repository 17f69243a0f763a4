/**
 * Any order by id (a ticket, a dead letter, a log line): the order as the order service has it, its owner, and a
 * link to its trace in Jaeger (base URL from /config.js). The link is offered for any well-formed id, also when the
 * order is not found here (e.g. it was rejected before it was stored), since the trace may still exist.
 */
import { useQuery } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { client } from '../lib/api.tsx';
import { ErrorBox, Loading, Num, Panel, Time } from '../components/ui.tsx';
import { jaegerOrderUrl } from '../lib/config.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function TraceSection() {
  const [input, setInput] = useState('');
  const [id, setId] = useState<string | null>(null);
  const [invalid, setInvalid] = useState(false);
  const order = useQuery({
    queryKey: ['admin-order', id],
    queryFn: () => client.admin.order(id!),
    enabled: Boolean(id),
    retry: false,
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const v = input.trim();
    setInvalid(!UUID.test(v));
    setId(UUID.test(v) ? v.toLowerCase() : null);
  };
  const o = order.data;
  return (
    <Panel title="Order traces" id="trace">
      <p>
        Every order is one trace from the gateway to settlement; the order service tags it with <code>order.id</code>.
        Look up any user’s order by its id (from a dead letter, the audit log or a user’s report) and open its trace in
        Jaeger.
      </p>
      <form className="row bottom" onSubmit={submit} aria-label="Look up an order">
        <label className="inline-label">
          Order id
          <input
            name="order-id"
            value={input}
            size={38}
            aria-invalid={invalid}
            aria-describedby={invalid ? 'order-id-error' : undefined}
            onChange={(e) => setInput(e.target.value)}
          />
        </label>{' '}
        <button type="submit">Look up</button>
      </form>
      {invalid ? (
        <p className="error" id="order-id-error" role="alert">
          An order id is a UUID (8-4-4-4-12 hexadecimal digits).
        </p>
      ) : null}
      {id ? (
        <>
          {order.isPending ? <Loading /> : null}
          <ErrorBox error={order.error} />
          {o ? (
            <dl className="facts" data-testid="admin-order">
              <dt>Order</dt>
              <dd className="mono">{o.id}</dd>
              <dt>Owner</dt>
              <dd className="mono" data-testid="order-owner">
                {o.userId}
              </dd>
              <dt>Market</dt>
              <dd>
                {o.market} · {o.side} · {o.type} {o.timeInForce}
                {o.postOnly ? ' · post-only' : ''}
              </dd>
              <dt>Price × quantity</dt>
              <dd>
                <Num value={o.price} /> × <Num value={o.quantity} /> (filled <Num value={o.filledQuantity} />)
              </dd>
              <dt>Status</dt>
              <dd data-testid="order-status">
                {o.status}
                {o.reason ? ` (${o.reason})` : ''}
              </dd>
              <dt>Placed</dt>
              <dd>
                <Time iso={o.createdAt} />
              </dd>
            </dl>
          ) : null}
          <p>
            <a href={jaegerOrderUrl(id)} target="_blank" rel="noreferrer" data-testid="jaeger-link">
              Open trace in Jaeger
            </a>
          </p>
        </>
      ) : null}
    </Panel>
  );
}
