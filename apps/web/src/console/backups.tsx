import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { client } from '../lib/api.tsx';
import { useStepUp } from '../components/step-up.tsx';
import { Empty, ErrorBox, Head, Panel, Time } from '../components/ui.tsx';

export function BackupsSection() {
  const qc = useQueryClient();
  const withStepUp = useStepUp();
  const backups = useQuery({ queryKey: ['backups'], queryFn: () => client.admin.backups() });
  const create = useMutation({
    mutationFn: () => withStepUp(() => client.admin.createBackup()),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ['backups'] }),
  });
  return (
    <Panel
      title="Backups"
      id="backups"
      actions={
        <button type="button" onClick={() => create.mutate()} disabled={create.isPending}>
          Back up now
        </button>
      }
    >
      <ErrorBox error={backups.error ?? create.error} />
      {(backups.data ?? []).length === 0 ? (
        <Empty>No backups.</Empty>
      ) : (
        <table>
          <Head cols={['Name', ['Bytes', 'r'], ['SHA-256', 'hide-sm'], 'Created']} />
          <tbody>
            {(backups.data ?? []).map((b) => (
              <tr key={b.name}>
                <td className="mono small">{b.name}</td>
                <td className="r num">{b.sizeBytes}</td>
                <td className="hide-sm mono small">{b.sha256.slice(0, 16)}…</td>
                <td>
                  <Time iso={b.createdAt} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Panel>
  );
}
