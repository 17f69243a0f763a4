import { useQuery } from '@tanstack/react-query';
import { client } from '../lib/api.tsx';
import { OpenOrders } from '../components/open-orders.tsx';
import { Empty, ErrorBox, Head, Num, Panel, Time } from '../components/ui.tsx';

export function OrdersPage() {
  const fills = useQuery({ queryKey: ['fills'], queryFn: () => client.fills({ limit: 100 }), refetchInterval: 15_000 });
  const rows = fills.data?.items ?? [];
  return (
    <div className="stack">
      <Panel title="Open orders" id="open-orders-panel">
        <OpenOrders />
      </Panel>
      <Panel title="Fills" id="fills">
        <ErrorBox error={fills.error} />
        {rows.length === 0 ? (
          <Empty>No fills yet.</Empty>
        ) : (
          <div className="table-wrap" tabIndex={0}>
            <table>
              <Head
                cols={[
                  'Market',
                  'Side',
                  ['Price', 'r'],
                  ['Quantity', 'r'],
                  ['Total', 'r hide-sm'],
                  ['Fee', 'r'],
                  ['Role', 'hide-sm'],
                  'Time',
                ]}
              />
              <tbody>
                {rows.map((f) => (
                  <tr key={f.id} data-fill-order={f.orderId}>
                    <td>{f.market}</td>
                    <td className={f.side === 'buy' ? 'up' : 'down'}>{f.side}</td>
                    <td className="r">
                      <Num value={f.price} />
                    </td>
                    <td className="r">
                      <Num value={f.quantity} />
                    </td>
                    <td className="r hide-sm">
                      <Num value={f.quoteAmount} />
                    </td>
                    <td className="r">
                      <Num value={f.fee} /> <span className="muted">{f.feeAsset}</span>
                    </td>
                    <td className="hide-sm">{f.liquidity}</td>
                    <td>
                      <Time iso={f.executedAt} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Panel>
    </div>
  );
}
