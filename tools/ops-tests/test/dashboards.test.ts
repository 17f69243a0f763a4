// Grafana dashboards (k8s/charts/exchange/files/dashboards: the chart ships them as ConfigMaps, compose mounts the same
// folder): each one well-formed, every panel's query valid PromQL (promtool) on metrics the services register, the
// recording rules define or the scraped exporters provide; provisioned in compose and rendered by the chart.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { productMetricNames, readText, readYaml, repoPath, runTool } from '../src/helpers.ts';
import { manifests } from '../src/k8s-tools.ts';

const dir = 'k8s/charts/exchange/files/dashboards';
const files = readdirSync(repoPath(dir)).filter((f) => f.endsWith('.json'));
const dashboards = files.map((f) => [f, JSON.parse(readText(dir, f))] as [string, any]);
const queries = dashboards.flatMap(([f, d]) =>
  d.panels.flatMap((p: any) => p.targets.map((t: any) => ({ f, panel: p.title as string, expr: t.expr as string }))),
);

test('the dashboards the runbooks describe exist', () => {
  expect(files.sort()).toEqual([
    'engine.json',
    'errors.json',
    'order-flow.json',
    'queues.json',
    'reconciliation.json',
    'settlement.json',
    'withdrawals.json',
  ]);
});

test.each(dashboards)('%s is a provisionable Grafana dashboard', (_f, d) => {
  expect(d.uid).toMatch(/^exchange-[a-z-]+$/);
  expect(d.title).toMatch(/^Exchange: /);
  expect(d.schemaVersion).toBeGreaterThanOrEqual(36);
  expect(d.templating.list.map((v: any) => v.name)).toEqual(['datasource', 'namespace']);
  expect(d.panels.length).toBeGreaterThan(2);
  const ids = d.panels.map((p: any) => p.id);
  expect(new Set(ids).size).toBe(ids.length);
  for (const p of d.panels) {
    expect(p.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
    expect(p.gridPos).toEqual({
      h: expect.any(Number),
      w: expect.any(Number),
      x: expect.any(Number),
      y: expect.any(Number),
    });
    expect(['timeseries', 'stat', 'bargauge']).toContain(p.type);
    expect(p.targets.length).toBeGreaterThan(0);
  }
});

test('uids are unique across dashboards', () => {
  const uids = dashboards.map(([, d]) => d.uid);
  expect(new Set(uids).size).toBe(uids.length);
});

test("every panel's metric exists: registered by a service, recorded by a rule, or scraped from an exporter", () => {
  const recorded = parse(readText('config/rules/recording-rules.yml')).groups.flatMap((g: any) =>
    g.rules.map((r: any) => r.record),
  );
  const registered = productMetricNames();
  const known = (m: string) =>
    registered.has(m) ||
    registered.has(m.replace(/_(bucket|sum|count)$/, '')) ||
    recorded.includes(m) ||
    ['up', 'time'].includes(m);
  const keywords = new Set(['sum', 'max', 'min', 'by', 'rate', 'increase', 'histogram_quantile', 'topk', 'le']);
  for (const q of queries) {
    const metrics: string[] = q.expr
      .replace(/\{[^}]*\}/g, '')
      .replace(/\[[^\]]*\]/g, '')
      .replace(/by \([^)]*\)/g, '')
      .match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)!
      .filter((m: string) => !keywords.has(m));
    expect(metrics.length).toBeGreaterThan(0);
    for (const m of metrics) expect({ ...q, metric: m, known: known(m) }).toEqual({ ...q, metric: m, known: true });
  }
});

test('every query is valid PromQL (promtool) and keeps to the selected namespace', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'dashboards-'));
  try {
    writeFileSync(
      join(tmp, 'rules.yml'),
      stringify({
        groups: [
          {
            name: 'dashboards',
            rules: queries.map((q, i) => ({ record: `dashboard:q${i}`, expr: q.expr.replaceAll('$namespace', '.*') })),
          },
        ],
      }),
    );
    const r = runTool('promtool', ['check', 'rules', join(tmp, 'rules.yml')]);
    expect({ status: r.status, out: r.stdout + r.stderr }).toMatchObject({ status: 0 });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  for (const q of queries)
    expect({ ...q, scoped: q.expr.includes('namespace=~"$namespace"') }).toMatchObject({ scoped: true });
});

test('compose provisions Prometheus as the datasource and mounts these files', () => {
  const grafana = readYaml('docker-compose.yml').services.grafana;
  expect(grafana.volumes).toContain(`./${dir}:/var/lib/grafana/dashboards/exchange:ro`);
  expect(grafana.volumes).toContain('./config/grafana/provisioning:/etc/grafana/provisioning:ro');
  const provider = readYaml('config/grafana/provisioning/dashboards/exchange.yml').providers[0];
  expect(provider.options.path).toBe('/var/lib/grafana/dashboards/exchange');
  const ds = readYaml('config/grafana/provisioning/datasources/prometheus.yml').datasources[0];
  expect(ds).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090' });
});

test('the chart renders one sidecar ConfigMap per dashboard, byte for byte', () => {
  const objs = manifests(`${repoPath('k8s/charts/exchange/ci')}/monitoring-values.yaml`)
    .map((m) => m.obj)
    .filter((o) => o.kind === 'ConfigMap' && o.metadata.labels?.grafana_dashboard === '1');
  expect(objs.map((o) => Object.keys(o.data)[0]).sort()).toEqual(files.sort());
  for (const o of objs) {
    const [name, json] = Object.entries(o.data)[0] as [string, string];
    expect(json).toBe(readText(dir, name).trimEnd());
  }
  expect(manifests().some((m) => m.obj.metadata.labels?.grafana_dashboard)).toBe(false);
});
