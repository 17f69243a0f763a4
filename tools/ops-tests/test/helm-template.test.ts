// The chart rendered by the real `helm template` (Helm 4; helm-tools.test.ts checks Helm 3 renders the same) for the
// default values and every ci/*-values.yaml profile, and the rendered manifests checked object by object.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { helmFails, helmFailsConnected, manifests, notes } from '../src/k8s-tools.ts';
import { readText, readYaml, repoPath, runTool, SERVICES } from '../src/helpers.ts';

const chartDir = repoPath('k8s/charts/exchange');
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
  const objs = manifests(values);
  const merged = (k: string) => (values as any)[k];

  test('renders valid YAML objects with unique names per kind, NOTES.txt without failing', () => {
    expect(objs.length).toBeGreaterThan(10);
    const keys = objs.map(({ obj }) => `${obj.kind}/${obj.metadata.name}`);
    expect(keys.length).toBe(new Set(keys).size);
    expect(notes(values)).toMatch(/exchange|RESTORE MODE/);
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
  const policies = byKind(manifests(), 'NetworkPolicy');
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
    expect(ingressFrom('auth').sort()).toEqual([
      'kong',
      'notification',
      'order',
      'payment-processor',
      'prometheus',
      'wallet',
    ]);
    // no public routes: only Prometheus reaches the notification service
    expect(ingressFrom('notification').sort()).toEqual(['prometheus']);
    expect(ingressFrom('wallet').sort()).toEqual(['kong', 'order', 'prometheus']);
    expect(ingressFrom('order').sort()).toEqual(['kong', 'prometheus', 'wallet']);
    expect(ingressFrom('payment-processor').sort()).toEqual(['kong', 'prometheus', 'wallet']);
    expect(ingressFrom('api-docs')).toEqual(['kong']);
    expect(ingressFrom('web')).toEqual(['kong']);
  });

  test('egress to other services: JWKS for all, wallet <-> order, wallet -> payment-processor (reconciliation)', () => {
    const peers = (name: string) =>
      byName[name].spec.egress
        .flatMap((r: any) => r.to.map((t: any) => t.podSelector?.matchLabels?.['app.kubernetes.io/name']))
        .filter(Boolean)
        .sort();
    expect(peers('wallet')).toEqual(['auth', 'order', 'payment-processor']);
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
  const deployments = byKind(manifests(), 'Deployment');
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
      'PAYMENT_PROCESSOR_URL',
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
        !['AUTH_JWKS_URL', 'WALLET_URL', 'ORDER_URL', 'PAYMENT_PROCESSOR_URL', 'OTEL_EXPORTER_OTLP_ENDPOINT'].includes(
          e.name,
        )
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

describe('trusted proxies: both topologies', () => {
  const env = (objs: Obj[], name: string) =>
    Object.fromEntries(
      (
        byKind(objs, 'Deployment').find((d) => d.metadata.name === name).spec.template.spec.containers[0].env as any[]
      ).map((e) => [e.name, e.value]),
    );
  test('default (no proxy in front of Kong): Kong believes no X-Forwarded-For; services only Kong-side peers', () => {
    const objs = manifests();
    const kongEnv = env(objs, 'kong');
    expect(kongEnv.KONG_TRUSTED_IPS).toBeUndefined();
    expect(kongEnv.KONG_REAL_IP_HEADER).toBeUndefined();
    for (const s of SERVICES)
      expect(env(objs, s.name).TRUST_PROXY).toBe('10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7');
  });
  test('behind a load balancer / Ingress: Kong takes the client IP from X-Forwarded-For of the listed CIDRs only', () => {
    const objs = manifests({ trustedProxies: { edge: ['10.42.0.0/16'], gateway: ['10.43.0.0/16'] } });
    const kongEnv = env(objs, 'kong');
    expect(kongEnv).toMatchObject({
      KONG_TRUSTED_IPS: '10.42.0.0/16',
      KONG_REAL_IP_HEADER: 'X-Forwarded-For',
      KONG_REAL_IP_RECURSIVE: 'on',
    });
    for (const s of SERVICES) expect(env(objs, s.name).TRUST_PROXY).toBe('10.43.0.0/16');
  });
  test('no gateway CIDRs: the services believe no X-Forwarded-For at all', () => {
    const objs = manifests({ trustedProxies: { edge: [], gateway: [] } });
    for (const s of SERVICES) expect(env(objs, s.name).TRUST_PROXY).toBe('false');
  });
  test('sandbox deposits are off by default', () => {
    expect(env(manifests(), 'wallet').SANDBOX_DEPOSITS).toBe('false');
  });
});

describe('NOTES.txt guards (rendered)', () => {
  const fails = (values: Record<string, unknown>) => helmFails(values);

  test.each([
    [
      'one payment-processor replica in production',
      { services: { 'payment-processor': { replicas: 1 } } },
      /payment-processor.replicas must be >= 2/,
    ],
    [
      "an order autoscaler that could exhaust PostgreSQL's connections",
      { services: { order: { autoscaling: { enabled: true, maxReplicas: 10 } } } },
      /pools could open 160 connections \(auth 3 x 5, notification 2 x 4, order 11 x 8, payment-processor 3 x 5, wallet 3 x 8, \+ 10 other\) but database.maxConnections is 100/,
    ],
    [
      'a signing-key activation delay Kong could miss',
      { jwt: { signingKeyActivationDelaySeconds: 60 }, gateway: { jwksSync: { intervalSeconds: 30 } } },
      /signingKeyActivationDelaySeconds must exceed 2 x gateway.jwksSync.intervalSeconds/,
    ],
    [
      'a preStop delay as long as the grace period',
      { podDefaults: { preStopSeconds: 30, terminationGracePeriodSeconds: 30 } },
      /preStopSeconds must be below/,
    ],
    [
      'a payment-processor canary',
      { rollouts: { enabled: true, services: ['order', 'payment-processor'] } },
      /rollouts.services must not list payment-processor/,
    ],
    [
      'a rollout that stops below 100 %',
      { rollouts: { enabled: true, steps: [10, 50] } },
      /rollouts.steps must end at 100/,
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
    [
      'backups without an encryption key',
      { backup: { encryption: { recipientsSecret: '' } } },
      /backups are never written unencrypted/i,
    ],
    [
      'an off-site copy without a bucket',
      { backup: { offsite: { enabled: true, endpoint: 'https://s3.example.com' } } },
      /backup.offsite.enabled needs backup.offsite.path/,
    ],
    [
      'a restore without the private key',
      { backup: { enabled: false }, restore: { enabled: true, file: 'x.dump.age', identitySecret: '' } },
      /restore.enabled needs restore.identitySecret/,
    ],
    ['image tag latest in production', { image: { tag: 'latest' } }, /"latest" is not reproducible/],
    ['sandbox deposits in production', { sandbox: true }, /sandbox=true lets every user credit themselves/],
    [
      'an Ingress without trusted edge proxies in production',
      { gateway: { ingress: { enabled: true } } },
      /every client is the Ingress controller's IP/,
    ],
    [
      'a shared RWO backup claim with 2 auth replicas',
      { secrets: { backupDatabase: 'exchange-database-backup' }, backup: { persistence: { shareWithAuth: true } } },
      /needs backup.persistence.accessMode=ReadWriteMany/,
    ],
    [
      'admin backups on the shared claim without a read-only backup role',
      { backup: { persistence: { shareWithAuth: true, accessMode: 'ReadWriteMany' } } },
      /shareWithAuth needs secrets.backupDatabase/,
    ],
    [
      'a service without a database role of its own in production',
      { secrets: { serviceDatabases: { wallet: '' } } },
      /secrets.serviceDatabases.wallet is empty or secrets.database: every service would share one database role/,
    ],
    [
      "a service given the admin role's Secret in production",
      { secrets: { serviceDatabases: { order: 'exchange-database' } } },
      /secrets.serviceDatabases.order is empty or secrets.database/,
    ],
    [
      'the notification service without a database role of its own in production',
      { secrets: { serviceDatabases: { notification: '' } } },
      /secrets.serviceDatabases.notification is empty or secrets.database/,
    ],
    [
      'two services sharing one role',
      { profile: 'development', secrets: { serviceDatabases: { order: 'exchange-database-wallet' } } },
      /secrets.serviceDatabases.wallet and .order name the same Secret "exchange-database-wallet"/,
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
    [
      'an autoscaler within the connection budget',
      { database: { maxConnections: 150 }, services: { order: { autoscaling: { enabled: true, maxReplicas: 6 } } } },
    ],
  ])('accepts %s', (_what, values) => {
    expect(fails(values)).toBeNull();
  });

  // a fake API server answers Helm's lookups (see withFakeCluster): real Helm, a stand-in cluster
  const cluster = (missing: string[] = []) =>
    [
      'configmaps/kube-root-ca.crt',
      'configmaps/kong-declarative',
      ...[
        'exchange-database',
        'exchange-amqp',
        'exchange-internal',
        'exchange-auth-keys',
        ...SERVICES.map((s) => `exchange-database-${s.name}`),
        'exchange-database-notification',
      ].map((n) => `secrets/${n}`),
    ].filter((k) => !missing.some((m) => k.endsWith(`/${m}`)));
  const failsConnected = (values: Record<string, unknown>, objects: string[]) => helmFailsConnected(values, objects);

  test('connected to a cluster: installs when every Secret and the Kong ConfigMap exist', async () => {
    expect(await failsConnected({}, cluster())).toBeNull();
  });
  test('connected to a cluster: refuses a missing Secret, names it', async () => {
    expect(await failsConnected({}, cluster(['exchange-amqp']))).toMatch(
      /Secret "exchange-amqp" \(secrets.amqp\) does not exist in namespace exchange/,
    );
  });
  test("connected to a cluster: refuses a missing service database role's Secret, names it", async () => {
    expect(await failsConnected({}, cluster(['exchange-database-order']))).toMatch(
      /Secret "exchange-database-order" \(secrets.serviceDatabases.order\) does not exist in namespace exchange/,
    );
  });
  test('connected to a cluster: refuses a missing Kong ConfigMap', async () => {
    expect(await failsConnected({}, cluster(['kong-declarative']))).toMatch(
      /ConfigMap "kong-declarative" with kong.yml does not exist/,
    );
  });
  test('connected to a cluster: refuses paging whose Secret does not exist', async () => {
    expect(await failsConnected({ monitoring: { alerting: { enabled: true } } }, cluster())).toMatch(
      /Secret "exchange-alerting" \(monitoring.alerting.secret\) does not exist/,
    );
  });
  test('secrets.verify=false skips the existence checks', async () => {
    expect(await failsConnected({ secrets: { verify: false } }, cluster(['exchange-amqp']))).toBeNull();
  });
});

describe('rendered modes', () => {
  test('restore mode: services at 0 replicas, no HPA, no migration hook, no backup CronJob, one restore Job with a DNS-safe name', () => {
    const objs = manifests(readYaml('k8s/charts/exchange/ci', 'restore-values.yaml'));
    for (const s of SERVICES)
      expect(byKind(objs, 'Deployment').find((d) => d.metadata.name === s.name).spec.replicas).toBe(0);
    expect(byKind(objs, 'HorizontalPodAutoscaler')).toEqual([]);
    expect(byKind(objs, 'CronJob')).toEqual([]);
    const jobs = byKind(objs, 'Job');
    expect(jobs.map((j) => j.metadata.name)).toEqual(['exchange-restore-exchange-20260201t020000000z']);
    const c = jobs[0].spec.template.spec.containers[0];
    expect(c.command).toEqual(['bash', '/scripts/restore.sh']);
    const env = Object.fromEntries(c.env.map((e: any) => [e.name, e.value]));
    expect(env.DUMP).toBe('/backups/exchange-20260201T020000000Z.dump.age');
    expect(env.BACKUP_AGE_IDENTITY_FILE).toBe('/keys/AGE_IDENTITY');
    const vols = Object.fromEntries(jobs[0].spec.template.spec.volumes.map((v: any) => [v.name, v]));
    expect(vols.keys.secret.secretName).toBe('exchange-backup-identity');
    // the scripts the Jobs run are the chart's files, byte for byte
    const cm = byKind(objs, 'ConfigMap').find((m) => m.metadata.name === 'exchange-backup-scripts');
    expect(cm.data['restore.sh']).toBe(readText('k8s/charts/exchange/files/restore.sh'));
    expect(notes(readYaml('k8s/charts/exchange/ci', 'restore-values.yaml'))).toContain('RESTORE MODE');
    expect(
      byKind(
        manifests({ backup: { enabled: false }, restore: { enabled: true, file: 'Weird_Name.v2.dump' } }),
        'Job',
      )[0].metadata.name,
    ).toBe('exchange-restore-weird-name-v2');
  });

  test('normal mode: migration hook runs auth, wallet, order, then payment-processor; backup CronJob keeps retention', () => {
    const objs = manifests();
    const job = byKind(objs, 'Job').find((j) => j.metadata.name === 'exchange-migrate');
    expect(job.metadata.annotations['helm.sh/hook']).toBe('pre-install,pre-upgrade');
    expect(job.spec.template.spec.initContainers.map((c: any) => c.args)).toEqual([
      ['db-roles'],
      ['migrate', 'auth'],
      ['migrate', 'wallet'],
      ['migrate', 'order'],
    ]);
    expect(job.spec.template.spec.containers.map((c: any) => c.args)).toEqual([['migrate', 'payment-processor']]);
    // each service migrates, and runs, as its own role; only db-roles holds the admin role (secrets.database)
    const secretOf = (env: any[], name = 'DATABASE_URL') =>
      env.find((e: any) => e.name === name)?.valueFrom.secretKeyRef.name as string | undefined;
    const [roles, ...migrations] = [...job.spec.template.spec.initContainers, ...job.spec.template.spec.containers];
    expect(migrations.map((c: any) => secretOf(c.env))).toEqual(SERVICES.map((s) => `exchange-database-${s.name}`));
    for (const s of SERVICES) {
      const d = byKind(objs, 'Deployment').find((x) => x.metadata.name === s.name);
      expect(secretOf(d.spec.template.spec.containers[0].env)).toBe(`exchange-database-${s.name}`);
      const variable = `${s.name.replace('-', '_').toUpperCase()}_DATABASE_URL`;
      expect(secretOf(roles.env, variable)).toBe(`exchange-database-${s.name}`);
    }
    expect(secretOf(roles.env, 'DATABASE_ADMIN_URL')).toBe('exchange-database');
    // the notification service (migrating at start) runs as its own role too, provisioned by the same step
    const notification = byKind(objs, 'Deployment').find((x) => x.metadata.name === 'notification');
    expect(secretOf(notification.spec.template.spec.containers[0].env)).toBe('exchange-database-notification');
    expect(secretOf(roles.env, 'NOTIFICATION_DATABASE_URL')).toBe('exchange-database-notification');
    const cron = byKind(objs, 'CronJob')[0];
    expect(cron.spec.schedule).toBe('0 2 * * *');
    const c = cron.spec.jobTemplate.spec.template.spec.containers[0];
    expect(c.env.find((e: any) => e.name === 'RETENTION_DAYS').value).toBe('14');
    expect(c.command).toEqual(['bash', '/scripts/backup.sh']);
    // the backup Job holds the age public key only; no off-site copy unless configured
    const vols = Object.fromEntries(cron.spec.jobTemplate.spec.template.spec.volumes.map((v: any) => [v.name, v]));
    expect(vols.keys.secret).toEqual({
      secretName: 'exchange-backup-recipients',
      items: [{ key: 'AGE_RECIPIENTS', path: 'AGE_RECIPIENTS' }],
    });
    expect(c.env.some((e: any) => e.name === 'BACKUP_OFFSITE')).toBe(false);
    const cm = byKind(objs, 'ConfigMap').find((m) => m.metadata.name === 'exchange-backup-scripts');
    expect(cm.data['backup.sh']).toBe(readText('k8s/charts/exchange/files/backup.sh'));
    expect(byKind(objs, 'PersistentVolumeClaim')[0].metadata.annotations['helm.sh/resource-policy']).toBe('keep');
    for (const s of SERVICES)
      expect(byKind(objs, 'Deployment').find((d) => d.metadata.name === s.name).spec.replicas).toBe(2);
  });

  test('monitoring profile: PrometheusRule carries exactly config/rules; ServiceMonitor labels tier/app/track', () => {
    const objs = manifests(readYaml('k8s/charts/exchange/ci', 'monitoring-values.yaml'));
    const rule = byKind(objs, 'PrometheusRule')[0];
    const expected = [
      ...parse(readText('config/rules/recording-rules.yml')).groups,
      ...parse(readText('config/rules/alert-rules.yml')).groups,
    ];
    // infra alerts are pinned to the release namespace (see the next test)
    for (const g of expected)
      if (g.name === 'exchange-infra.alerts')
        for (const r of g.rules) r.labels = { namespace: 'exchange', ...r.labels };
    expect(rule.spec.groups).toEqual(expected);
    const sm = byKind(objs, 'ServiceMonitor')[0];
    expect(sm.spec.endpoints[0].relabelings.map((r: any) => r.targetLabel)).toEqual([
      'tier',
      'app',
      'job',
      'track',
      'rollouts_pod_template_hash',
    ]);
    // shared backup claim mounted into auth
    const auth = byKind(objs, 'Deployment').find((d) => d.metadata.name === 'auth');
    expect(auth.spec.template.spec.volumes.find((v: any) => v.name === 'backups').persistentVolumeClaim.claimName).toBe(
      'exchange-backups',
    );
  });

  test('monitoring profile: paging like compose (AlertmanagerConfig mirroring config/alertmanager.yml)', () => {
    const objs = manifests(readYaml('k8s/charts/exchange/ci', 'monitoring-values.yaml'));
    const amc = byKind(objs, 'AlertmanagerConfig')[0];
    const compose = parse(readText('config/alertmanager.yml'));
    // same receivers and endpoints (hosts differ), same routing, grouping and inhibitions
    const paths = (receivers: any[], key: string) =>
      Object.fromEntries(
        receivers.map((r) => [r.name, r[key].map((w: any) => (w.url ? new URL(w.url).pathname : 'heartbeat'))]),
      );
    expect(paths(amc.spec.receivers, 'webhookConfigs')).toEqual(paths(compose.receivers, 'webhook_configs'));
    expect(amc.spec.route.receiver).toBe(compose.route.receiver);
    expect(amc.spec.route.groupBy).toEqual(compose.route.group_by);
    expect(amc.spec.route.repeatInterval).toBe(compose.route.repeat_interval);
    expect(amc.spec.route.routes.map((r: any) => r.receiver)).toEqual(compose.route.routes.map((r: any) => r.receiver));
    const ntfy = (rs: any[]) =>
      new URL(
        rs.find((r) => r.name === 'goalert-and-ntfy')[
          rs === compose.receivers ? 'webhook_configs' : 'webhookConfigs'
        ][1].url,
      );
    expect(ntfy(amc.spec.receivers).search).toBe(ntfy(compose.receivers).search);
    const [goalert, ntfyHook] = amc.spec.receivers.find((r: any) => r.name === 'goalert-and-ntfy').webhookConfigs;
    expect(goalert.httpConfig.authorization.credentials).toEqual({
      name: 'exchange-alerting',
      key: 'GOALERT_ALERTMANAGER_TOKEN',
    });
    expect(ntfyHook.httpConfig.authorization.credentials).toEqual({ name: 'exchange-alerting', key: 'NTFY_TOKEN' });
    expect(amc.spec.receivers.find((r: any) => r.name === 'goalert-heartbeat').webhookConfigs[0].urlSecret).toEqual({
      name: 'exchange-alerting',
      key: 'GOALERT_HEARTBEAT_URL',
    });
    expect(amc.spec.inhibitRules).toHaveLength(compose.inhibit_rules.length);
    // infra alerts measure things outside the release namespace: pinned to it so the AlertmanagerConfig routes them
    const rule = byKind(objs, 'PrometheusRule')[0];
    const infra = rule.spec.groups.find((g: any) => g.name === 'exchange-infra.alerts');
    for (const r of infra.rules) expect(r.labels.namespace).toBe('exchange');
  });

  test('rollouts profile: a Rollout with analysis per canaried service, never the payment-processor', () => {
    const objs = manifests(readYaml('k8s/charts/exchange/ci', 'rollouts-values.yaml'));
    const rollouts = byKind(objs, 'Rollout');
    expect(rollouts.map((r) => r.metadata.name).sort()).toEqual(['auth', 'order', 'wallet']);
    const deployments = Object.fromEntries(byKind(objs, 'Deployment').map((d) => [d.metadata.name, d]));
    for (const r of rollouts) {
      const d = deployments[r.metadata.name];
      // the Deployment is the pod template; Argo owns the replica count
      expect(r.spec.workloadRef).toEqual({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        name: d.metadata.name,
        scaleDown: 'progressively',
      });
      expect(d.spec.replicas).toBeUndefined();
      expect(r.spec.selector).toEqual(d.spec.selector);
      expect(r.spec.strategy.canary.steps.filter((s: any) => 'setWeight' in s).map((s: any) => s.setWeight)).toEqual([
        10, 25, 50, 100,
      ]);
      expect(r.spec.strategy.canary.analysis).toMatchObject({
        templates: [{ templateName: 'exchange-canary-health' }],
        startingStep: 1,
        args: [
          { name: 'service', value: r.metadata.name },
          { name: 'canary-hash', valueFrom: { podTemplateHashValue: 'Latest' } },
        ],
      });
    }
    expect(deployments['payment-processor'].spec.replicas).toBe(2);
    expect(deployments['payment-processor'].spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
    expect(byKind(objs, 'HorizontalPodAutoscaler')[0].spec.scaleTargetRef).toEqual({
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Rollout',
      name: 'order',
    });
    expect(rollouts.find((r) => r.metadata.name === 'order').spec.replicas).toBeUndefined();
  });

  test("rollouts profile: the analysis queries the canary's own pods, as valid PromQL on metrics the services export", () => {
    const objs = manifests(readYaml('k8s/charts/exchange/ci', 'rollouts-values.yaml'));
    const [template] = byKind(objs, 'AnalysisTemplate');
    expect(template.spec.metrics.map((m: any) => m.name)).toEqual(['error-ratio', 'p99-latency-seconds']);
    const queries = template.spec.metrics.map((m: any) =>
      m.provider.prometheus.query.replaceAll('{{args.service}}', 'order').replaceAll('{{args.canary-hash}}', 'abc123'),
    );
    for (const q of queries) expect(q).toContain('rollouts_pod_template_hash="abc123"');
    expect(template.spec.metrics.map((m: any) => m.successCondition)).toEqual([
      'len(result) == 0 || isNaN(result[0]) || result[0] <= 0.01',
      'len(result) == 0 || isNaN(result[0]) || result[0] <= 0.5',
    ]);
    // promtool parses each query as a recording rule
    const dir = mkdtempSync(join(tmpdir(), 'analysis-'));
    writeFileSync(
      join(dir, 'rules.yml'),
      stringify({
        groups: [
          { name: 'analysis', rules: queries.map((expr: string, i: number) => ({ record: `analysis_${i}`, expr })) },
        ],
      }),
    );
    const r = runTool('promtool', ['check', 'rules', join(dir, 'rules.yml')]);
    rmSync(dir, { recursive: true, force: true });
    expect({ status: r.status, out: r.stdout + r.stderr }).toMatchObject({ status: 0 });
    // the ServiceMonitor puts the hash label on every series
    const sm = byKind(manifests(readYaml('k8s/charts/exchange/ci', 'monitoring-values.yaml')), 'ServiceMonitor')[0];
    expect(sm.spec.endpoints[0].relabelings).toContainEqual({
      sourceLabels: ['__meta_kubernetes_pod_label_rollouts_pod_template_hash'],
      targetLabel: 'rollouts_pod_template_hash',
    });
  });

  test('rollouts drain: every service and Kong pod sleeps before SIGTERM; pools sized by value', () => {
    const objs = manifests();
    const routed = [...SERVICES.map((s) => s.name), 'kong'];
    for (const d of byKind(objs, 'Deployment').filter((x) => routed.includes(x.metadata.name))) {
      const c = d.spec.template.spec.containers[0];
      expect({ d: d.metadata.name, preStop: c.lifecycle?.preStop }).toEqual({
        d: d.metadata.name,
        preStop: { exec: { command: ['sleep', '5'] } },
      });
    }
    const pools = Object.fromEntries(
      byKind(objs, 'Deployment')
        .filter((d) => SERVICES.some((s) => s.name === d.metadata.name))
        .map((d) => [
          d.metadata.name,
          d.spec.template.spec.containers[0].env.find((e: any) => e.name === 'DATABASE_POOL_MAX').value,
        ]),
    );
    // wallet and order went from 10 to 8 when the notification service (2 x 4) joined the 100-connection budget
    expect(pools).toEqual({ auth: '5', wallet: '8', order: '8', 'payment-processor': '5' });
  });

  test('Kong loads key rotations by itself: jwks-sync sidecar on the admin listener, auth waits longer to sign', () => {
    const objs = manifests();
    const kong = byKind(objs, 'Deployment').find((d) => d.metadata.name === 'kong');
    const sync = kong.spec.template.spec.containers.find((c: any) => c.name === 'jwks-sync');
    expect(sync.command).toEqual(['node', '/app/kong/jwks-sync.ts']);
    const env = Object.fromEntries(sync.env.map((e: any) => [e.name, e.value]));
    expect(env).toMatchObject({
      AUTH_JWKS_URL: 'http://auth:3001/.well-known/jwks.json',
      KONG_ADMIN_URL: 'http://127.0.0.1:8001',
      JWKS_SYNC_INTERVAL_SECONDS: '30',
    });
    const kongEnv = Object.fromEntries(kong.spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value]));
    expect(kongEnv.KONG_ADMIN_LISTEN).toBe('127.0.0.1:8001');
    const auth = byKind(objs, 'Deployment').find((d) => d.metadata.name === 'auth');
    const delay = auth.spec.template.spec.containers[0].env.find(
      (e: any) => e.name === 'SIGNING_KEY_ACTIVATION_DELAY_SECONDS',
    );
    expect(Number(delay.value)).toBeGreaterThan(2 * Number(env.JWKS_SYNC_INTERVAL_SECONDS));
  });

  test('monitoring profile: data-store egress also by peer selector (in-cluster stores on Cilium)', () => {
    const objs = manifests(readYaml('k8s/charts/exchange/ci', 'monitoring-values.yaml'));
    const storeRules = byKind(objs, 'NetworkPolicy').flatMap((p) =>
      (p.spec.egress ?? []).filter((r: any) => r.to?.some((t: any) => t.ipBlock)),
    );
    expect(storeRules.length).toBeGreaterThan(5);
    for (const r of storeRules)
      expect(r.to.filter((t: any) => !t.ipBlock)).toEqual([
        { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'data' } } },
        {
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'observability' } },
          podSelector: { matchLabels: { 'app.kubernetes.io/name': 'jaeger' } },
        },
      ]);
  });

  test('production profile: backups copied off-site to S3 (rclone env from values and the Secret), egress to it', () => {
    const objs = manifests(readYaml('k8s/charts/exchange/ci', 'production-values.yaml'));
    const c = byKind(objs, 'CronJob')[0].spec.jobTemplate.spec.template.spec.containers[0];
    const env = Object.fromEntries(c.env.map((e: any) => [e.name, e]));
    expect(env.BACKUP_OFFSITE.value).toBe('offsite:exchange-backups/production');
    expect(env.RCLONE_CONFIG_OFFSITE_TYPE.value).toBe('s3');
    expect(env.RCLONE_CONFIG_OFFSITE_PROVIDER.value).toBe('AWS');
    expect(env.RCLONE_CONFIG_OFFSITE_ENDPOINT.value).toBe('https://s3.eu-central-1.amazonaws.com');
    expect(env.RCLONE_CONFIG_OFFSITE_SECRET_ACCESS_KEY.valueFrom.secretKeyRef).toEqual({
      name: 'exchange-backup-offsite',
      key: 'SECRET_ACCESS_KEY',
    });
    const np = byKind(objs, 'NetworkPolicy').find((p) => p.metadata.name === 'exchange-backup');
    expect(np.spec.egress[1]).toEqual({ ports: [{ port: 443, protocol: 'TCP' }] });
  });

  test('production profile: HPA replaces the order replica count; ingress with TLS to Kong', () => {
    const objs = manifests(readYaml('k8s/charts/exchange/ci', 'production-values.yaml'));
    expect(byKind(objs, 'HorizontalPodAutoscaler').map((h) => h.metadata.name)).toEqual(['order']);
    expect(byKind(objs, 'Deployment').find((d) => d.metadata.name === 'order').spec.replicas).toBeUndefined();
    const ing = byKind(objs, 'Ingress')[0];
    expect(ing.spec.tls[0].secretName).toBe('exchange-api-tls');
    expect(ing.spec.rules[0].http.paths[0].backend.service).toEqual({ name: 'kong', port: { name: 'proxy' } });
  });
});
