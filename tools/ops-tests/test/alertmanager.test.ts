// Alertmanager config (real amtool) and the goalert-hook (started as a real process against
// stand-in GoAlert and ntfy HTTP servers).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { runTool, readYaml, repoPath } from '../src/helpers.ts';

function route(labels: string[]): string {
  const r = runTool('amtool', ['config', 'routes', 'test', '--config.file=config/alertmanager.yml', ...labels]);
  if (r.status !== 0) throw new Error(`amtool config routes test failed: ${r.stderr}`);
  return r.stdout.trim();
}

describe('Alertmanager configuration (amtool)', () => {
  test('amtool check-config accepts config/alertmanager.yml', () => {
    const r = runTool('amtool', ['check-config', 'config/alertmanager.yml']);
    if (r.status !== 0) throw new Error(r.stdout + r.stderr);
    expect(r.stdout).toContain('SUCCESS');
  });

  test('critical alerts go to GoAlert and ntfy; everything else to GoAlert only', () => {
    expect(route(['alertname=RECONCILIATION_MISMATCH', 'severity=critical'])).toBe('goalert-and-ntfy');
    expect(route(['alertname=ServiceDown', 'severity=critical', 'app=wallet'])).toBe('goalert-and-ntfy');
    expect(route(['alertname=ERROR_THRESHOLD', 'severity=high', 'service=order'])).toBe('goalert');
    expect(route(['alertname=DEAD_LETTER_JOB', 'severity=medium'])).toBe('goalert');
    expect(route(['alertname=WITHDRAWAL_BLOCKED', 'severity=warning'])).toBe('goalert');
  });

  test('both receivers deliver through the goalert-hook, with resolved notifications, and no secret in the file', () => {
    const cfg = readYaml('config', 'alertmanager.yml');
    const byName = Object.fromEntries(
      cfg.receivers.map((r: any) => [r.name, r.webhook_configs.map((w: any) => w.url)]),
    );
    expect(byName).toEqual({
      goalert: ['http://goalert-hook:9095/goalert'],
      'goalert-and-ntfy': ['http://goalert-hook:9095/goalert', 'http://goalert-hook:9095/ntfy'],
    });
    for (const r of cfg.receivers) for (const w of r.webhook_configs) expect(w.send_resolved).toBe(true);
    expect(JSON.stringify(cfg)).not.toMatch(/token=|ntfy\.sh/);
  });
});

interface Captured {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

async function stub(status: number): Promise<{ server: Server; url: string; calls: Captured[] }> {
  const calls: Captured[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      calls.push({ path: req.url ?? '', headers: req.headers, body });
      res.writeHead(status).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls };
}

async function startHook(
  env: Record<string, string>,
): Promise<{ proc: ChildProcess; url: string; logs: () => string }> {
  const proc = spawn(process.execPath, [repoPath('config', 'goalert-hook', 'hook.ts')], {
    env: { PATH: process.env.PATH ?? '', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (c) => (out += c));
  proc.stderr!.on('data', (c) => (out += c));
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`hook did not start: ${out}`)), 10_000);
    const check = () => {
      const m = /"goalert-hook listening","port":(\d+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    };
    proc.stdout!.on('data', check);
    proc.on('exit', (code) => reject(new Error(`hook exited ${code}: ${out}`)));
  });
  return { proc, url: `http://127.0.0.1:${port}`, logs: () => out };
}

const firing = {
  version: '4',
  status: 'firing',
  receiver: 'goalert-and-ntfy',
  alerts: [
    {
      status: 'firing',
      labels: { alertname: 'RECONCILIATION_MISMATCH', severity: 'critical' },
      annotations: {
        summary: 'Ledger reconciliation found mismatches',
        description: 'Disable trading.',
        runbook_url: 'docs/runbook.md#reconciliation_mismatch',
      },
      startsAt: '2026-01-01T00:00:00Z',
      generatorURL: 'http://prometheus:9090/graph',
      fingerprint: 'abc123',
    },
  ],
};

describe('goalert-hook (real process)', () => {
  const procs: ChildProcess[] = [];
  const servers: Server[] = [];
  afterEach(() => {
    for (const p of procs.splice(0)) p.kill('SIGTERM');
    for (const s of servers.splice(0)) s.close();
  });

  test('turns an Alertmanager firing + resolved alert into GoAlert generic calls (token in query, dedup, action=close)', async () => {
    const goalert = await stub(200);
    servers.push(goalert.server);
    const hook = await startHook({
      GOALERT_URL: `${goalert.url}/api/v2/generic/incoming`,
      GOALERT_TOKEN: 'tok-secret-1',
    });
    procs.push(hook.proc);

    const r1 = await fetch(`${hook.url}/goalert`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(firing),
    });
    expect(r1.status).toBe(200);
    const resolved = { ...firing, status: 'resolved', alerts: [{ ...firing.alerts[0], status: 'resolved' }] };
    const r2 = await fetch(`${hook.url}/goalert`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(resolved),
    });
    expect(r2.status).toBe(200);

    expect(goalert.calls).toHaveLength(2);
    expect(goalert.calls[0]!.path).toBe('/api/v2/generic/incoming?token=tok-secret-1');
    const first = JSON.parse(goalert.calls[0]!.body);
    expect(first).toEqual({
      summary: '[critical] RECONCILIATION_MISMATCH: Ledger reconciliation found mismatches',
      details: expect.stringContaining('Runbook: docs/runbook.md#reconciliation_mismatch'),
      dedup: 'abc123',
    });
    expect(JSON.parse(goalert.calls[1]!.body)).toMatchObject({ dedup: 'abc123', action: 'close' });
    expect(hook.logs()).not.toContain('tok-secret-1');
  });

  test('pushes critical alerts to ntfy with urgent priority, and resolved ones with low priority', async () => {
    const ntfy = await stub(200);
    servers.push(ntfy.server);
    const hook = await startHook({ NTFY_URL: `${ntfy.url}/exchange-alerts-test`, NTFY_TOKEN: 'ntfy-secret' });
    procs.push(hook.proc);
    const r = await fetch(`${hook.url}/ntfy`, { method: 'POST', body: JSON.stringify(firing) });
    expect(r.status).toBe(200);
    await fetch(`${hook.url}/ntfy`, {
      method: 'POST',
      body: JSON.stringify({ ...firing, alerts: [{ ...firing.alerts[0], status: 'resolved' }] }),
    });
    expect(ntfy.calls).toHaveLength(2);
    expect(ntfy.calls[0]!.path).toBe('/exchange-alerts-test');
    expect(ntfy.calls[0]!.headers.title).toBe('CRITICAL: RECONCILIATION_MISMATCH');
    expect(ntfy.calls[0]!.headers.priority).toBe('urgent');
    expect(ntfy.calls[0]!.headers.authorization).toBe('Bearer ntfy-secret');
    expect(ntfy.calls[0]!.body).toContain('Ledger reconciliation found mismatches');
    expect(ntfy.calls[1]!.headers.priority).toBe('low');
    expect(ntfy.calls[1]!.headers.title).toBe('RESOLVED: RECONCILIATION_MISMATCH');
  });

  test('with RUNBOOK_BASE_URL, the runbook link becomes absolute (GoAlert details, ntfy click action)', async () => {
    const goalert = await stub(200);
    const ntfy = await stub(200);
    servers.push(goalert.server, ntfy.server);
    const hook = await startHook({
      GOALERT_URL: `${goalert.url}/api/v2/generic/incoming`,
      GOALERT_TOKEN: 't',
      NTFY_URL: `${ntfy.url}/topic`,
      RUNBOOK_BASE_URL: 'https://git.example.com/exchange/blob/main',
    });
    procs.push(hook.proc);
    await fetch(`${hook.url}/goalert`, { method: 'POST', body: JSON.stringify(firing) });
    await fetch(`${hook.url}/ntfy`, { method: 'POST', body: JSON.stringify(firing) });
    const link = 'https://git.example.com/exchange/blob/main/docs/runbook.md#reconciliation_mismatch';
    expect(JSON.parse(goalert.calls[0]!.body).details).toContain(`Runbook: ${link}`);
    expect(ntfy.calls[0]!.headers.click).toBe(link);
  });

  test('never drops silently: unconfigured -> 503, GoAlert failing -> 502, so Alertmanager retries', async () => {
    const unconfigured = await startHook({});
    procs.push(unconfigured.proc);
    expect((await fetch(`${unconfigured.url}/goalert`, { method: 'POST', body: JSON.stringify(firing) })).status).toBe(
      503,
    );
    expect((await fetch(`${unconfigured.url}/ntfy`, { method: 'POST', body: JSON.stringify(firing) })).status).toBe(
      503,
    );
    expect((await fetch(`${unconfigured.url}/ready`)).status).toBe(503);
    expect((await fetch(`${unconfigured.url}/health`)).status).toBe(200);
    expect((await fetch(`${unconfigured.url}/goalert`, { method: 'POST', body: '{"nope":1}' })).status).toBe(400);

    const broken = await stub(500);
    servers.push(broken.server);
    const hook = await startHook({ GOALERT_URL: `${broken.url}/api/v2/generic/incoming`, GOALERT_TOKEN: 't' });
    procs.push(hook.proc);
    expect((await fetch(`${hook.url}/goalert`, { method: 'POST', body: JSON.stringify(firing) })).status).toBe(502);
    expect((await fetch(`${hook.url}/ready`)).status).toBe(200);
  });
});
