// The paging path run for real: Alertmanager (the Debian prometheus-alertmanager binary) with config/alertmanager.yml
// (hosts and secret files replaced, url_file inlined for 0.25, group_interval shortened so a resolution arrives within
// the test) and stand-in GoAlert and ntfy HTTP servers that record what they receive. What reaches GoAlert is read
// with GoAlert's own parsing rules (src/goalert-contract.ts): the payload contract.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alertmanagerConfig } from '../src/alertmanager-config.ts';
import { goalertParse } from '../src/goalert-contract.ts';
import { eventually, freePort, startTool } from '../src/helpers.ts';

interface Call {
  path: string;
  headers: Record<string, unknown>;
  body: string;
}
const dir = mkdtempSync(join(tmpdir(), 'ops-am-'));
const procs: ChildProcess[] = [];
const servers: Server[] = [];
const goalert: Call[] = [];
const ntfy: Call[] = [];
const heartbeat: Call[] = [];
let am = '';
let amLog = () => '';

async function stub(calls: Call[]): Promise<number> {
  const s = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      calls.push({ path: req.url ?? '', headers: req.headers, body });
      res.writeHead(200).end();
    });
  });
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  servers.push(s);
  return (s.address() as { port: number }).port;
}

beforeAll(async () => {
  const goalertPort = await stub(goalert);
  const ntfyPort = await stub(ntfy);
  const heartbeatPort = await stub(heartbeat);
  writeFileSync(join(dir, 'goalert-token'), 'live-token\n');
  writeFileSync(join(dir, 'ntfy-token'), 'tk_live\n');
  const config = alertmanagerConfig({
    urlFiles: {
      '/run/secrets/goalert_heartbeat_url': `http://127.0.0.1:${heartbeatPort}/api/v2/heartbeat/hb-id`,
    },
    hosts: {
      'http://goalert:8081': `http://127.0.0.1:${goalertPort}`,
      'http://ntfy/': `http://127.0.0.1:${ntfyPort}/`,
    },
    credentialFiles: {
      '/run/secrets/goalert_alertmanager_token': join(dir, 'goalert-token'),
      '/run/secrets/ntfy_token': join(dir, 'ntfy-token'),
    },
    timing: { group_interval: '2s', group_wait: '1s' },
  });
  writeFileSync(join(dir, 'alertmanager.yml'), config);
  const amPort = await freePort();
  const a = startTool('prometheus-alertmanager', [
    `--config.file=${join(dir, 'alertmanager.yml')}`,
    `--storage.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${amPort}`,
    '--cluster.listen-address=',
  ]);
  procs.push(a.proc);
  amLog = a.log;
  am = `http://127.0.0.1:${amPort}`;
  await eventually(
    'alertmanager ready',
    async () => ((await fetch(`${am}/-/ready`).catch(() => undefined))?.ok ? true : undefined),
    20_000,
    amLog,
  );
}, 60_000);

afterAll(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGTERM');
  await Promise.all(procs.map((p) => (p.exitCode === null ? once(p, 'exit') : null)));
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

const post = async (alerts: unknown[]) => {
  const r = await fetch(`${am}/api/v2/alerts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(alerts),
  });
  expect(r.status).toBe(200);
};
const alert = (labels: Record<string, string>, endsAt?: string) => ({
  labels: { namespace: 'exchange', ...labels },
  annotations: {
    summary: `ops-tests ${labels.alertname}`,
    description: 'live paging test',
    runbook_url: `docs/runbook.md#${labels.alertname!.toLowerCase()}`,
  },
  generatorURL: 'http://prometheus:9090/graph',
  ...(endsAt ? { endsAt } : {}),
});

test('a critical alert pages GoAlert and ntfy, a warning GoAlert only; GoAlert reads both and closes them on resolve', async () => {
  const critical = { alertname: 'RECONCILIATION_MISMATCH', severity: 'critical' };
  const warning = { alertname: 'WITHDRAWAL_BLOCKED', severity: 'warning' };
  await post([alert(critical), alert(warning)]);

  const read = () => goalert.map((c) => goalertParse(JSON.parse(c.body)));
  await eventually('GoAlert got both alerts', async () => (read().length >= 2 ? true : undefined), 30_000, amLog);
  for (const c of goalert) {
    expect(c.path).toBe('/api/v2/prometheusalertmanager/incoming');
    expect(c.headers.authorization).toBe('Bearer live-token');
  }
  expect(
    read()
      .map((a) => `${a.status} ${a.summary}`)
      .sort(),
  ).toEqual(['triggered ops-tests RECONCILIATION_MISMATCH', 'triggered ops-tests WITHDRAWAL_BLOCKED']);

  expect(ntfy).toHaveLength(1);
  const n = new URL(ntfy[0]!.path, 'http://ntfy');
  expect(n.pathname).toBe('/exchange-critical');
  expect(n.searchParams.get('tpl')).toBe('yes');
  expect(ntfy[0]!.headers.authorization).toBe('Bearer tk_live');
  // what ntfy's title template {{.status}}: {{.commonLabels.alertname}} ({{.commonLabels.severity}}) reads
  const body = JSON.parse(ntfy[0]!.body);
  expect(`${body.status}: ${body.commonLabels.alertname} (${body.commonLabels.severity})`).toBe(
    'firing: RECONCILIATION_MISMATCH (critical)',
  );
  expect(body.alerts[0].annotations.summary).toBe('ops-tests RECONCILIATION_MISMATCH');

  // resolve both: GoAlert must see "resolved" with the same summary, its dedup key, or the incident stays open
  const past = new Date(Date.now() - 1000).toISOString();
  await post([alert(critical, past), alert(warning, past)]);
  await eventually(
    'GoAlert got both resolutions',
    async () => (read().filter((a) => a.status === 'closed').length >= 2 ? true : undefined),
    30_000,
    amLog,
  );
  const opened = new Set(
    read()
      .filter((a) => a.status === 'triggered')
      .map((a) => a.dedup),
  );
  for (const closed of read().filter((a) => a.status === 'closed')) expect(opened.has(closed.dedup)).toBe(true);
  expect(ntfy).toHaveLength(1); // firing only
}, 90_000);

test('the Watchdog beats the GoAlert heartbeat and pages nobody', async () => {
  await post([alert({ alertname: 'Watchdog', severity: 'none' })]);
  await eventually('heartbeat', async () => (heartbeat.length > 0 ? true : undefined), 30_000, amLog);
  expect(heartbeat[0]!.path).toBe('/api/v2/heartbeat/hb-id');
  expect(goalert.some((c) => c.body.includes('Watchdog'))).toBe(false);
  expect(ntfy.some((c) => c.body.includes('Watchdog'))).toBe(false);
}, 60_000);
