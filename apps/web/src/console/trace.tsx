import { useState } from 'react';
import { Panel } from '../components/ui.tsx';
import { jaegerOrderUrl } from '../lib/config.ts';

export function TraceSection() {
  const [id, setId] = useState('');
  const valid = /^[0-9a-f-]{36}$/i.test(id);
  return (
    <Panel title="Order traces" id="trace">
      <p>
        Every order is one trace from the gateway to settlement; the order service tags it with <code>order.id</code>.
        Paste an order id (from a dead letter, the audit log or a user's report) to open its trace in Jaeger.
      </p>
      <label className="inline-label">
        Order id
        <input name="order-id" value={id} onChange={(e) => setId(e.target.value.trim())} />
      </label>{' '}
      {valid ? (
        <a href={jaegerOrderUrl(id)} target="_blank" rel="noreferrer" data-testid="jaeger-link">
          Open trace in Jaeger
        </a>
      ) : null}
    </Panel>
  );
}
