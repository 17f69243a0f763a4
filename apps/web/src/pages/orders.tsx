import { useQuery } from '@tanstack/react-query';
import { client } from '../lib/api.tsx';
import { OpenOrders } from '../components/open-orders.tsx';
import { FeeTiers } from '../components/fee-tiers.tsx';
import { DataTable, Empty, ErrorBox, Num, Panel, Time } from '../components/ui.tsx';

export function OrdersPage() {
  const fills = useQuery({ queryKey: ['fills'], queryFn: () => client.fills({ limit: 100 }), refetchInterval: 15_000 });
  const rows = fills.data?.items ?? [];
  const fees = useQuery({ queryKey: ['account-fees'], queryFn: () => client.accountFees(), refetchInterval: 60_000 });
  return (
    <div className="stack">
      <Panel title="Open orders" id="open-orders-panel">
        <OpenOrders />
      </Panel>
      <Panel title="Fees" id="fees">
        <ErrorBox error={fees.error} />
        {fees.data ? <FeeTiers fees={fees.data} /> : null}
      </Panel>
      <Panel title="Fills" id="fills">
        <ErrorBox error={fills.error} />
        {rows.length === 0 ? (
          <Empty>No fills yet.</Empty>
        ) : (
          <DataTable
            rows={rows}
            rowKey={(f) => f.id}
            rowAttrs={(f) => ({ 'data-fill-order': f.orderId })}
            columns={[
              { head: 'Market', cell: (f) => f.market },
              { head: 'Side', className: (f) => (f.side === 'buy' ? 'up' : 'down'), cell: (f) => f.side },
              { head: ['Price', 'r'], cell: (f) => <Num value={f.price} /> },
              { head: ['Quantity', 'r'], cell: (f) => <Num value={f.quantity} /> },
              { head: ['Total', 'r hide-sm'], cell: (f) => <Num value={f.quoteAmount} /> },
              {
                head: ['Fee', 'r'],
                cell: (f) => (
                  <>
                    <Num value={f.fee} /> <span className="muted">{f.feeAsset}</span>
                  </>
                ),
              },
              { head: ['Role', 'hide-sm'], cell: (f) => f.liquidity },
              { head: 'Time', cell: (f) => <Time iso={f.executedAt} /> },
            ]}
          />
        )}
      </Panel>
    </div>
  );
}
