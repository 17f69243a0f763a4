// Alertmanager config with the real amtool, and GoAlert's Alertmanager payload contract (src/goalert-contract.ts,
// ported from GoAlert's parser) against the rules' annotations.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alertmanagerConfig } from '../src/alertmanager-config.ts';
import { goalertParse } from '../src/goalert-contract.ts';
import { readYaml, runTool } from '../src/helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'amtool-'));
const configFile = join(dir, 'alertmanager.yml');
writeFileSync(
  configFile,
  alertmanagerConfig({
    urlFiles: {
      '/run/secrets/goalert_heartbeat_url': 'http://goalert:8081/api/v2/heartbeat/00000000-0000-0000-0000-000000000001',
    },
  }),
);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function route(labels: string[]): string {
  const r = runTool('amtool', ['config', 'routes', 'test', `--config.file=${configFile}`, ...labels]);
  if (r.status !== 0) throw new Error(`amtool config routes test failed: ${r.stderr}`);
  return r.stdout.trim();
}

describe('Alertmanager configuration (amtool)', () => {
  test('amtool check-config accepts config/alertmanager.yml', () => {
    const r = runTool('amtool', ['check-config', configFile]);
    if (r.status !== 0) throw new Error(r.stdout + r.stderr);
    expect(r.stdout).toContain('SUCCESS');
  });

  test('critical alerts go to GoAlert and ntfy, the Watchdog to the heartbeat, everything else to GoAlert', () => {
    expect(route(['alertname=RECONCILIATION_MISMATCH', 'severity=critical'])).toBe('goalert-and-ntfy');
    expect(route(['alertname=ServiceDown', 'severity=critical', 'app=wallet'])).toBe('goalert-and-ntfy');
    expect(route(['alertname=ERROR_THRESHOLD', 'severity=high', 'service=order'])).toBe('goalert');
    expect(route(['alertname=DEAD_LETTER_JOB', 'severity=medium'])).toBe('goalert');
    expect(route(['alertname=WITHDRAWAL_BLOCKED', 'severity=warning'])).toBe('goalert');
    expect(route(['alertname=Watchdog', 'severity=none', 'namespace=exchange'])).toBe('goalert-heartbeat');
  });

  test("GoAlert's native endpoint, bearer key, ntfy templating and the heartbeat; no secret in the file", () => {
    const cfg = readYaml('config', 'alertmanager.yml');
    const byName = Object.fromEntries(cfg.receivers.map((r: any) => [r.name, r.webhook_configs]));
    for (const w of [byName.goalert[0], byName['goalert-and-ntfy'][0]]) {
      expect(w.url).toBe('http://goalert:8081/api/v2/prometheusalertmanager/incoming');
      expect(w.send_resolved).toBe(true);
      expect(w.http_config.authorization).toEqual({
        type: 'Bearer',
        credentials_file: '/run/secrets/goalert_alertmanager_token',
      });
    }
    const ntfy = new URL(byName['goalert-and-ntfy'][1].url);
    expect(ntfy.searchParams.get('tpl')).toBe('yes');
    expect(ntfy.searchParams.get('p')).toBe('urgent');
    // ntfy's templates read the webhook JSON: only fields Alertmanager's webhook has
    for (const t of [ntfy.searchParams.get('t')!, ntfy.searchParams.get('m')!])
      for (const [, f] of t.matchAll(/\{\{\s*(?:range\s+)?\.([a-zA-Z.]+)/g))
        expect(['status', 'commonLabels', 'alerts', 'annotations', 'labels']).toContain(f!.split('.')[0]);
    expect(byName['goalert-heartbeat'][0]).toEqual({
      url_file: '/run/secrets/goalert_heartbeat_url',
      send_resolved: false,
    });
    expect(JSON.stringify(cfg)).not.toMatch(/token=|tk_|heartbeat\/[0-9a-f-]{36}/);
  });
});

describe("GoAlert's Alertmanager contract", () => {
  const rules = readYaml<{ groups: { rules: any[] }[] }>('config', 'rules', 'alert-rules.yml').groups.flatMap(
    (g) => g.rules,
  );

  test('every alert has a summary that does not change with its value (GoAlert deduplicates by it)', () => {
    for (const r of rules) {
      expect({ alert: r.alert, summary: typeof r.annotations?.summary }).toEqual({ alert: r.alert, summary: 'string' });
      expect({ alert: r.alert, summary: r.annotations.summary }).not.toEqual({
        alert: r.alert,
        summary: expect.stringMatching(/\$value/),
      });
    }
  });

  test('the port reads what GoAlert reads: status, common summary, fallbacks', () => {
    const alert = (name: string, instance: string, summary?: string) => ({
      status: 'firing',
      labels: { alertname: name, instance },
      annotations: summary ? { summary } : {},
    });
    expect(
      goalertParse({ status: 'firing', commonAnnotations: { summary: 's' }, alerts: [alert('A', 'i', 's')] }),
    ).toEqual({ status: 'triggered', summary: 's', dedup: 's' });
    expect(
      goalertParse({ status: 'resolved', commonLabels: { alertname: 'A' }, alerts: [alert('A', 'x'), alert('A', 'y')] })
        .summary,
    ).toBe('A x,y');
    expect(goalertParse({ status: 'firing', alerts: [alert('A', 'x', 'first'), alert('B', 'y')] }).summary).toBe(
      'first and 1 others',
    );
    expect(() => goalertParse({ status: 'pending', alerts: [] })).toThrow(/400/);
  });
});
