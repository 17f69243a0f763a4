import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { client } from '../lib/api.tsx';
import { isPlainDecimal } from '../lib/decimal.ts';
import { useStepUp } from '../components/step-up.tsx';
import { Empty, ErrorBox, Head, Num, Panel, Time } from '../components/ui.tsx';
import { errorOf } from '../lib/errors.ts';
import { ResendVerification } from './email.tsx';

const ASSETS = ['USD', 'BTC', 'ETH', 'USDT'];

/** Asset picker and amount input of the deposit and withdrawal forms. */
function AssetAmount(p: {
  name: string;
  assets: string[];
  asset: string;
  amount: string;
  invalid: boolean;
  onAsset: (v: string) => void;
  onAmount: (v: string) => void;
}) {
  return (
    <>
      <label>
        Asset
        <select name={`${p.name}-asset`} value={p.asset} onChange={(e) => p.onAsset(e.target.value)}>
          {p.assets.map((a) => (
            <option key={a}>{a}</option>
          ))}
        </select>
      </label>
      <label>
        Amount
        <input
          name={`${p.name}-amount`}
          inputMode="decimal"
          autoComplete="off"
          value={p.amount}
          onChange={(e) => p.onAmount(e.target.value.trim())}
          aria-invalid={p.invalid}
        />
      </label>
    </>
  );
}

export function WalletPage() {
  const qc = useQueryClient();
  const withStepUp = useStepUp();
  const balances = useQuery({ queryKey: ['balances'], queryFn: () => client.balances(), refetchInterval: 5_000 });
  const deposits = useQuery({
    queryKey: ['deposits'],
    queryFn: () => client.deposits({ limit: 20 }),
    refetchInterval: 3_000,
  });
  const withdrawals = useQuery({
    queryKey: ['withdrawals'],
    queryFn: () => client.withdrawals({ limit: 20 }),
    refetchInterval: 3_000,
  });
  const assets = [...new Set([...ASSETS, ...(balances.data ?? []).map((b) => b.asset)])];

  const [dAsset, setDAsset] = useState('USD');
  const [dAmount, setDAmount] = useState('');
  const [wAsset, setWAsset] = useState('USD');
  const [wAmount, setWAmount] = useState('');
  const [wAddress, setWAddress] = useState('');
  const refresh = () => {
    for (const k of ['balances', 'deposits', 'withdrawals']) void qc.invalidateQueries({ queryKey: [k] });
  };
  const deposit = useMutation({
    mutationFn: () => client.deposit({ asset: dAsset, amount: dAmount }),
    onSuccess: () => {
      setDAmount('');
      refresh();
    },
  });
  const withdraw = useMutation({
    mutationFn: () => withStepUp(() => client.withdraw({ asset: wAsset, amount: wAmount, address: wAddress })),
    onSuccess: () => {
      setWAmount('');
      refresh();
    },
  });
  const cancelW = useMutation({ mutationFn: (id: string) => client.cancelWithdrawal(id), onSuccess: refresh });

  const onDeposit = (e: FormEvent) => {
    e.preventDefault();
    deposit.mutate();
  };
  const onWithdraw = (e: FormEvent) => {
    e.preventDefault();
    withdraw.mutate();
  };
  const badD = dAmount !== '' && !isPlainDecimal(dAmount);
  const badW = wAmount !== '' && !isPlainDecimal(wAmount);

  return (
    <div className="stack">
      <Panel title="Balances" id="balances">
        <ErrorBox error={balances.error} />
        <div className="table-wrap" tabIndex={0}>
          <table data-testid="balances-table">
            <Head cols={['Asset', ['Available', 'r'], ['Held', 'r'], ['Total', 'r']]} />
            <tbody>
              {(balances.data ?? []).map((b) => (
                <tr key={b.asset} data-asset={b.asset}>
                  <th scope="row">{b.asset}</th>
                  <td className="r" data-col="available">
                    <Num value={b.available} />
                  </td>
                  <td className="r" data-col="held">
                    <Num value={b.held} />
                  </td>
                  <td className="r" data-col="total">
                    <Num value={b.total} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        {balances.data?.length === 0 ? <Empty>No funds yet: make a sandbox deposit below.</Empty> : null}
      </Panel>

      <div className="grid2 wide">
        <Panel title="Deposit (sandbox)" id="deposit">
          <form onSubmit={onDeposit} className="form">
            <AssetAmount
              name="deposit"
              assets={assets}
              asset={dAsset}
              amount={dAmount}
              invalid={badD}
              onAsset={setDAsset}
              onAmount={setDAmount}
            />
            {badD ? <p className="field-error">amount must be a plain decimal such as 100.5</p> : null}
            <ErrorBox error={deposit.error} />
            <button type="submit" className="primary" disabled={!dAmount || badD || deposit.isPending}>
              Deposit
            </button>
          </form>
        </Panel>
        <Panel title="Withdraw" id="withdraw">
          <form onSubmit={onWithdraw} className="form">
            <AssetAmount
              name="withdraw"
              assets={assets}
              asset={wAsset}
              amount={wAmount}
              invalid={badW}
              onAsset={setWAsset}
              onAmount={setWAmount}
            />
            <label>
              Address
              <input
                name="withdraw-address"
                autoComplete="off"
                value={wAddress}
                onChange={(e) => setWAddress(e.target.value.trim())}
              />
            </label>
            {badW ? <p className="field-error">amount must be a plain decimal such as 100.5</p> : null}
            <ErrorBox error={withdraw.error} />
            {withdraw.error && errorOf(withdraw.error).code === 'EMAIL_NOT_VERIFIED' ? (
              <div className="resend">
                Confirm your email address first (the link we emailed you). <ResendVerification api={client} />
              </div>
            ) : null}
            <button type="submit" className="primary" disabled={!wAmount || !wAddress || badW || withdraw.isPending}>
              Withdraw
            </button>
          </form>
        </Panel>
      </div>

      <Panel title="Deposits" id="deposits">
        <ErrorBox error={deposits.error} />
        {(deposits.data ?? []).length === 0 ? (
          <Empty>No deposits.</Empty>
        ) : (
          <table>
            <Head cols={['Asset', ['Amount', 'r'], 'Status', 'Created']} />
            <tbody>
              {(deposits.data ?? []).map((d) => (
                <tr key={d.id} data-status={d.status}>
                  <td>{d.asset}</td>
                  <td className="r">
                    <Num value={d.amount} />
                  </td>
                  <td>{d.status}</td>
                  <td>
                    <Time iso={d.createdAt} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Panel>

      <Panel title="Withdrawals" id="withdrawals">
        <ErrorBox error={withdrawals.error ?? cancelW.error} />
        {(withdrawals.data ?? []).length === 0 ? (
          <Empty>No withdrawals.</Empty>
        ) : (
          <div className="table-wrap" tabIndex={0}>
            <table>
              <Head cols={['Asset', ['Amount', 'r'], ['Fee', 'r'], 'Status', ['Address', 'hide-sm'], '']} />
              <tbody>
                {(withdrawals.data ?? []).map((w) => (
                  <tr key={w.id} data-status={w.status}>
                    <td>{w.asset}</td>
                    <td className="r">
                      <Num value={w.amount} />
                    </td>
                    <td className="r">
                      <Num value={w.fee} />
                    </td>
                    <td>
                      {w.status}
                      {w.failureReason ? <span className="muted small"> ({w.failureReason})</span> : null}
                      {w.status === 'awaiting_confirmation' ? (
                        <span className="muted small">
                          {' '}
                          (open the link we emailed you
                          {w.confirmationExpiresAt ? (
                            <>
                              {' '}
                              before <Time iso={w.confirmationExpiresAt} />
                            </>
                          ) : null}
                          )
                        </span>
                      ) : null}
                    </td>
                    <td className="hide-sm mono">{w.address}</td>
                    <td>
                      {w.status === 'pending' || w.status === 'awaiting_confirmation' ? (
                        <button type="button" onClick={() => cancelW.mutate(w.id)}>
                          Cancel
                        </button>
                      ) : null}
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
