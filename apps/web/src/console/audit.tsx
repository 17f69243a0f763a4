import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { client } from '../lib/api.tsx';
import { ErrorBox, Head, Panel, Time } from '../components/ui.tsx';

export function AuditSection() {
  const [action, setAction] = useState('');
  const audit = useQuery({
    queryKey: ['audit', action],
    queryFn: () => client.admin.audit({ limit: 100, ...(action ? { action } : {}) }),
  });
  return (
    <Panel title="Audit log" id="audit">
      <label className="inline-label">
        Action
        <input
          name="audit-action"
          placeholder="e.g. user.lock"
          value={action}
          onChange={(e) => setAction(e.target.value.trim())}
        />
      </label>
      <ErrorBox error={audit.error} />
      <div className="table-wrap" tabIndex={0}>
        <table>
          <Head cols={['When', 'Action', ['Actor', 'hide-sm'], ['Target', 'hide-sm'], 'Details']} />
          <tbody>
            {(audit.data?.items ?? []).map((a) => (
              <tr key={a.id}>
                <td>
                  <Time iso={a.at} />
                </td>
                <td className="mono">{a.action}</td>
                <td className="hide-sm mono small">{a.actorId ?? '—'}</td>
                <td className="hide-sm mono small">{a.targetId ?? '—'}</td>
                <td className="mono small">{JSON.stringify(a.details)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </Panel>
  );
}
