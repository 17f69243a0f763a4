import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { client, isStaff, useAuth, useStream } from '../lib/api.tsx';
import { jaegerOrderUrl } from '../lib/config.ts';
import { DataTable, Empty, ErrorBox, Num, Time } from './ui.tsx';

/** Open orders (optionally of one market) with cancel and cancel-all. */
export function OpenOrders({ market }: { market?: string }) {
  const qc = useQueryClient();
  const { user } = useAuth();
  const staff = isStaff(user);
  const stream = useStream();
  const [error, setError] = useState<unknown>(null);
  const orders = useQuery({
    queryKey: ['orders', 'open', market ?? 'all'],
    queryFn: () => client.orders({ open: true, limit: 100, ...(market ? { market } : {}) }),
    refetchInterval: 10_000,
  });
  const refresh = () => {
    void qc.invalidateQueries({ queryKey: ['orders'] });
    void qc.invalidateQueries({ queryKey: ['balances'] });
  };
  const cancel = useMutation({
    mutationFn: (id: string) => client.cancelOrder(id),
    onSuccess: refresh,
    onError: setError,
  });
  const cancelAll = useMutation({
    mutationFn: () => client.cancelAllOrders(market ? { market } : {}),
    onSuccess: refresh,
    onError: setError,
  });
  const rows = orders.data?.items ?? [];
  return (
    <div data-testid="open-orders">
      <div className="row spread">
        <span className="muted small">{rows.length} open</span>
        {user ? (
          <label className="small" title="Your open orders are cancelled if this window closes or loses its connection">
            <input
              type="checkbox"
              data-testid="cancel-on-disconnect"
              data-armed={stream.cancelOnDisconnectArmed ? 'true' : 'false'}
              checked={stream.cancelOnDisconnect}
              onChange={(e) => stream.setCancelOnDisconnect(e.target.checked)}
            />{' '}
            Cancel my orders if this window disconnects
          </label>
        ) : null}
        <button type="button" disabled={rows.length === 0 || cancelAll.isPending} onClick={() => cancelAll.mutate()}>
          Cancel all
        </button>
      </div>
      <ErrorBox error={orders.error ?? error} />
      {rows.length === 0 ? (
        <Empty>No open orders.</Empty>
      ) : (
        <DataTable
          rows={rows}
          rowKey={(o) => o.id}
          rowAttrs={(o) => ({ 'data-order-id': o.id })}
          columns={[
            { head: 'Market', cell: (o) => o.market },
            { head: 'Side', className: (o) => (o.side === 'buy' ? 'up' : 'down'), cell: (o) => o.side },
            { head: ['Price', 'r'], cell: (o) => <Num value={o.price} /> },
            { head: ['Quantity', 'r'], cell: (o) => <Num value={o.quantity} /> },
            { head: ['Filled', 'r'], cell: (o) => <Num value={o.filledQuantity} /> },
            { head: 'Status', cell: (o) => (o.cancelRequested ? 'cancelling' : o.status) },
            { head: ['Placed', 'hide-sm'], cell: (o) => <Time iso={o.createdAt} /> },
            {
              head: '',
              cell: (o) => (
                <>
                  {staff ? (
                    <a href={jaegerOrderUrl(o.id)} target="_blank" rel="noreferrer" className="small">
                      Trace
                    </a>
                  ) : null}{' '}
                  <button
                    type="button"
                    disabled={o.cancelRequested}
                    onClick={() => cancel.mutate(o.id)}
                    aria-label={`Cancel order ${o.side} ${o.quantity} at ${o.price ?? 'market'}`}
                  >
                    Cancel
                  </button>
                </>
              ),
            },
          ]}
        />
      )}
    </div>
  );
}
