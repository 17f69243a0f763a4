import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { client } from '../lib/api.tsx';
import { useStepUp } from '../components/step-up.tsx';
import { Empty, ErrorBox, Head, Panel, Time } from '../components/ui.tsx';

export function ReconciliationSection() {
  const qc = useQueryClient();
  const withStepUp = useStepUp();
  const [openId, setOpenId] = useState<string | null>(null);
  const reports = useQuery({ queryKey: ['recon'], queryFn: () => client.admin.reconciliationReports({ limit: 30 }) });
  const report = useQuery({
    queryKey: ['recon', openId],
    queryFn: () => client.admin.reconciliationReport(openId!),
    enabled: Boolean(openId),
  });
  const run = useMutation({
    mutationFn: () => withStepUp(() => client.admin.runReconciliation()),
    onSuccess: (r) => {
      setOpenId(r.id);
      void qc.invalidateQueries({ queryKey: ['recon'] });
    },
  });
  const mismatches = (report.data?.report as { mismatches?: unknown[] } | undefined)?.mismatches;
  return (
    <div className="stack">
      <Panel
        title="Reconciliation reports"
        id="recon"
        actions={
          <button type="button" onClick={() => run.mutate()} disabled={run.isPending}>
            Run now
          </button>
        }
      >
        <ErrorBox error={reports.error ?? run.error} />
        {(reports.data ?? []).length === 0 ? (
          <Empty>No reports yet.</Empty>
        ) : (
          <table>
            <Head cols={['Finished', 'Status', ['Mismatches', 'r'], ['Trigger', 'hide-sm'], '']} />
            <tbody>
              {(reports.data ?? []).map((r) => (
                <tr key={r.id}>
                  <td>
                    <Time iso={r.finishedAt} />
                  </td>
                  <td>
                    <span className={`badge ${r.status === 'ok' ? 'ok' : 'warn'}`}>{r.status}</span>
                  </td>
                  <td className="r num">{r.mismatchCount}</td>
                  <td className="hide-sm">{r.trigger}</td>
                  <td>
                    <button type="button" onClick={() => setOpenId(r.id)}>
                      Open
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Panel>
      {openId ? (
        <Panel title="Report" id="recon-report">
          <ErrorBox error={report.error} />
          {report.data ? (
            <>
              <p>
                {report.data.status} · {report.data.mismatchCount} mismatch(es) · <Time iso={report.data.finishedAt} />
              </p>
              {Array.isArray(mismatches) && mismatches.length > 0 ? (
                <pre className="pre">{JSON.stringify(mismatches, null, 2)}</pre>
              ) : (
                <pre className="pre">{JSON.stringify(report.data.report, null, 2)}</pre>
              )}
            </>
          ) : null}
        </Panel>
      ) : null}
    </div>
  );
}
