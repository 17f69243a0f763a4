import { useQuery } from '@tanstack/react-query';
import { client, isAdmin, useAuth } from '../lib/api.tsx';
import { ErrorBox, Head, Loading, Panel, Time } from '../components/ui.tsx';

export function HealthSection() {
  const { user } = useAuth();
  const health = useQuery({
    queryKey: ['trading-health'],
    queryFn: () => client.tradingHealth(),
    refetchInterval: 5_000,
  });
  const engine = useQuery({
    queryKey: ['engine-markets'],
    queryFn: () => client.admin.engineMarkets(),
    enabled: isAdmin(user),
    refetchInterval: 10_000,
  });
  const flags = useQuery({
    queryKey: ['feature-flags'],
    queryFn: () => client.admin.featureFlags(),
    enabled: isAdmin(user),
    refetchInterval: 10_000,
  });
  const h = health.data;
  // Normal state: trading, withdrawals and deposits enabled; maintenance off.
  const off = (flags.data ?? []).filter((f) => (f.name === 'maintenance' ? f.enabled : !f.enabled));
  return (
    <div className="stack">
      <Panel title="Trading health" id="trading-health">
        <ErrorBox error={health.error} />
        {!h ? <Loading /> : null}
        {h ? (
          <p>
            Overall <span className={`badge ${h.status === 'healthy' ? 'ok' : 'warn'}`}>{h.status}</span> · trading{' '}
            {h.tradingEnabled ? 'enabled' : <strong>disabled</strong>} · maintenance{' '}
            {h.maintenance ? <strong>on</strong> : 'off'} · checked <Time iso={h.checkedAt} />
          </p>
        ) : null}
        {off.length ? (
          <p className="error" role="status">
            Kill switches thrown:{' '}
            {off.map((f) => `${f.name} ${f.enabled ? 'on' : 'off'}${f.reason ? ` (${f.reason})` : ''}`).join(', ')}
          </p>
        ) : null}
        <div className="table-wrap" tabIndex={0}>
          <table>
            <Head cols={['Market', 'Engine consumer', ['Queue depth', 'r'], ['Last trade age (s)', 'r'], 'State']} />
            <tbody>
              {(h?.markets ?? []).map((m) => (
                <tr key={m.market} data-market={m.market}>
                  <th scope="row">{m.market}</th>
                  <td>
                    <span className={`badge ${m.status === 'ok' ? 'ok' : 'warn'}`}>{m.status}</span>{' '}
                    {m.engineConsumers ?? '?'} consumer(s)
                  </td>
                  <td className="r num">{m.queueDepth ?? '—'}</td>
                  <td className="r num">{m.lastTradeAgeSeconds ?? '—'}</td>
                  <td>{m.halted ? <span className="badge warn">halted</span> : 'trading'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </Panel>
      {isAdmin(user) ? (
        <Panel title="Matching engine" id="engine">
          <ErrorBox error={engine.error} />
          <p className="muted small">Replica {engine.data?.replica ?? '—'}</p>
          <div className="table-wrap" tabIndex={0}>
            <table>
              <Head
                cols={['Market', 'Consumer', 'Phase', ['Last seq', 'r'], ['Resting orders', 'r'], 'Last applied']}
              />
              <tbody>
                {(engine.data?.markets ?? []).map((m) => (
                  <tr key={m.market}>
                    <th scope="row">{m.market}</th>
                    <td>{m.consumer}</td>
                    <td>
                      {m.phase === 'auction' ? <span className="badge warn">call auction</span> : (m.phase ?? '—')}
                    </td>
                    <td className="r num">{m.lastSeq}</td>
                    <td className="r num">{m.restingOrders ?? '—'}</td>
                    <td>
                      <Time iso={m.lastAppliedAt} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </Panel>
      ) : null}
    </div>
  );
}
