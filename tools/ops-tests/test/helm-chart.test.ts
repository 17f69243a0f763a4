// The Helm chart k8s/charts/exchange, statically: values.yaml and every ci/*-values.yaml validated against
// values.schema.json with Ajv (as Helm does), and the template sources checked (balanced blocks, every .Values path
// exists, locked-down pods, probes, NetworkPolicies, NOTES.txt guards). Real Helm lints and renders the chart in
// helm-tools.test.ts; the rendered manifests are checked in helm-template.test.ts.
import { readdirSync } from 'node:fs';
import { parseDocument, isMap } from 'yaml';
import type { Node } from 'yaml';
import { readText, readYaml, SERVICES } from '../src/helpers.ts';
import { jsonSchemaValidator } from '../src/schemas.ts';

const chart = 'k8s/charts/exchange';
const values = readYaml(chart, 'values.yaml');
const schema = JSON.parse(readText(chart, 'values.schema.json'));
const tpl = (f: string) => readText(chart, 'templates', f);
const templates = readdirSync(`${process.cwd()}/${chart}/templates`).filter((f) => /\.(ya?ml|tpl|txt)$/.test(f));

function merge(base: any, over: any): any {
  if (over === null) return undefined;
  if (
    typeof base !== 'object' ||
    base === null ||
    Array.isArray(base) ||
    typeof over !== 'object' ||
    Array.isArray(over)
  )
    return over;
  const out: any = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const m = merge(base[k], v);
    if (m === undefined) delete out[k];
    else out[k] = m;
  }
  return out;
}

describe('Chart.yaml', () => {
  test('is a v2 application chart named exchange', () => {
    const c = readYaml(chart, 'Chart.yaml');
    expect(c).toMatchObject({ apiVersion: 'v2', name: 'exchange', type: 'application' });
    expect(c.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(c.appVersion).toBeTruthy();
  });
});

describe('values.yaml and values.schema.json', () => {
  const validate = jsonSchemaValidator(schema);

  test('values.yaml is valid against the schema', () => {
    const ok = validate(values);
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  const ciFiles = readdirSync(`${process.cwd()}/${chart}/ci`).filter((f) => f.endsWith('-values.yaml'));
  test('there are ci/*-values.yaml profiles', () => expect(ciFiles.length).toBeGreaterThanOrEqual(3));
  test.each(ciFiles)('ci/%s merged over values.yaml is valid', (f) => {
    const merged = merge(values, readYaml(chart, 'ci', f));
    const ok = validate(merged);
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  test.each([
    ['an unknown key (typo)', { services: { order: { replica: 3 } } }],
    ['a wrong profile', { profile: 'prod' }],
    ['a changed service port (kong.yml and the URLs depend on it)', { services: { wallet: { port: 4000 } } }],
    [
      'a literal secret in extraEnv',
      { services: { auth: { extraEnv: [{ name: 'ADMIN_PASSWORD', value: 'hunter2' }] } } },
    ],
    ['a secret value instead of a Secret name', { secrets: { database: 'postgres://u:p@db/exchange' } }],
    ['a bad cron schedule', { backup: { schedule: 'daily' } }],
    ['a restore file with a path', { restore: { file: '../etc/passwd' } }],
  ])('rejects %s', (_what, over) => {
    expect(validate(merge(values, over))).toBe(false);
  });

  test('accepts secrets from secretKeyRef in extraEnv', () => {
    const over = {
      services: {
        auth: { extraEnv: [{ name: 'SMTP_PASSWORD', valueFrom: { secretKeyRef: { name: 'smtp', key: 'password' } } }] },
      },
    };
    expect(validate(merge(values, over))).toBe(true);
  });

  test('every value in values.yaml has a comment', () => {
    const doc = parseDocument(readText(chart, 'values.yaml'));
    const missing: string[] = [];
    const walk = (node: unknown, path: string[]) => {
      if (!isMap(node)) return;
      node.items.forEach((pair, i) => {
        const key = String((pair.key as any)?.value ?? pair.key);
        let c =
          (pair.key as Node | null)?.commentBefore ||
          (pair.value as Node | null)?.comment ||
          (pair.key as Node | null)?.comment;
        if (!c && i === 0) c = node.commentBefore || (path.length === 0 ? doc.commentBefore : undefined);
        if (!c) missing.push([...path, key].join('.'));
        walk(pair.value, [...path, key]);
      });
    };
    walk(doc.contents, []);
    expect(missing).toEqual([]);
  });

  test('defaults: production profile, 2 payment-processor replicas, backup on, restore off, secrets by name only', () => {
    expect(values.profile).toBe('production');
    expect(values.services['payment-processor'].replicas).toBeGreaterThanOrEqual(2);
    expect(values.backup.enabled).toBe(true);
    expect(values.restore.enabled).toBe(false);
    for (const [k, v] of Object.entries<any>(values.secrets)) {
      if (k === 'verify') continue;
      for (const name of typeof v === 'object' ? Object.values<string>(v) : [v]) expect(name).toMatch(/^[a-z0-9-]*$/);
    }
    // each service its own database role by default
    expect(Object.keys(values.secrets.serviceDatabases)).toEqual([
      'auth',
      'wallet',
      'order',
      'payment-processor',
      'notification',
    ]);
    expect(new Set(Object.values(values.secrets.serviceDatabases)).size).toBe(5);
  });
});

describe('templates (structure; Helm itself is not available here)', () => {
  test.each(templates)('%s: balanced {{ if/range/with/define }} ... {{ end }}', (f) => {
    const text = tpl(f).replace(/\{\{-?\s*\/\*[\s\S]*?\*\/\s*-?\}\}/g, '');
    let depth = 0;
    for (const m of text.matchAll(/\{\{-?\s*([a-z]+)/g)) {
      const word = m[1]!;
      if (['if', 'range', 'with', 'define', 'block'].includes(word)) depth++;
      else if (word === 'end') depth--;
      expect(depth).toBeGreaterThanOrEqual(0);
    }
    expect(depth).toBe(0);
    // every action is closed
    expect((text.match(/\{\{/g) ?? []).length).toBe((text.match(/\}\}/g) ?? []).length);
  });

  test('every .Values path used by a template exists in values.yaml', () => {
    const missing: string[] = [];
    for (const f of templates) {
      for (const m of tpl(f).matchAll(/\.Values((?:\.[A-Za-z0-9_]+)+)/g)) {
        let node: any = values;
        for (const part of m[1]!.slice(1).split('.')) {
          if (node === undefined || node === null || !(part in node)) {
            missing.push(`${f}: .Values${m[1]}`);
            break;
          }
          node = node[part];
        }
      }
    }
    expect(missing).toEqual([]);
  });

  test('the shared security contexts are locked down', () => {
    const helpers = tpl('_helpers.tpl');
    const pod = /define "exchange.podSecurityContext"[\s\S]*?end -\}\}/.exec(helpers)![0];
    expect(pod).toMatch(/runAsNonRoot: true/);
    expect(pod).toMatch(/seccompProfile:\s*\n\s*type: RuntimeDefault/);
    const ctr = /define "exchange.containerSecurityContext"[\s\S]*?end -\}\}/.exec(helpers)![0];
    expect(ctr).toMatch(/allowPrivilegeEscalation: false/);
    expect(ctr).toMatch(/readOnlyRootFilesystem: true/);
    expect(ctr).toMatch(/capabilities:\s*\n\s*drop:\s*\n\s*- ALL/);
  });

  test.each([
    'deployment.yaml',
    'api-docs.yaml',
    'web.yaml',
    'gateway.yaml',
    'migration-job.yaml',
    'backup-cronjob.yaml',
    'restore-job.yaml',
  ])('%s: every pod is locked down (no SA token, pod + container security contexts, resources, /tmp emptyDir)', (f) => {
    const t = tpl(f);
    expect(t).toMatch(/automountServiceAccountToken: false/);
    expect(t).toMatch(/include "exchange.podSecurityContext"/);
    const images = (t.match(/^\s+image: /gm) ?? []).length;
    expect(images).toBeGreaterThan(0);
    expect((t.match(/include "exchange.containerSecurityContext"/g) ?? []).length).toBe(images);
    expect((t.match(/^\s+resources:\s*$/gm) ?? []).length).toBe(images);
    expect(t).toMatch(/mountPath: \/tmp/);
  });

  test('service Deployments: startup + liveness probes on /health, readiness on /ready, non-root image entrypoint', () => {
    const t = tpl('deployment.yaml');
    expect(t).toMatch(/startupProbe:\s*\n\s*httpGet:\s*\n\s*path: \/health/);
    expect(t).toMatch(/livenessProbe:\s*\n\s*httpGet:\s*\n\s*path: \/health/);
    expect(t).toMatch(/readinessProbe:\s*\n\s*httpGet:\s*\n\s*path: \/ready/);
    expect(t).toMatch(/range \$name, \$svc := \.Values\.services/);
    expect(t).toMatch(/kind: Deployment[\s\S]*kind: Service\b/);
    // every secret comes from a Secret
    expect(t).not.toMatch(/value: .*(password|PASSWORD)/);
    // each service's DATABASE_URL from its own role's Secret (exchange.databaseEnv)
    expect(tpl('_helpers.tpl')).toMatch(
      /name: \{\{ \.var \| default "DATABASE_URL" \}\}\s*\n\s*valueFrom:\s*\n\s*secretKeyRef:/,
    );
    expect(t).toMatch(/include "exchange.databaseEnv" \(dict "root" \$ "name" \$name\)/);
  });

  test('restore mode scales every service to 0 and disables HPAs and the migration hook', () => {
    expect(tpl('deployment.yaml')).toMatch(/if \$\.Values\.restore\.enabled \}\}\s*\n\s*replicas: 0/);
    expect(tpl('hpa.yaml')).toMatch(/if not \.Values\.restore\.enabled/);
    expect(tpl('migration-job.yaml')).toMatch(/not \.Values\.restore\.enabled/);
  });

  test('migrations run as a pre-install/pre-upgrade hook, one step per service', () => {
    const t = tpl('migration-job.yaml');
    expect(t).toMatch(/helm\.sh\/hook: pre-install,pre-upgrade/);
    expect(t).toMatch(/list "auth" "wallet" "order"/);
    expect(t).toMatch(/args: \["migrate", "payment-processor"\]/);
  });

  test('backup CronJob: files/backup.sh (encrypted pg_dump, verified, renamed when complete, retention) on the claim', () => {
    const t = tpl('backup-cronjob.yaml');
    expect(t).toMatch(/kind: CronJob/);
    expect(t).toMatch(/\.Files\.Get "files\/backup\.sh"/);
    const script = readText(chart, 'files', 'backup.sh');
    expect(script).toMatch(/pg_dump --format=custom[^\n]*\| tee "\$work\/check" \| age -R/);
    expect(script).toMatch(/pg_restore --file=\/dev\/null < "\$work\/check"/);
    expect(script).toMatch(/-mtime "\+\$\{retention\}"/);
    expect(t).toMatch(/claimName: \{\{ include "exchange.backupClaim"/);
    expect(tpl('backup-pvc.yaml')).toMatch(/helm\.sh\/resource-policy: keep/);
  });

  test('restore Job is disabled by default and runs files/restore.sh (one transaction)', () => {
    const t = tpl('restore-job.yaml');
    expect(t).toMatch(/^\{\{- if \.Values\.restore\.enabled \}\}/m);
    expect(t).toMatch(/command: \["bash", "\/scripts\/restore\.sh"\]/);
    expect(readText(chart, 'files', 'restore.sh')).toMatch(/psql "\$DATABASE_URL" -q --single-transaction/);
  });

  test('NetworkPolicies: default deny for the release, one per service, the gateway and each job', () => {
    const t = tpl('networkpolicy.yaml');
    expect(t).toMatch(/name: \{\{ \.Release\.Name \}\}-default-deny[\s\S]*?policyTypes: \[Ingress, Egress\]/);
    expect(t).toMatch(
      /range \$name, \$svc := \.Values\.services[\s\S]*?kind: NetworkPolicy\s*\n\s*metadata:\s*\n\s*name: \{\{ \$name \}\}/,
    );
    expect(t).toMatch(/name: kong\n/);
    expect(t).toMatch(/range \$job := list "migrations" "backup" "restore"/);
    const policies = t.split(/^---$/m).filter((d) => d.includes('kind: NetworkPolicy'));
    // default-deny, per-service (ranged), kong, per-job (ranged), maildev (development only)
    expect(policies.length).toBe(5);
    for (const p of policies) expect(p).toMatch(/policyTypes: \[Ingress, Egress\]/);
    // the order -> wallet hold call and the JWKS fetches are the only service-to-service paths
    expect(t).toMatch(/if eq \$name "wallet"[\s\S]*?"name" "order"/);
    expect(t).toMatch(/list "wallet" "order" "payment-processor"/);
  });

  test('PodDisruptionBudget per service and the gateway', () => {
    const t = tpl('pdb.yaml');
    expect(t).toMatch(/range \$name, \$svc := \.Values\.services[\s\S]*kind: PodDisruptionBudget/);
    expect(t).toMatch(/name: kong/);
  });

  test('NOTES.txt fails on the bad combinations', () => {
    const t = tpl('NOTES.txt');
    expect(t).toMatch(
      /eq \.Values\.profile "production"\) \$pp\.enabled \(lt \(int \$pp\.replicas\) 2\)[^\n]*not \$pp\.allowSingleReplica[^\n]*\n\{\{- fail/,
    );
    expect(t).toMatch(/if and \.Values\.restore\.enabled \.Values\.backup\.enabled \}\}\n\{\{- fail/);
    expect(t).toMatch(/if and \.Values\.restore\.enabled \(not \.Values\.restore\.file\) \}\}\n\{\{- fail/);
    expect(t).toMatch(/if not \$secretName \}\}\n\{\{- fail/);
    expect(t).toMatch(/lookup "v1" "Secret" \$\.Release\.Namespace \$secretName[\s\S]*?fail/);
    expect(t).toMatch(/lookup "v1" "ConfigMap" \.Release\.Namespace "kube-root-ca\.crt"/);
    expect(t).toMatch(/lookup "v1" "ConfigMap" \.Release\.Namespace \.Values\.gateway\.configMap[\s\S]*?fail/);
    expect(t).toMatch(/eq \(include "exchange.tag" \.\) "latest"/);
  });

  test('PrometheusRule ships the same rules as config/rules (files/ copies are identical)', () => {
    expect(readText(chart, 'files', 'alert-rules.yml')).toBe(readText('config', 'rules', 'alert-rules.yml'));
    expect(readText(chart, 'files', 'recording-rules.yml')).toBe(readText('config', 'rules', 'recording-rules.yml'));
    expect(tpl('prometheusrule.yaml')).toMatch(/\.Files\.Get "files\/alert-rules.yml"/);
    // the alerts select tier="app" targets: the ServiceMonitor sets that label
    expect(tpl('servicemonitor.yaml')).toMatch(/targetLabel: tier\s*\n\s*replacement: app/);
  });
});

describe('chart and kong/kong.yml agree', () => {
  test('every Kong upstream is a chart Service with the same port (Services are named after the services)', () => {
    const kong = readYaml('kong', 'kong.yml');
    const hosts = new Set<string>();
    for (const s of kong.services ?? []) {
      const u = new URL(s.url ?? `http://${s.host}:${s.port}`);
      hosts.add(`${u.hostname}:${u.port}`);
    }
    expect(hosts.size).toBeGreaterThan(0);
    const chartServices = new Set(Object.entries<any>(values.services).map(([n, s]) => `${n}:${s.port}`));
    if (values.apiDocs.enabled) chartServices.add('api-docs:8080');
    if (values.web.enabled) chartServices.add('web:8080');
    expect(tpl('web.yaml')).toMatch(/kind: Service\s*\nmetadata:\s*\n\s*name: web/);
    expect(tpl('api-docs.yaml')).toMatch(/kind: Service\s*\nmetadata:\s*\n\s*name: api-docs/);
    for (const h of hosts)
      expect({ upstream: h, inChart: chartServices.has(h) }).toEqual({ upstream: h, inChart: true });
    for (const s of SERVICES) expect(values.services[s.name].port).toBe(s.port);
  });
});
