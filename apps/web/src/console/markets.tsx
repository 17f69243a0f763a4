import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { client } from '../lib/api.tsx';
import { useStepUp } from '../components/step-up.tsx';
import { ErrorBox, Head, Panel, Time } from '../components/ui.tsx';
import { ConfirmDialog } from './confirm.tsx';

type Pending = { kind: 'halt' | 'resume'; market: string } | { kind: 'flag'; flag: string; enable: boolean };

export function MarketsSection() {
  const qc = useQueryClient();
  const withStepUp = useStepUp();
  const [pending, setPending] = useState<Pending | null>(null);
  const markets = useQuery({ queryKey: ['markets'], queryFn: () => client.markets(), refetchInterval: 5_000 });
  const flags = useQuery({
    queryKey: ['feature-flags'],
    queryFn: () => client.admin.featureFlags(),
    refetchInterval: 10_000,
  });
  const done = () => {
    for (const k of ['markets', 'feature-flags', 'trading-health']) void qc.invalidateQueries({ queryKey: [k] });
  };
  const run = async (reason: string) => {
    if (!pending) return;
    if (pending.kind === 'flag')
      await withStepUp(() => client.admin.setFeatureFlag(pending.flag, pending.enable, reason));
    else if (pending.kind === 'halt') await withStepUp(() => client.admin.haltMarket(pending.market, reason));
    else await withStepUp(() => client.admin.resumeMarket(pending.market, reason));
    done();
  };
  return (
    <div className="stack">
      <Panel title="Markets" id="console-markets">
        <ErrorBox error={markets.error} />
        <table>
          <Head cols={['Market', 'State', '']} />
          <tbody>
            {(markets.data ?? []).map((m) => (
              <tr key={m.symbol} data-market={m.symbol}>
                <th scope="row">{m.symbol}</th>
                <td>
                  {m.halted ? (
                    <span className="badge warn">halted{m.haltReason ? `: ${m.haltReason}` : ''}</span>
                  ) : (
                    <span className="badge ok">trading</span>
                  )}
                </td>
                <td>
                  {m.halted ? (
                    <button type="button" onClick={() => setPending({ kind: 'resume', market: m.symbol })}>
                      Resume {m.symbol}
                    </button>
                  ) : (
                    <button
                      type="button"
                      className="danger"
                      onClick={() => setPending({ kind: 'halt', market: m.symbol })}
                    >
                      Halt {m.symbol}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </Panel>
      <Panel title="Kill switches" id="kill-switches">
        <p className="muted small">trading, maintenance (order service); withdrawals, deposits (wallet).</p>
        <ErrorBox error={flags.error} />
        <table>
          <Head cols={['Switch', 'State', ['Changed', 'hide-sm'], '']} />
          <tbody>
            {(flags.data ?? []).map((f) => (
              <tr key={f.name} data-flag={f.name}>
                <th scope="row">{f.name}</th>
                <td>
                  <span className={`badge ${f.enabled ? 'ok' : 'warn'}`}>{f.enabled ? 'enabled' : 'disabled'}</span>
                  {f.reason ? <span className="muted small"> {f.reason}</span> : null}
                </td>
                <td className="hide-sm">
                  <Time iso={f.updatedAt} />
                </td>
                <td>
                  <button
                    type="button"
                    className={f.enabled ? 'danger' : ''}
                    onClick={() => setPending({ kind: 'flag', flag: f.name, enable: !f.enabled })}
                  >
                    {f.enabled ? 'Disable' : 'Enable'} {f.name}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </Panel>
      {pending ? (
        <ConfirmDialog
          title={
            pending.kind === 'flag'
              ? `${pending.enable ? 'Enable' : 'Disable'} ${pending.flag}?`
              : `${pending.kind === 'halt' ? 'Halt' : 'Resume'} ${pending.market}?`
          }
          body={
            pending.kind === 'halt'
              ? 'New orders are refused and the book stays as it is until the market is resumed. Cancels still work.'
              : pending.kind === 'resume'
                ? 'Order entry opens again for this market.'
                : 'This changes the switch for every user at once.'
          }
          confirmLabel={
            pending.kind === 'flag'
              ? pending.enable
                ? 'Enable'
                : 'Disable'
              : pending.kind === 'halt'
                ? 'Halt market'
                : 'Resume market'
          }
          onConfirm={run}
          onClose={() => setPending(null)}
        />
      ) : null}
    </div>
  );
}
