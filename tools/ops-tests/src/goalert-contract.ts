// What GoAlert (v0.33, `PrometheusAlertmanagerEventsAPI` in its prometheus integration package) reads from an
// Alertmanager webhook, ported field for field so tests can hold the payloads our Alertmanager sends against it:
// Go's encoding/json matches keys case-insensitively and ignores the rest; GoAlert uses only these fields.
//   status                -> "firing" = triggered, "resolved" = closed, anything else: 400
//   commonLabels          -> alertname, instance
//   commonAnnotations     -> summary, details
//   alerts[].labels       -> alertname, instance;  alerts[].annotations -> summary, details;  alerts[].generatorURL
// The alert's summary (also its dedup key, so firing and resolved must produce the same one):
//   commonAnnotations.summary, else "<alertname> <instance>" of the common labels, else with every alert's instance,
//   else (no common alert name) the first alert's summary + " and N others".

type Dict = Record<string, unknown>;
const field = (o: unknown, name: string): unknown => {
  if (!o || typeof o !== 'object') return undefined;
  const key = Object.keys(o).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : (o as Dict)[key];
};
const str = (o: unknown, ...path: string[]): string => {
  let v: unknown = o;
  for (const p of path) v = field(v, p);
  return typeof v === 'string' ? v : '';
};

export interface GoAlertAlert {
  status: 'triggered' | 'closed';
  summary: string;
  dedup: string;
}

/** GoAlert's reading of the body, or an Error with the 400 it would answer. */
export function goalertParse(body: unknown): GoAlertAlert {
  const status = str(body, 'status');
  if (status !== 'firing' && status !== 'resolved') throw new Error('400 invalid state');
  const alerts = (field(body, 'alerts') as unknown[]) ?? [];
  const alertSummary = (a: unknown) =>
    str(a, 'annotations', 'summary') || `${str(a, 'labels', 'alertname')} ${str(a, 'labels', 'instance')}`;
  let summary = str(body, 'commonAnnotations', 'summary');
  if (!summary) {
    const name = str(body, 'commonLabels', 'alertname');
    if (!name) summary = `${alertSummary(alerts[0])} and ${alerts.length - 1} others`;
    else if (str(body, 'commonLabels', 'instance')) summary = `${name} ${str(body, 'commonLabels', 'instance')}`;
    else summary = `${name} ${alerts.map((a) => str(a, 'labels', 'instance')).join(',')}`;
  }
  return { status: status === 'firing' ? 'triggered' : 'closed', summary, dedup: summary };
}
