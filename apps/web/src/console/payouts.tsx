/**
 * Money on its way out: payouts by state (default pending: withdrawals not paid out yet, with exact per-asset totals),
 * the `withdrawals` kill switch, and withdrawal requests refused by policy. Admin and support.
 */
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import type { PayoutState } from '@exchange/sdk';
import { client, isAdmin, useAuth } from '../lib/api.tsx';
import { DataTable, Empty, ErrorBox, Loading, Num, Panel, Time } from '../components/ui.tsx';

const STATES: PayoutState[] = ['pending', 'completed', 'failed', 'cancelled'];

export function PayoutsSection() {
  const { user } = useAuth();
  const [state, setState] = useState<PayoutState>('pending');
  const payouts = useQuery({
    queryKey: ['payouts', state],
    queryFn: () => client.admin.payouts({ status: state, limit: 200 }),
    refetchInterval: 10_000,
  });
  const blocked = useQuery({
    queryKey: ['withdrawals-blocked'],
    queryFn: () => client.admin.blockedWithdrawals({ limit: 100 }),
    refetchInterval: 10_000,
  });
  // the kill switch state (the flag list is an admin route)
  const flags = useQuery({
    queryKey: ['feature-flags'],
    queryFn: () => client.admin.featureFlags(),
    enabled: isAdmin(user),
  });
  const withdrawalsFlag = flags.data?.find((f) => f.name === 'withdrawals');
  const p = payouts.data;
  return (
    <div className="stack">
      <Panel
        title="Payouts"
        id="payouts"
        actions={
          <label className="inline-label">
            State
            <select name="payout-state" value={state} onChange={(e) => setState(e.target.value as PayoutState)}>
              {STATES.map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
          </label>
        }
      >
        <p className="muted small">
          <strong>pending</strong>: withdrawals not paid out yet, oldest first: <code>pending</code> (in the
          cancellation window, sent at the due time) or <code>processing</code> (sent to the payment processor, no
          answer yet). A <code>processing</code> payout that stays is stuck: look at the payment processor’s dead
          letters.
        </p>
        {withdrawalsFlag && !withdrawalsFlag.enabled ? (
          <p className="error" role="status" data-testid="withdrawals-off">
            Withdrawals are disabled (kill switch){withdrawalsFlag.reason ? `: ${withdrawalsFlag.reason}` : ''}.
          </p>
        ) : null}
        <ErrorBox error={payouts.error} />
        {payouts.isPending ? <Loading /> : null}
        {p && p.totals.length ? (
          <ul className="totals" data-testid="payout-totals" aria-label={`Totals of ${p.status} payouts`}>
            {p.totals.map((t) => (
              <li key={t.asset} data-asset={t.asset}>
                <strong>{t.asset}</strong> <Num value={t.amount} /> <span className="muted">({t.count})</span>
              </li>
            ))}
          </ul>
        ) : null}
        {p && p.payouts.length === 0 ? <Empty>No {p.status} payouts.</Empty> : null}
        {p && p.payouts.length ? (
          <DataTable
            label={`${p.status} payouts`}
            rows={p.payouts}
            rowKey={(w) => w.withdrawalId}
            rowAttrs={(w) => ({ 'data-withdrawal': w.withdrawalId })}
            columns={[
              { head: 'Requested', cell: (w) => <Time iso={w.createdAt} /> },
              { head: 'Asset', cell: (w) => w.asset },
              { head: ['Amount', 'r'], cell: (w) => <Num value={w.amount} /> },
              { head: ['Fee', 'r hide-sm'], cell: (w) => <Num value={w.fee} /> },
              {
                head: 'Status',
                cell: (w) => (
                  <>
                    <span className={`badge ${w.status === 'failed' ? 'warn' : w.status === 'completed' ? 'ok' : ''}`}>
                      {w.status}
                    </span>
                    {w.failureReason ? <span className="small"> {w.failureReason}</span> : null}
                  </>
                ),
              },
              { head: ['Due', 'hide-sm'], cell: (w) => <Time iso={w.dueAt} /> },
              { head: ['User', 'hide-sm'], className: 'hide-sm mono small', cell: (w) => w.userId },
              {
                head: ['Address / rail', 'hide-sm'],
                className: 'hide-sm mono small',
                cell: (w) => w.railTxId ?? w.address,
              },
            ]}
          />
        ) : null}
      </Panel>

      <Panel title="Withdrawals blocked" id="withdrawals-blocked">
        <p className="muted small">
          Withdrawal requests refused by policy, newest first: kill switch, address, limits, daily velocity by KYC tier,
          funds, API-key scope, 2FA.
        </p>
        <ErrorBox error={blocked.error} />
        {blocked.isPending ? <Loading /> : null}
        {blocked.data && blocked.data.length === 0 ? <Empty>No blocked withdrawals.</Empty> : null}
        {blocked.data?.length ? (
          <DataTable
            label="Blocked withdrawals"
            rows={blocked.data}
            rowKey={(b, i) => `${b.at}-${i}`}
            rowAttrs={(b) => ({ 'data-reason': b.reason })}
            columns={[
              { head: 'When', cell: (b) => <Time iso={b.at} /> },
              {
                head: 'Reason',
                cell: (b) => (
                  <>
                    <span className="badge warn">{b.reason}</span> <span className="mono small">{b.code}</span>
                  </>
                ),
              },
              {
                head: 'Asked',
                cell: (b) => (
                  <>
                    {b.amount ?? '—'} {b.asset ?? ''}
                    {b.address ? <span className="hide-sm mono small"> → {b.address}</span> : null}
                  </>
                ),
              },
              { head: ['User', 'hide-sm'], className: 'hide-sm mono small', cell: (b) => b.userId ?? '—' },
              { head: ['Request', 'hide-sm'], className: 'hide-sm mono small', cell: (b) => b.requestId ?? '—' },
            ]}
          />
        ) : null}
      </Panel>
    </div>
  );
}
