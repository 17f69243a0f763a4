// The paging path run for real: Alertmanager (the Debian prometheus-alertmanager binary) with config/alertmanager.yml
// (only the hook's host name replaced), the goalert-hook process, and stand-in GoAlert and ntfy HTTP servers.
// Alerts posted to Alertmanager's API must reach GoAlert (all) and ntfy (critical only).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, freePort, readText, repoPath, startTool } from '../src/helpers.ts';

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
  const hookPort = await freePort();
  const hook = spawn(process.execPath, [repoPath('config/goalert-hook/hook.ts')], {
    env: {
      PATH: process.env.PATH ?? '',
      PORT: String(hookPort),
      GOALERT_URL: `http://127.0.0.1:${goalertPort}/api/v2/generic/incoming`,
      GOALERT_TOKEN: 'live-token',
      NTFY_URL: `http://127.0.0.1:${ntfyPort}/exchange-alerts`,
    },
    stdio: 'ignore',
  });
  procs.push(hook);
  await eventually(
    'hook up',
    async () => ((await fetch(`http://127.0.0.1:${hookPort}/health`).catch(() => undefined))?.ok ? true : undefined),
    10_000,
  );

  const config = readText('config/alertmanager.yml').replaceAll(
    'http://goalert-hook:9095',
    `http://127.0.0.1:${hookPort}`,
  );
  expect(config).not.toContain('goalert-hook:9095');
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

test('a critical alert pages GoAlert and ntfy; a warning pages GoAlert only', async () => {
  const alert = (labels: Record<string, string>) => ({
    labels,
    annotations: {
      summary: `ops-tests ${labels.alertname}`,
      description: 'live paging test',
      runbook_url: `docs/runbook.md#${labels.alertname!.toLowerCase()}`,
    },
    generatorURL: 'http://prometheus:9090/graph',
  });
  const critical = { alertname: 'RECONCILIATION_MISMATCH', severity: 'critical' };
  const warning = { alertname: 'WITHDRAWAL_BLOCKED', severity: 'warning' };
  const post = async (alerts: unknown[]) => {
    const r = await fetch(`${am}/api/v2/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(alerts),
    });
    expect(r.status).toBe(200);
  };
  await post([alert(critical), alert(warning)]);

  const bodies = () => goalert.map((c) => JSON.parse(c.body));
  // critical route: group_wait 10s; default route: group_wait 30s
  await eventually('GoAlert got both alerts', async () => (bodies().length >= 2 ? true : undefined), 60_000, amLog);
  expect(goalert.every((c) => c.path === '/api/v2/generic/incoming?token=live-token')).toBe(true);
  expect(
    bodies()
      .map((b) => b.summary)
      .sort(),
  ).toEqual([
    '[critical] RECONCILIATION_MISMATCH: ops-tests RECONCILIATION_MISMATCH',
    '[warning] WITHDRAWAL_BLOCKED: ops-tests WITHDRAWAL_BLOCKED',
  ]);
  expect(ntfy).toHaveLength(1);
  expect(ntfy[0]!.headers.title).toBe('CRITICAL: RECONCILIATION_MISMATCH');
  expect(ntfy[0]!.headers.priority).toBe('urgent');

  // Resolution reaches GoAlert as action=close at the next group_interval (5 min); the hook's close is tested in
  // alertmanager.test.ts.
}, 150_000);
