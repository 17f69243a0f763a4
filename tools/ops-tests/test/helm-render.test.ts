// The chart rendered (with tools/ops-tests/src/helm-render.ts, an emulation of `helm template` for the subset of Go
// templates and Sprig the chart uses; Helm itself is not installable here) for the default values and every
// ci/*-values.yaml profile, and the rendered manifests checked object by object.
import { readdirSync } from 'node:fs';
import { parse } from 'yaml';
import { Chart, HelmFail } from '../src/helm-render.ts';
import { readText, readYaml, repoPath, SERVICES } from '../src/helpers.ts';

const chartDir = repoPath('k8s/charts/exchange');
const chart = new Chart(chartDir);
const profiles: [string, Record<string, unknown>][] = [
  ['defaults', {}],
  ...readdirSync(`${chartDir}/ci`)
    .filter((f) => f.endsWith('-values.yaml'))
    .map((f) => [f, readYaml('k8s/charts/exchange/ci', f)] as [string, Record<string, unknown>]),
];

type Obj = { file: string; obj: any };
const byKind = (objs: Obj[], kind: string) => objs.filter((o) => o.obj.kind === kind).map((o) => o.obj);
const podSpecs = (objs: Obj[]) =>
  objs.flatMap(({ obj }) => {
    if (obj.kind === 'Deployment' || obj.kind === 'Job')
      return [{ name: `${obj.kind}/${obj.metadata.name}`, tpl: obj.spec.template }];
    if (obj.kind === 'CronJob')
      return [{ name: `CronJob/${obj.metadata.name}`, tpl: obj.spec.jobTemplate.spec.template }];
    return [];
  });
const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels?.[k] === v);

describe.each(profiles)('rendered chart: %s', (_name, values) => {
  const objs = chart.manifests(values);
  const merged = (k: string) => (values as any)[k];

  test('renders valid YAML objects with unique names per kind, NOTES.txt without failing', () => {
    expect(objs.length).toBeGreaterThan(10);
    const keys = objs.map(({ obj }) => `${obj.kind}/${obj.metadata.name}`);
    expect(keys.length).toBe(new Set(keys).size);
    expect(chart.render(values).get('NOTES.txt')).toMatch(/exchange|RESTORE MODE/);
  });

  test('every pod is locked down: non-root, RuntimeDefault seccomp, no SA token, read-only root, ALL capabilities dropped, resources', () => {
    const pods = podSpecs(objs);
    expect(pods.length).toBeGreaterThan(3);
    for (const { name, tpl } of pods) {
      const spec = tpl.spec;
      expect({ name, token: spec.automountServiceAccountToken }).toEqual({ name, token: false });
      expect({ name, sc: spec.securityContext }).toMatchObject({
        name,
        sc: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
      });
      for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
        expect({ name, c: c.name, sc: c.securityContext }).toEqual({
          name,
          c: c.name,
          sc: {
            allowPrivilegeEscalation: false,
            privileged: false,
            readOnlyRootFilesystem: true,
            runAsNonRoot: true,
            capabilities: { drop: ['ALL'] },
          },
        });
        expect({
          name,
          c: c.name,
          requests: Boolean(c.resources?.requests?.cpu && c.resources?.requests?.memory),
          limits: Boolean(c.resources?.limits?.memory),
        }).toEqual({
          name,
          c: c.name,
          requests: true,
          limits: true,
        });
        expect(c.volumeMounts.some((m: any) => m.mountPath === '/tmp')).toBe(true);
      }
    }
  });

  test('service Deployments: probes on /health and /ready, a Service selecting them, a PDB, a NetworkPolicy', () => {
    const deployments = byKind(objs, 'Deployment');
    const services = byKind(objs, 'Service');
    const pdbs = byKind(objs, 'PodDisruptionBudget');
    const policies = byKind(objs, 'NetworkPolicy');
    for (const s of SERVICES) {
      const d = deployments.find((x) => x.metadata.name === s.name);
      expect(d).toBeDefined();
      const labels = d.spec.template.metadata.labels;
      expect(matches(d.spec.selector.matchLabels, labels)).toBe(true);
      const c = d.spec.template.spec.containers[0];
      expect(c.startupProbe.httpGet.path).toBe('/health');
      expect(c.livenessProbe.httpGet.path).toBe('/health');
      expect(c.readinessProbe.httpGet.path).toBe('/ready');
      expect(c.ports[0].containerPort).toBe(s.port);
      const svc = services.find((x) => x.metadata.name === s.name);
      expect(svc.spec.ports[0].port).toBe(s.port);
      expect(matches(svc.spec.selector, labels)).toBe(true);
      expect(pdbs.some((p) => p.metadata.name === s.name && matches(p.spec.selector.matchLabels, labels))).toBe(true);
      const own = policies.filter((p) => p.metadata.name === s.name);
      if (merged('networkPolicy')?.enabled === false) expect(own).toEqual([]);
      else {
        expect(own).toHaveLength(1);
        expect(matches(own[0].spec.podSelector.matchLabels, labels)).toBe(true);
        expect(own[0].spec.policyTypes).toEqual(['Ingress', 'Egress']);
      }
    }
  });
});

describe('rendered NetworkPolicies (defaults)', () => {
  const policies = byKind(chart.manifests(), 'NetworkPolicy');
  const byName = Object.fromEntries(policies.map((p) => [p.metadata.name, p]));
  const ingressFrom = (name: string) =>
    byName[name].spec.ingress.flatMap((r: any) =>
      r.from.map((f: any) => f.podSelector?.matchLabels?.['app.kubernetes.io/name']).filter(Boolean),
    );

  test('default deny for every pod of the release (DNS only)', () => {
    const deny = byName['exchange-default-deny'];
    expect(deny.spec.podSelector.matchLabels).toEqual({ 'app.kubernetes.io/instance': 'exchange' });
    expect(deny.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(deny.spec.ingress).toBeUndefined();
    expect(deny.spec.egress).toEqual([
      {
        ports: [
          { port: 53, protocol: 'UDP' },
          { port: 53, protocol: 'TCP' },
        ],
      },
    ]);
  });

  test('only the callers a service needs may reach it', () => {
    // prometheus: the metricsFrom pod selector (in its own namespace)
    expect(ingressFrom('auth').sort()).toEqual(['kong', 'order', 'payment-processor', 'prometheus', 'wallet']);
    expect(ingressFrom('wallet').sort()).toEqual(['kong', 'order', 'prometheus']);
    expect(ingressFrom('order').sort()).toEqual(['kong', 'prometheus', 'wallet']);
    expect(ingressFrom('payment-processor').sort()).toEqual(['kong', 'prometheus']);
    expect(ingressFrom('api-docs')).toEqual(['kong']);
    expect(ingressFrom('web')).toEqual(['kong']);
  });

  test('egress to other services: JWKS for all, wallet <-> order for holds and reconciliation', () => {
    const peers = (name: string) =>
      byName[name].spec.egress
        .flatMap((r: any) => r.to.map((t: any) => t.podSelector?.matchLabels?.['app.kubernetes.io/name']))
        .filter(Boolean)
        .sort();
    expect(peers('wallet')).toEqual(['auth', 'order']);
    expect(peers('order')).toEqual(['auth', 'wallet']);
    expect(peers('payment-processor')).toEqual(['auth']);
    expect(peers('auth')).toEqual([]);
  });

  test('egress: data-store ports only, management API only for order and payment-processor', () => {
    const ports = (name: string) =>
      byName[name].spec.egress.flatMap((r: any) =>
        r.to.some((t: any) => t.ipBlock) ? r.ports.map((p: any) => p.port) : [],
      );
    expect(ports('auth').sort()).toEqual([4318, 5432, 5672]);
    expect(ports('wallet').sort()).toEqual([4318, 5432, 5672]);
    expect(ports('order').sort()).toEqual([15672, 4318, 5432, 5672]);
    expect(ports('exchange-migrations')).toEqual([5432]);
    expect(ports('exchange-backup')).toEqual([5432]);
  });
});

describe("rendered environment matches each service's own configuration schema", () => {
  const deployments = byKind(chart.manifests(), 'Deployment');
  test.each(SERVICES.map((s) => s.name))('%s', async (name) => {
    const mod = await import(`../../../services/${name}/src/config.ts`);
    const schema = Object.values(mod).find(
      (v: any) => v && typeof v === 'object' && v.type === 'object' && v.properties,
    ) as any;
    const env: any[] = deployments.find((d) => d.metadata.name === name).spec.template.spec.containers[0].env;
    const names = env.map((e) => e.name);
    expect(names.length).toBe(new Set(names).size);
    const required = (schema.required as string[]).filter((k) => !('default' in schema.properties[k]));
    for (const k of required)
      expect({ name, variable: k, set: names.includes(k) }).toEqual({ name, variable: k, set: true });
    expect(names.filter((k) => !(k in schema.properties) && !['SERVICE', 'OTEL_SERVICE_NAME'].includes(k))).toEqual([]);
    // URLs the services would otherwise default to localhost for are set explicitly
    for (const k of [
      'WALLET_URL',
      'ORDER_URL',
      'RABBITMQ_MANAGEMENT_URL',
      'AUTH_JWKS_URL',
      'AMQP_URL',
      'DATABASE_URL',
    ]) {
      if (k in schema.properties && 'default' in schema.properties[k])
        expect({ name, k, set: names.includes(k) }).toEqual({ name, k, set: true });
    }
    // secrets only through secretKeyRef
    for (const e of env) {
      if (
        /(URL|TOKEN|KEY|PASSWORD)$/.test(e.name) &&
        !['AUTH_JWKS_URL', 'WALLET_URL', 'ORDER_URL', 'OTEL_EXPORTER_OTLP_ENDPOINT'].includes(e.name)
      ) {
        expect({ name, variable: e.name, fromSecret: Boolean(e.valueFrom?.secretKeyRef) }).toEqual({
          name,
          variable: e.name,
          fromSecret: true,
        });
      }
    }
    expect(env.find((e) => e.name === 'SERVICE').value).toBe(name);
  });
});

describe('NOTES.txt guards (rendered)', () => {
  const fails = (values: Record<string, unknown>, opts = {}) => {
    try {
      chart.render(values, opts);
      return null;
    } catch (e) {
      if (e instanceof HelmFail) return e.message;
      throw e;
    }
  };

  test.each([
    [
      'one payment-processor replica in production',
      { services: { 'payment-processor': { replicas: 1 } } },
      /payment-processor.replicas must be >= 2/,
    ],
    [
      'restore together with backup',
      { restore: { enabled: true, file: 'exchange-20260201T020000000Z.dump' } },
      /restore.enabled and backup.enabled are both true/,
    ],
    [
      'restore without a file',
      { backup: { enabled: false }, restore: { enabled: true } },
      /restore.enabled needs restore.file/,
    ],
    ['an empty Secret name', { secrets: { authKeys: '' } }, /secrets.authKeys is empty/],
    ['image tag latest in production', { image: { tag: 'latest' } }, /"latest" is not reproducible/],
    [
      'a shared RWO backup claim with 2 auth replicas',
      { backup: { persistence: { shareWithAuth: true } } },
      /needs backup.persistence.accessMode=ReadWriteMany/,
    ],
    [
      'paging without its Secret',
      { monitoring: { alerting: { enabled: true, secret: '' } } },
      /monitoring.alerting.enabled needs monitoring.alerting.secret/,
    ],
  ])('refuses %s', (_what, values, message) => {
    expect(fails(values)).toMatch(message);
  });

  test.each([
    ['one replica acknowledged', { services: { 'payment-processor': { replicas: 1, allowSingleReplica: true } } }],
    [
      'one replica in the development profile',
      { profile: 'development', services: { 'payment-processor': { replicas: 1 } } },
    ],
    ['latest pinned by digest', { image: { tag: 'latest', digest: `sha256:${'a'.repeat(64)}` } }],
  ])('accepts %s', (_what, values) => {
    expect(fails(values)).toBeNull();
  });

  const key = (kind: string, name: string) => `v1/${kind}/exchange/${name}`;
  const cluster = (missing: string[] = []) =>
    new Map<string, unknown>(
      [
        key('ConfigMap', 'kube-root-ca.crt'),
        key('ConfigMap', 'kong-declarative'),
        ...['exchange-database', 'exchange-amqp', 'exchange-internal', 'exchange-auth-keys'].map((n) =>
          key('Secret', n),
        ),
      ]
        .filter((k) => !missing.some((m) => k.endsWith(`/${m}`)))
        .map((k) => [k, { metadata: { name: k.split('/').pop() } }]),
    );

  test('connected to a cluster: installs when every Secret and the Kong ConfigMap exist', () => {
    expect(fails({}, { cluster: cluster() })).toBeNull();
  });
  test('connected to a cluster: refuses a missing Secret, names it', () => {
    expect(fails({}, { cluster: cluster(['exchange-amqp']) })).toMatch(
      /Secret "exchange-amqp" \(secrets.amqp\) does not exist in namespace exchange/,
    );
  });
  test('connected to a cluster: refuses a missing Kong ConfigMap', () => {
    expect(fails({}, { cluster: cluster(['kong-declarative']) })).toMatch(
      /ConfigMap "kong-declarative" with kong.yml does not exist/,
    );
  });
  test('connected to a cluster: refuses paging whose Secret does not exist', () => {
    expect(fails({ monitoring: { alerting: { enabled: true } } }, { cluster: cluster() })).toMatch(
      /Secret "exchange-alerting" \(monitoring.alerting.secret\) does not exist/,
    );
  });
  test('secrets.verify=false skips the existence checks', () => {
    expect(fails({ secrets: { verify: false } }, { cluster: cluster(['exchange-amqp']) })).toBeNull();
  });
});

describe('rendered modes', () => {
  test('restore mode: services at 0 replicas, no HPA, no migration hook, no backup CronJob, one restore Job with a DNS-safe name', () => {
    const objs = chart.manifests(readYaml('k8s/charts/exchange/ci', 'restore-values.yaml'));
    for (const s of SERVICES)
      expect(byKind(objs, 'Deployment').find((d) => d.metadata.name === s.name).spec.replicas).toBe(0);
    expect(byKind(objs, 'HorizontalPodAutoscaler')).toEqual([]);
    expect(byKind(objs, 'CronJob')).toEqual([]);
    const jobs = byKind(objs, 'Job');
    expect(jobs.map((j) => j.metadata.name)).toEqual(['exchange-restore-exchange-20260201t020000000z']);
    const script = jobs[0].spec.template.spec.containers[0].args[0];
    expect(script).toContain('pg_restore --clean --if-exists --no-owner --single-transaction');
    expect(jobs[0].spec.template.spec.containers[0].env.find((e: any) => e.name === 'DUMP').value).toBe(
      '/backups/exchange-20260201T020000000Z.dump',
    );
    expect(chart.render(readYaml('k8s/charts/exchange/ci', 'restore-values.yaml')).get('NOTES.txt')).toContain(
      'RESTORE MODE',
    );
    expect(
      byKind(
        chart.manifests({ backup: { enabled: false }, restore: { enabled: true, file: 'Weird_Name.v2.dump' } }),
        'Job',
      )[0].metadata.name,
    ).toBe('exchange-restore-weird-name-v2');
  });

  test('normal mode: migration hook runs auth, wallet, order, then payment-processor; backup CronJob keeps retention', () => {
    const objs = chart.manifests();
    const job = byKind(objs, 'Job').find((j) => j.metadata.name === 'exchange-migrate');
    expect(job.metadata.annotations['helm.sh/hook']).toBe('pre-install,pre-upgrade');
    expect(job.spec.template.spec.initContainers.map((c: any) => c.args)).toEqual([
      ['migrate', 'auth'],
      ['migrate', 'wallet'],
      ['migrate', 'order'],
    ]);
    expect(job.spec.template.spec.containers.map((c: any) => c.args)).toEqual([['migrate', 'payment-processor']]);
    const cron = byKind(objs, 'CronJob')[0];
    expect(cron.spec.schedule).toBe('0 2 * * *');
    const c = cron.spec.jobTemplate.spec.template.spec.containers[0];
    expect(c.env.find((e: any) => e.name === 'RETENTION_DAYS').value).toBe('14');
    expect(c.args[0]).toMatch(/exchange-\$\(date -u \+%Y%m%dT%H%M%S\)000Z\.dump/);
    expect(byKind(objs, 'PersistentVolumeClaim')[0].metadata.annotations['helm.sh/resource-policy']).toBe('keep');
    for (const s of SERVICES)
      expect(byKind(objs, 'Deployment').find((d) => d.metadata.name === s.name).spec.replicas).toBe(2);
  });

  test('monitoring profile: PrometheusRule carries exactly config/rules; ServiceMonitor labels tier/app/track', () => {
    const objs = chart.manifests(readYaml('k8s/charts/exchange/ci', 'monitoring-values.yaml'));
    const rule = byKind(objs, 'PrometheusRule')[0];
    const expected = [
      ...parse(readText('config/rules/recording-rules.yml')).groups,
      ...parse(readText('config/rules/alert-rules.yml')).groups,
    ];
    expect(rule.spec.groups).toEqual(expected);
    const sm = byKind(objs, 'ServiceMonitor')[0];
    expect(sm.spec.endpoints[0].relabelings.map((r: any) => r.targetLabel)).toEqual(['tier', 'app', 'job', 'track']);
    // shared backup claim mounted into auth
    const auth = byKind(objs, 'Deployment').find((d) => d.metadata.name === 'auth');
    expect(auth.spec.template.spec.volumes.find((v: any) => v.name === 'backups').persistentVolumeClaim.claimName).toBe(
      'exchange-backups',
    );
  });

  test('monitoring profile: paging like compose (goalert-hook from config/, AlertmanagerConfig mirroring config/alertmanager.yml)', () => {
    const objs = chart.manifests(readYaml('k8s/charts/exchange/ci', 'monitoring-values.yaml'));
    const cm = byKind(objs, 'ConfigMap').find((c) => c.metadata.name === 'goalert-hook');
    expect(cm.data['hook.ts']).toBe(readText('config/goalert-hook/hook.ts'));
    const d = byKind(objs, 'Deployment').find((x) => x.metadata.name === 'goalert-hook');
    const env = Object.fromEntries(d.spec.template.spec.containers[0].env.map((e: any) => [e.name, e]));
    expect(env.GOALERT_TOKEN.valueFrom.secretKeyRef).toEqual({ name: 'exchange-alerting', key: 'GOALERT_TOKEN' });
    expect(env.GOALERT_URL.value).toMatch(/\/api\/v2\/generic\/incoming$/);
    const amc = byKind(objs, 'AlertmanagerConfig')[0];
    const compose = parse(readText('config/alertmanager.yml'));
    // same receivers, same hook paths, same routing and grouping
    const paths = (receivers: any[], key: string) =>
      Object.fromEntries(receivers.map((r) => [r.name, r[key].map((w: any) => new URL(w.url).pathname)]));
    expect(paths(amc.spec.receivers, 'webhookConfigs')).toEqual(paths(compose.receivers, 'webhook_configs'));
    expect(amc.spec.route.receiver).toBe(compose.route.receiver);
    expect(amc.spec.route.groupBy).toEqual(compose.route.group_by);
    expect(amc.spec.route.repeatInterval).toBe(compose.route.repeat_interval);
    expect(amc.spec.route.routes[0]).toMatchObject({
      receiver: compose.route.routes[0].receiver,
      matchers: [{ name: 'severity', value: 'critical', matchType: '=' }],
    });
    for (const r of amc.spec.receivers)
      for (const w of r.webhookConfigs) expect(new URL(w.url).host).toBe('goalert-hook.exchange.svc:9095');
    expect(amc.spec.inhibitRules).toHaveLength(compose.inhibit_rules.length);
    expect(byKind(objs, 'Service').find((x) => x.metadata.name === 'goalert-hook').spec.ports[0].port).toBe(9095);
  });

  test('production profile: HPA replaces the order replica count; ingress with TLS to Kong', () => {
    const objs = chart.manifests(readYaml('k8s/charts/exchange/ci', 'production-values.yaml'));
    expect(byKind(objs, 'HorizontalPodAutoscaler').map((h) => h.metadata.name)).toEqual(['order']);
    expect(byKind(objs, 'Deployment').find((d) => d.metadata.name === 'order').spec.replicas).toBeUndefined();
    const ing = byKind(objs, 'Ingress')[0];
    expect(ing.spec.tls[0].secretName).toBe('exchange-api-tls');
    expect(ing.spec.rules[0].http.paths[0].backend.service).toEqual({ name: 'kong', port: { name: 'proxy' } });
  });
});
