import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import type { DeadLetterService } from '@exchange/sdk';
import { client } from '../lib/api.tsx';
import { useStepUp } from '../components/step-up.tsx';
import { Empty, ErrorBox, Head, Panel, Time } from '../components/ui.tsx';

const SERVICES: DeadLetterService[] = ['order', 'wallet', 'payment-processor'];

export function DeadLettersSection() {
  const [service, setService] = useState<DeadLetterService>('order');
  const qc = useQueryClient();
  const withStepUp = useStepUp();
  const list = useQuery({
    queryKey: ['dead-letters', service],
    queryFn: () => client.admin.deadLetters(service, { limit: 50, status: 'dead' }),
    refetchInterval: 10_000,
  });
  const retry = useMutation({
    mutationFn: (id: string) => withStepUp(() => client.admin.retryDeadLetter(service, id)),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ['dead-letters', service] }),
  });
  const rows = list.data?.items ?? [];
  return (
    <Panel
      title="Dead letters"
      id="dead-letters"
      actions={
        <div className="tabs" role="group" aria-label="Service">
          {SERVICES.map((s) => (
            <button
              key={s}
              type="button"
              className={s === service ? 'active' : ''}
              aria-pressed={s === service}
              onClick={() => setService(s)}
            >
              {s}
            </button>
          ))}
        </div>
      }
    >
      <ErrorBox error={list.error ?? retry.error} />
      {rows.length === 0 ? (
        <Empty>No dead letters in {service}.</Empty>
      ) : (
        <div className="table-wrap" tabIndex={0}>
          <table>
            <Head cols={['Queue', 'Type', 'Reason', ['Attempts', 'r'], 'Dead since', '']} />
            <tbody>
              {rows.map((d) => (
                <tr key={d.id}>
                  <td className="mono small">{d.queue}</td>
                  <td>{d.type ?? '—'}</td>
                  <td className="small">{d.reason}</td>
                  <td className="r num">{d.attempts}</td>
                  <td>
                    <Time iso={d.deadLetteredAt} />
                  </td>
                  <td>
                    <button type="button" onClick={() => retry.mutate(d.id)}>
                      Retry
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Panel>
  );
}
