// docs/runbook.md, docs/deployment.md, docs/observability.md: the inherited runbooks' endpoints are all mapped,
// every admin call is a real route that the gateway (kong/kong.yml) sends somewhere, every link resolves.
import { readdirSync } from 'node:fs';
import { readText, readYaml, markdownAnchors, exists, repoPath, SERVICES } from '../src/helpers.ts';

const runbook = readText('docs', 'runbook.md');

// Every endpoint of the two inherited runbooks (shared/seeds: CoinHubX and KrystalineX), as written there.
const SEED_ENDPOINTS = [
  '/api/health',
  '/api/ready',
  '/api/metrics',
  '/api/metrics/prometheus',
  '/api/dashboard',
  '/api/errors',
  '/api/jobs/dead-letter',
  '/api/reconciliation/run',
  '/api/reconciliation/reports?limit=1',
  '/api/backups/create',
  '/api/backups',
  '/api/feature-flags/trading/disable',
  '/api/feature-flags/withdrawals/disable',
  '/health',
  '/ready',
  '/api/health/trading',
  '/metrics',
];

// The admin API of this product (method + path pattern), as the services register it, and the public book the
// runbook reads for a market's trading phase.
const ADMIN_API: [string, RegExp][] = [
  ['GET', /^\/api\/v1\/admin\/feature-flags$/],
  ['POST', /^\/api\/v1\/admin\/feature-flags\/(trading|withdrawals|maintenance|deposits)\/(enable|disable)$/],
  ['POST', /^\/api\/v1\/admin\/markets\/[^/]+\/(halt|resume)$/],
  ['GET', /^\/api\/v1\/admin\/dead-letters\/(wallet|order|payment-processor)$/],
  ['POST', /^\/api\/v1\/admin\/dead-letters\/(wallet|order|payment-processor)\/[^/]+\/retry$/],
  ['POST', /^\/api\/v1\/admin\/reconciliation\/run$/],
  ['GET', /^\/api\/v1\/admin\/reconciliation\/reports(\?limit=\d+)?$/],
  ['GET', /^\/api\/v1\/admin\/reconciliation\/reports\/[^/]+$/],
  ['GET', /^\/api\/v1\/admin\/backups$/],
  ['POST', /^\/api\/v1\/admin\/backups$/],
  ['GET', /^\/api\/v1\/admin\/audit(\?limit=\d+)?$/],
  ['GET', /^\/api\/v1\/admin\/users\?email=[^&]+$/],
  ['POST', /^\/api\/v1\/admin\/users\/[^/]+\/(lock|unlock)$/],
  ['PUT', /^\/api\/v1\/admin\/users\/[^/]+\/roles$/],
  ['GET', /^\/api\/v1\/admin\/wallet\/users\/[^/]+\/balances$/],
  ['GET', /^\/api\/v1\/admin\/wallet\/users\/[^/]+\/ledger(\?limit=\d+)?$/],
  ['POST', /^\/api\/v1\/auth\/login$/],
  ['POST', /^\/api\/v1\/auth\/2fa\/(setup|verify)$/], // a staff account's first login enrols 2FA
  ['GET', /^\/api\/health\/trading$/],
  ['GET', /^\/api\/v1\/admin\/engine\/markets$/],
  ['GET', /^\/api\/v1\/markets\/[^/]+\/book$/],
  ['POST', /^\/api\/v1\/admin\/engine\/markets\/[^/]+\/resume$/],
];

/** `curl … "$API/<path>"` calls in the runbook with their method. */
function gatewayCalls(md: string): { method: string; path: string }[] {
  const calls: { method: string; path: string }[] = [];
  const text = md.replace(/\\\n\s*/g, ' ');
  let loop: string[] = [];
  for (const line of text.split('\n')) {
    const l = /for f in ([a-z/ ]+); do/.exec(line);
    if (l) loop = l[1]!.trim().split(/\s+/);
    if (!/\bcurl\b/.test(line)) continue;
    for (const m of line.matchAll(/"\$API(\/[^"\s]*)"/g)) {
      const method = /-X (GET|POST|PUT|DELETE|PATCH)\b/.exec(line)?.[1] ?? 'GET';
      // the lockdown loops (`for f in …; do curl … "$API/…/$f"`) expand to each listed flag action
      if (m[1]!.includes('$f')) for (const f of loop) calls.push({ method, path: m[1]!.replace('$f', f) });
      else calls.push({ method, path: m[1]! });
    }
  }
  return calls;
}

/** Does a Kong route (plain prefix or `~` regex path) match this request path? */
let kongCache: any;
function kongRoutes(path: string, method: string): string[] {
  const kong = (kongCache ??= readYaml('kong', 'kong.yml'));
  const hits: string[] = [];
  for (const svc of kong.services ?? []) {
    for (const r of svc.routes ?? []) {
      if (r.methods && !r.methods.includes(method)) continue;
      if (r.headers) continue; // api-key routes need a header the runbook never sends
      const bare = path.split('?')[0]!;
      const ok = (r.paths ?? []).some((p: string) =>
        p.startsWith('~') ? new RegExp(`^${p.slice(1).replace(/^\^/, '')}`).test(bare) : bare.startsWith(p),
      );
      // the product service the Kong service reaches (several Kong services may front one, e.g. order-stream)
      if (ok) hits.push(new URL(svc.url).hostname);
    }
  }
  return hits;
}

describe('docs/runbook.md', () => {
  test('maps every endpoint of the inherited runbooks to this product', () => {
    const map = runbook.slice(runbook.indexOf('## Endpoint map'), runbook.indexOf('## Health checks'));
    for (const e of SEED_ENDPOINTS)
      expect({ endpoint: e, mapped: map.includes(`\`${e}\``) }).toEqual({ endpoint: e, mapped: true });
  });

  test('every gateway call in the runbook is a real admin/public route', () => {
    const calls = gatewayCalls(runbook);
    expect(calls.length).toBeGreaterThan(20);
    for (const c of calls) {
      const known = ADMIN_API.some(([m, re]) => m === c.method && re.test(c.path.replace(/<[^>]+>/g, 'x')));
      expect({ ...c, known }).toEqual({ ...c, known: true });
    }
  });

  test('every gateway call is routed by kong/kong.yml to the service that owns it', () => {
    const owner = (p: string): string => {
      if (/^\/api\/v1\/(auth|admin\/(users|audit|backups))/.test(p)) return 'auth';
      if (
        /^\/api\/v1\/admin\/(reconciliation|wallet\/|feature-flags\/(withdrawals|deposits)|dead-letters\/wallet)/.test(
          p,
        )
      )
        return 'wallet';
      if (/^\/api\/v1\/admin\/(dead-letters\/payment-processor|engine\/)/.test(p)) return 'payment-processor';
      return 'order';
    };
    for (const c of gatewayCalls(runbook)) {
      const path = c.path.replace(/<[^>]+>/g, '00000000-0000-0000-0000-000000000000');
      expect({ ...c, routedTo: kongRoutes(path, c.method) }).toEqual({
        ...c,
        routedTo: expect.arrayContaining([owner(c.path)]),
      });
    }
  });

  test('every admin endpoint of the product is in the runbook', () => {
    const calls = gatewayCalls(runbook).map((c) => `${c.method} ${c.path.replace(/<[^>]+>/g, 'x')}`);
    for (const [m, re] of ADMIN_API) {
      expect({
        endpoint: `${m} ${re.source}`,
        used: calls.some((c) => c.startsWith(`${m} `) && re.test(c.slice(m.length + 1))),
      }).toEqual({ endpoint: `${m} ${re.source}`, used: true });
    }
  });

  test('each kill switch can be flipped both ways', () => {
    for (const flag of ['trading', 'withdrawals', 'maintenance', 'deposits']) {
      for (const action of ['enable', 'disable']) {
        const direct = runbook.includes(`/feature-flags/${flag}/${action}`);
        const looped = runbook.includes(`${flag}/${action}`);
        expect({ flag, action, documented: direct || looped }).toEqual({ flag, action, documented: true });
      }
    }
  });

  test('covers compose, Kubernetes and host mode, and says what was not run here', () => {
    for (const s of ['docker compose', 'kubectl -n exchange', 'helm -n exchange', 'pnpm start'])
      expect(runbook).toContain(s);
    expect(runbook).toMatch(/no Docker engine, no Kubernetes cluster and no Helm/);
  });

  test('covers every section of the inherited runbooks', () => {
    const anchors = markdownAnchors(runbook);
    for (const a of [
      'quick-reference',
      'health-checks',
      'common-operations',
      'alerts-and-incidents',
      'kill-switches-and-emergency-procedures',
      'database-operations',
      'backup-and-restore',
      'scaling',
      'deploy-rollback-canary',
      'goalert-and-ntfy',
      'incident-response',
      'kill-switch-disable-trading',
      'kill-switch-disable-withdrawals',
      'full-platform-lockdown',
      'canary-deployment-argo-rollouts',
      'manual-canary-order-service-no-argo-rollouts',
      'watchdog',
      'rollback',
    ]) {
      expect({ a, present: anchors.has(a) }).toEqual({ a, present: true });
    }
  });

  test('the ports it gives are the ones compose publishes', () => {
    const compose = readText('docker-compose.yml');
    for (const p of [
      '127.0.0.1:16686:16686',
      '127.0.0.1:9090:9090',
      '127.0.0.1:15672:15672',
      '127.0.0.1:8081:8081',
      '8000:8000',
    ]) {
      expect(compose).toContain(p);
      expect(runbook).toContain(p.split(':').slice(-3, -1).join(':').replace(/^:/, ''));
    }
    for (const s of SERVICES) expect(runbook).toContain(`:${s.port}`);
  });
});

describe('docs links', () => {
  test.each(['runbook.md', 'deployment.md', 'observability.md'])(
    '%s: every internal link and repository path resolves',
    (f) => {
      const md = readText('docs', f);
      const anchors = markdownAnchors(md);
      for (const m of md.matchAll(/\]\((#[^)]+)\)/g))
        expect({ f, link: m[1], ok: anchors.has(m[1]!.slice(1)) }).toEqual({ f, link: m[1], ok: true });
      for (const m of md.matchAll(/\]\(([a-z-]+\.md)(#[^)]+)?\)/g)) {
        expect({ f, link: m[1], ok: exists('docs', m[1]!) }).toEqual({ f, link: m[1], ok: true });
        if (m[2])
          expect({ f, link: m[0], ok: markdownAnchors(readText('docs', m[1]!)).has(m[2].slice(1)) }).toEqual({
            f,
            link: m[0],
            ok: true,
          });
      }
      for (const m of md.matchAll(
        /`((?:config|k8s|kong|tools|services|docs)\/[A-Za-z0-9_./-]+\.(?:ya?ml|ts|json|md|txt))`/g,
      )) {
        expect({ f, path: m[1], exists: exists(m[1]!) }).toEqual({ f, path: m[1], exists: true });
      }
    },
  );
});

test("every documented helm upgrade keeps the new chart's defaults (--reset-then-reuse-values or values files, never --reuse-values)", () => {
  const texts = [
    ...['runbook.md', 'deployment.md', 'observability.md'].map((f) => [f, readText('docs', f)]),
    ...readdirSync(repoPath('k8s/charts/exchange/templates')).map((f) => [
      f,
      readText('k8s/charts/exchange/templates', f),
    ]),
  ];
  let upgrades = 0;
  for (const [f, text] of texts) {
    expect({ f, reuse: /helm [^\n]*--reuse-values/.test(text!) }).toEqual({ f, reuse: false });
    for (const m of text!.matchAll(/helm (?:-n \S+ )?upgrade [^\n]*/g)) {
      upgrades++;
      expect({ f, cmd: m[0], ok: /--reset-then-reuse-values|\s-f\s|--values/.test(m[0]) }).toEqual({
        f,
        cmd: m[0],
        ok: true,
      });
    }
  }
  expect(upgrades).toBeGreaterThan(3);
});
