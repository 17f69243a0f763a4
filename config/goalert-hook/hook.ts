// goalert-hook: Alertmanager webhook receiver -> GoAlert generic integration + ntfy.
//
// Alertmanager posts its own JSON (version 4: { status, alerts: [...] }); GoAlert's generic
// integration (/api/v2/generic/incoming?token=...) wants one call per alert with summary, details,
// dedup and action=close on resolve; ntfy wants a plain-text body with Title/Priority/Tags headers.
// This file translates, with no dependencies, and is run by docker-compose as
// `node /hook/hook.ts` in the node:24-slim image. Tested for real by tools/ops-tests.
//
// Environment:
//   PORT                 listen port (default 9095)
//   GOALERT_URL          GoAlert generic endpoint, e.g. http://goalert:8081/api/v2/generic/incoming
//   GOALERT_TOKEN        the integration key's token (or GOALERT_TOKEN_FILE: a file holding it)
//   NTFY_URL             full ntfy topic URL, e.g. https://ntfy.sh/exchange-alerts-<random> (or NTFY_URL_FILE)
//   NTFY_TOKEN           optional ntfy access token (Bearer)
//   RUNBOOK_BASE_URL     optional, e.g. https://git.example.com/exchange/blob/main/ : turns the rules' relative
//                        runbook_url (docs/runbook.md#...) into a link (and ntfy's Click action)
//
// Delivery failures answer 502/503 so Alertmanager retries and counts
// alertmanager_notifications_failed_total (the AlertDeliveryFailing alert). Secrets are never logged.
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';

export interface AmAlert {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  startsAt?: string;
  endsAt?: string;
  generatorURL?: string;
  fingerprint?: string;
}

export interface AmPayload {
  version?: string;
  status?: string;
  receiver?: string;
  alerts: AmAlert[];
  externalURL?: string;
}

function fromEnvOrFile(name: string): string | undefined {
  const direct = process.env[name];
  if (direct && direct.trim() !== '') return direct.trim();
  const file = process.env[`${name}_FILE`];
  if (file) {
    try {
      const v = readFileSync(file, 'utf8').trim();
      return v === '' ? undefined : v;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

function log(level: string, msg: string, extra: Record<string, unknown> = {}): void {
  process.stdout.write(
    JSON.stringify({ level, time: new Date().toISOString(), service: 'goalert-hook', msg, ...extra }) + '\n',
  );
}

export function dedupKey(a: AmAlert): string {
  if (a.fingerprint) return a.fingerprint;
  return Object.keys(a.labels)
    .sort()
    .map((k) => `${k}=${a.labels[k]}`)
    .join(',');
}

/** The alert's runbook link, absolute when RUNBOOK_BASE_URL is set and the rule's runbook_url is relative. */
export function runbookLink(a: AmAlert): string | undefined {
  const url = a.annotations?.runbook_url;
  if (!url) return undefined;
  const base = process.env.RUNBOOK_BASE_URL;
  if (!base || /^https?:\/\//.test(url)) return url;
  return new URL(url, base.endsWith('/') ? base : `${base}/`).toString();
}

export function toGoAlert(a: AmAlert): { summary: string; details: string; dedup: string; action?: 'close' } {
  const sev = a.labels.severity ?? 'none';
  const name = a.labels.alertname ?? 'alert';
  const summary = `[${sev}] ${name}: ${a.annotations?.summary ?? name}`.slice(0, 250);
  const lines = [
    a.annotations?.description ?? '',
    runbookLink(a) ? `Runbook: ${runbookLink(a)}` : '',
    a.generatorURL ? `Source: ${a.generatorURL}` : '',
    `Labels: ${Object.entries(a.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ')}`,
    a.startsAt ? `Since: ${a.startsAt}` : '',
  ].filter((l) => l !== '');
  const out: { summary: string; details: string; dedup: string; action?: 'close' } = {
    summary,
    details: lines.join('\n'),
    dedup: dedupKey(a),
  };
  if (a.status === 'resolved') out.action = 'close';
  return out;
}

const NTFY_PRIORITY: Record<string, string> = {
  critical: 'urgent',
  high: 'high',
  warning: 'high',
  medium: 'default',
  info: 'default',
};

export function toNtfy(a: AmAlert): { headers: Record<string, string>; body: string } {
  const sev = a.labels.severity ?? 'info';
  const resolved = a.status === 'resolved';
  const name = a.labels.alertname ?? 'alert';
  // HTTP header values must be ASCII; keep the title plain.
  const title = `${resolved ? 'RESOLVED' : sev.toUpperCase()}: ${name}`.replace(/[^\x20-\x7e]/g, '?');
  const headers: Record<string, string> = {
    Title: title,
    Priority: resolved ? 'low' : (NTFY_PRIORITY[sev] ?? 'default'),
    Tags: resolved ? 'white_check_mark' : sev === 'critical' ? 'rotating_light' : 'warning',
  };
  const link = runbookLink(a);
  if (link && /^https?:\/\//.test(link)) headers.Click = link;
  const body = [a.annotations?.summary ?? name, a.annotations?.description ?? '', link ? `Runbook: ${link}` : '']
    .filter((l) => l !== '')
    .join('\n');
  return { headers, body };
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > 1_048_576) throw new Error('payload too large');
    chunks.push(c as Buffer);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

function isPayload(v: unknown): v is AmPayload {
  return typeof v === 'object' && v !== null && Array.isArray((v as AmPayload).alerts);
}

function send(res: ServerResponse, status: number, body: Record<string, unknown>): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

export function createHook() {
  return createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://hook');
    if (req.method === 'GET' && url.pathname === '/health') return send(res, 200, { status: 'ok' });
    if (req.method === 'GET' && url.pathname === '/ready') {
      const ready = Boolean(fromEnvOrFile('GOALERT_URL') && fromEnvOrFile('GOALERT_TOKEN'));
      return send(res, ready ? 200 : 503, {
        goalert: ready ? 'configured' : 'GOALERT_URL/GOALERT_TOKEN not set',
        ntfy: fromEnvOrFile('NTFY_URL') ? 'configured' : 'not set',
      });
    }
    if (req.method !== 'POST' || (url.pathname !== '/goalert' && url.pathname !== '/ntfy'))
      return send(res, 404, { error: 'not found' });

    let payload: unknown;
    try {
      payload = await readJson(req);
    } catch (err) {
      return send(res, 400, { error: `bad payload: ${(err as Error).message}` });
    }
    if (!isPayload(payload))
      return send(res, 400, { error: 'bad payload: expected an Alertmanager webhook body with alerts[]' });

    if (url.pathname === '/goalert') {
      const base = fromEnvOrFile('GOALERT_URL');
      const token = fromEnvOrFile('GOALERT_TOKEN');
      if (!base || !token) {
        log('error', 'GOALERT_URL or GOALERT_TOKEN not set: cannot page; Alertmanager will retry', {
          alerts: payload.alerts.length,
        });
        return send(res, 503, { error: 'GoAlert not configured' });
      }
      const target = new URL(base);
      target.searchParams.set('token', token);
      let failed = 0;
      for (const a of payload.alerts) {
        try {
          const r = await fetch(target, {
            method: 'POST',
            headers: { 'content-type': 'application/json', accept: 'application/json' },
            body: JSON.stringify(toGoAlert(a)),
            signal: AbortSignal.timeout(10_000),
          });
          if (!r.ok) {
            failed++;
            log('error', 'GoAlert rejected alert', { status: r.status, alertname: a.labels.alertname });
          }
        } catch (err) {
          failed++;
          log('error', 'GoAlert unreachable', { error: (err as Error).message, alertname: a.labels.alertname });
        }
      }
      log('info', 'forwarded to GoAlert', { alerts: payload.alerts.length, failed });
      return send(res, failed ? 502 : 200, { forwarded: payload.alerts.length - failed, failed });
    }

    const ntfy = fromEnvOrFile('NTFY_URL');
    if (!ntfy) {
      log('error', 'NTFY_URL not set: critical alert not pushed to ntfy; Alertmanager will retry', {
        alerts: payload.alerts.length,
      });
      return send(res, 503, { error: 'ntfy not configured' });
    }
    const ntfyToken = fromEnvOrFile('NTFY_TOKEN');
    let failed = 0;
    for (const a of payload.alerts) {
      const { headers, body } = toNtfy(a);
      if (ntfyToken) headers.Authorization = `Bearer ${ntfyToken}`;
      try {
        const r = await fetch(ntfy, { method: 'POST', headers, body, signal: AbortSignal.timeout(10_000) });
        if (!r.ok) {
          failed++;
          log('error', 'ntfy rejected alert', { status: r.status, alertname: a.labels.alertname });
        }
      } catch (err) {
        failed++;
        log('error', 'ntfy unreachable', { error: (err as Error).message, alertname: a.labels.alertname });
      }
    }
    log('info', 'forwarded to ntfy', { alerts: payload.alerts.length, failed });
    return send(res, failed ? 502 : 200, { forwarded: payload.alerts.length - failed, failed });
  });
}

if (import.meta.main) {
  const port = Number(process.env.PORT ?? 9095);
  const server = createHook();
  server.listen(port, '0.0.0.0', () => {
    const addr = server.address();
    log('info', 'goalert-hook listening', { port: typeof addr === 'object' && addr ? addr.port : port });
  });
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 5000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
