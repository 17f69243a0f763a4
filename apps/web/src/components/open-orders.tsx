import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { client, isStaff, useAuth } from '../lib/api.tsx';
import { jaegerOrderUrl } from '../lib/config.ts';
import { Empty, ErrorBox, Head, Num, Time } from './ui.tsx';

/** Open orders (optionally of one market) with cancel and cancel-all. */
export function OpenOrders({ market }: { market?: string }) {
  const qc = useQueryClient();
  const { user } = useAuth();
  const staff = isStaff(user);
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
        <button type="button" disabled={rows.length === 0 || cancelAll.isPending} onClick={() => cancelAll.mutate()}>
          Cancel all
        </button>
      </div>
      <ErrorBox error={orders.error ?? error} />
      {rows.length === 0 ? (
        <Empty>No open orders.</Empty>
      ) : (
        <div className="table-wrap" tabIndex={0}>
          <table>
            <Head
              cols={[
                'Market',
                'Side',
                ['Price', 'r'],
                ['Quantity', 'r'],
                ['Filled', 'r'],
                'Status',
                ['Placed', 'hide-sm'],
                '',
              ]}
            />
            <tbody>
              {rows.map((o) => (
                <tr key={o.id} data-order-id={o.id}>
                  <td>{o.market}</td>
                  <td className={o.side === 'buy' ? 'up' : 'down'}>{o.side}</td>
                  <td className="r">
                    <Num value={o.price} />
                  </td>
                  <td className="r">
                    <Num value={o.quantity} />
                  </td>
                  <td className="r">
                    <Num value={o.filledQuantity} />
                  </td>
                  <td>{o.cancelRequested ? 'cancelling' : o.status}</td>
                  <td className="hide-sm">
                    <Time iso={o.createdAt} />
                  </td>
                  <td>
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
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
