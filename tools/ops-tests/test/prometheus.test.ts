// Prometheus config, recording + alert rules and their unit tests, checked with the real promtool.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { stringify } from 'yaml';
import { join } from 'node:path';
import { exists, readYaml, runTool, readText, markdownAnchors, productMetricNames } from '../src/helpers.ts';

const REQUIRED_ALERTS: Record<string, string[]> = {
  ERROR_THRESHOLD: ['high', 'critical'],
  DEAD_LETTER_JOB: ['medium', 'critical'],
  WITHDRAWAL_BLOCKED: ['warning', 'critical'],
  RECONCILIATION_MISMATCH: ['critical'],
  ServiceDown: ['critical'],
  ReadinessFailing: ['high'],
  HighLatency: ['warning', 'critical'],
  OutboxBacklog: ['high'],
  QueueBacklog: ['warning', 'critical'],
};

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function rules(file: string): Rule[] {
  const doc = readYaml<{ groups: { rules: Rule[] }[] }>('config', 'rules', file);
  return doc.groups.flatMap((g) => g.rules);
}

describe('Prometheus configuration (promtool)', () => {
  test('promtool check config accepts config/prometheus.yml and its rule files', () => {
    const r = runTool('promtool', ['check', 'config', 'config/prometheus.yml']);
    expect(`${r.stdout}${r.stderr}`).toContain('2 rule files found');
    expect(r.status).toBe(0);
  });

  test('promtool check rules accepts the recording and alert rules', () => {
    const r = runTool('promtool', [
      'check',
      'rules',
      'config/rules/recording-rules.yml',
      'config/rules/alert-rules.yml',
    ]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  test('promtool test rules: every alert fires and stays quiet as config/alerts.test.yml expects', () => {
    const r = runTool('promtool', ['test', 'rules', 'config/alerts.test.yml']);
    if (r.status !== 0) throw new Error(`promtool test rules failed:\n${r.stdout}\n${r.stderr}`);
    expect(r.stdout).toContain('SUCCESS');
  });

  // The Prometheus Operator routes an AlertmanagerConfig's alerts by the release's `namespace` label: an alert whose
  // expression aggregates `namespace` away never pages in Kubernetes. Every input series of config/alerts.test.yml
  // gets a namespace label, every expected alert and recorded sample must carry it back, and promtool judges.
  const withNamespace = (testFile: any, ns: string) => {
    const addLabel = (series: string) =>
      series.includes('{') ? series.replace('{', `{namespace="${ns}",`) : `${series}{namespace="${ns}"}`;
    const out = structuredClone(testFile);
    for (const t of out.tests) {
      for (const s of t.input_series ?? []) s.series = addLabel(s.series);
      for (const e of t.promql_expr_test ?? []) for (const x of e.exp_samples ?? []) x.labels = addLabel(x.labels);
      for (const a of t.alert_rule_test ?? [])
        for (const x of a.exp_alerts ?? []) x.exp_labels = { ...x.exp_labels, namespace: ns };
    }
    return out;
  };
  const promtoolWithNamespace = (alertRules: string) => {
    const dir = mkdtempSync(join(tmpdir(), 'ns-rules-'));
    mkdirSync(join(dir, 'rules'));
    writeFileSync(join(dir, 'rules/recording-rules.yml'), readText('config/rules/recording-rules.yml'));
    writeFileSync(join(dir, 'rules/alert-rules.yml'), alertRules);
    writeFileSync(
      join(dir, 'alerts.test.yml'),
      stringify(withNamespace(readYaml('config', 'alerts.test.yml'), 'exchange-prod')),
    );
    try {
      return runTool('promtool', ['test', 'rules', join(dir, 'alerts.test.yml')]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  test('every alert and tested recording rule keeps the namespace label (promtool on namespaced series)', () => {
    const r = promtoolWithNamespace(readText('config/rules/alert-rules.yml'));
    if (r.status !== 0) throw new Error(`an expression drops namespace:\n${r.stdout}\n${r.stderr}`);
  });

  test('the namespace check fails when an alert expression aggregates namespace away', () => {
    const broken = readText('config/rules/alert-rules.yml').replace(
      'max by (namespace, service) (outbox_pending)',
      'max by (service) (outbox_pending)',
    );
    expect(broken).not.toBe(readText('config/rules/alert-rules.yml'));
    const r = promtoolWithNamespace(broken);
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/OutboxBacklog/);
  });

  test('every aggregation in the rules (recording ones untested by promtool too) groups by namespace', () => {
    for (const rule of [...rules('recording-rules.yml'), ...rules('alert-rules.yml')]) {
      const expr = rule.expr.replace(/\s+/g, ' ');
      const aggregations = [
        ...expr.matchAll(/\b(sum|max|min|avg|count|stddev|quantile|topk|bottomk)\b\s*(by|without)?\s*(\([^)]*\))?/g),
      ];
      for (const [whole, , how, labels] of aggregations) {
        const keeps =
          how === 'by' ? /\bnamespace\b/.test(labels ?? '') : how === 'without' && !/\bnamespace\b/.test(labels ?? '');
        expect({ rule: rule.alert ?? rule.record, whole, keeps }).toEqual({
          rule: rule.alert ?? rule.record,
          whole,
          keeps: true,
        });
      }
      expect({ rule: rule.alert ?? rule.record, on: /\b(on|ignoring)\s*\(/.test(expr) }).toEqual({
        rule: rule.alert ?? rule.record,
        on: false,
      });
    }
  });

  test('the unit tests cover every alert, firing and quiet', () => {
    const tests = readYaml<{ tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[] }>(
      'config',
      'alerts.test.yml',
    );
    const cases = tests.tests.flatMap((t) => t.alert_rule_test ?? []);
    const alertNames = new Set(rules('alert-rules.yml').map((r) => r.alert!));
    for (const name of alertNames) {
      const mine = cases.filter((c) => c.alertname === name);
      expect({ name, fires: mine.some((c) => (c.exp_alerts ?? []).length > 0) }).toEqual({ name, fires: true });
      expect({ name, quiet: mine.some((c) => (c.exp_alerts ?? []).length === 0) }).toEqual({ name, quiet: true });
    }
  });
});

describe('alert rules content', () => {
  const alerts = rules('alert-rules.yml').filter((r) => r.alert);

  test.each(Object.entries(REQUIRED_ALERTS))('%s exists with severities %j', (name, severities) => {
    const mine = alerts.filter((a) => a.alert === name);
    expect(mine.map((a) => a.labels?.severity).sort()).toEqual([...severities].sort());
  });

  test('every alert has severity, summary, description and a runbook_url that resolves to a runbook heading', () => {
    expect(exists('docs', 'runbook.md')).toBe(true);
    const anchors = markdownAnchors(readText('docs', 'runbook.md'));
    for (const a of alerts) {
      expect({ alert: a.alert, severity: a.labels?.severity }).toEqual({
        alert: a.alert,
        // none: the Watchdog, which pages nobody (it feeds the GoAlert heartbeat)
        severity: expect.stringMatching(a.alert === 'Watchdog' ? /^none$/ : /^(critical|high|medium|warning)$/),
      });
      expect(a.annotations?.summary).toBeTruthy();
      expect(a.annotations?.description).toBeTruthy();
      const url = a.annotations?.runbook_url ?? '';
      const m = /^docs\/runbook\.md#(.+)$/.exec(url);
      expect({ alert: a.alert, url, ok: Boolean(m) }).toEqual({ alert: a.alert, url, ok: true });
      expect({ alert: a.alert, anchor: m![1], inRunbook: anchors.has(m![1]!) }).toEqual({
        alert: a.alert,
        anchor: m![1],
        inRunbook: true,
      });
    }
  });

  test('the CoinHubX latency metric http_request_duration_ms_p99 is a recording rule over the seconds histogram, in ms', () => {
    const rec = rules('recording-rules.yml').find((r) => r.record === 'http_request_duration_ms_p99');
    expect(rec).toBeDefined();
    expect(rec!.expr.replace(/\s+/g, ' ')).toMatch(
      /^histogram_quantile\(0\.99, .*http_request_duration_seconds_bucket.*\) \* 1000$/,
    );
  });

  test('the service metrics the alerts use are registered by the product (prom-client names in the source)', () => {
    const registered = productMetricNames();
    const used = [
      'http_requests_total',
      'http_request_duration_seconds',
      'http_errors_total',
      'withdrawals_blocked_total',
      'jobs_dead_letter_total',
      'jobs_queue_length',
      'reconciliation_mismatches_total',
      'reconciliation_runs_total',
      'reconciliation_last_run_timestamp_seconds',
      'auth_login_failures_total',
      'outbox_pending',
      'engine_orders_total',
      'trades_total',
      'settlement_lag_seconds',
    ];
    for (const m of used) expect({ metric: m, registered: registered.has(m) }).toEqual({ metric: m, registered: true });
  });

  test('alerts only use metrics the services, exporters or recording rules provide', () => {
    const known = [
      'http_requests_total',
      'http_request_duration_seconds_bucket',
      'http_errors_total',
      'withdrawals_blocked_total',
      'jobs_dead_letter_total',
      'jobs_queue_length',
      'reconciliation_mismatches_total',
      'reconciliation_runs_total',
      'reconciliation_last_run_timestamp_seconds',
      'auth_login_failures_total',
      'outbox_pending',
      'engine_orders_total',
      'trades_total',
      'settlement_lag_seconds',
      'settlement_lag_seconds_bucket',
      'up',
      'probe_success',
      'pg_up',
      'pg_stat_activity_count',
      'pg_settings_max_connections',
      'alertmanager_notifications_failed_total',
      'backup_last_success_timestamp_seconds',
      'backup_last_failure_timestamp_seconds',
      'mail_sent_total',
      'mail_failed_total',
      'mail_given_up_total',
      ...rules('recording-rules.yml').map((r) => r.record!),
    ];
    const fns = new Set([
      'sum',
      'by',
      'max',
      'or',
      'unless',
      'offset',
      'increase',
      'rate',
      'histogram_quantile',
      'le',
      'without',
      'on',
      'and',
      'time',
    ]);
    for (const r of [...alerts, ...rules('recording-rules.yml')]) {
      const noStrings = r.expr
        .replace(/\b\d+[smhdwy]\b/g, '')
        .replace(/"[^"]*"/g, '')
        .replace(/\{[^}]*\}/g, '')
        .replace(/\[[^\]]*\]/g, '')
        .replace(/\([a-z_ ,]*\)\s*\(/g, '(');
      const idents = noStrings.match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? [];
      for (const id of idents) {
        if (fns.has(id)) continue;
        expect({ rule: r.alert ?? r.record, metric: id, known: known.includes(id) }).toEqual({
          rule: r.alert ?? r.record,
          metric: id,
          known: true,
        });
      }
    }
  });
});
