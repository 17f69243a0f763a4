// Canary manifests for the order service (k8s/canary). Plain YAML, so they are parsed and checked fully;
// no cluster here, so they are not applied.
import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { readYaml, readYamlDocs, readText, repoPath } from '../src/helpers.ts';

const base = 'k8s/canary/base';
const [deployment] = readYamlDocs(base, 'order-canary.yaml');
const tracks = readYamlDocs(base, 'order-tracks.yaml');
const [route] = readYamlDocs('k8s/canary/mesh', 'order-weighted-route.yaml');
const values = readYaml('k8s/charts/exchange', 'values.yaml');

describe('order canary Deployment', () => {
  const pod = deployment.spec.template.spec;
  const c = pod.containers[0];

  test('carries the labels the chart Service `order` selects, plus track=canary', () => {
    expect(deployment.kind).toBe('Deployment');
    expect(deployment.metadata.name).toBe('order-canary');
    const labels = deployment.spec.template.metadata.labels;
    // chart Service selector: app.kubernetes.io/name + app.kubernetes.io/instance (release "exchange")
    expect(labels['app.kubernetes.io/name']).toBe('order');
    expect(labels['app.kubernetes.io/instance']).toBe('exchange');
    expect(labels['app.kubernetes.io/track']).toBe('canary');
    expect(deployment.spec.selector.matchLabels['app.kubernetes.io/track']).toBe('canary');
    // the chart's stable Deployment selects track=stable, so it never adopts canary pods
    expect(readText('k8s/charts/exchange/templates/deployment.yaml')).toMatch(
      /matchLabels:[\s\S]*?app\.kubernetes\.io\/track: stable/,
    );
  });

  test('is locked down like the chart pods', () => {
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(c.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(c.resources.requests).toBeDefined();
    expect(c.resources.limits).toBeDefined();
    expect(c.startupProbe.httpGet.path).toBe('/health');
    expect(c.livenessProbe.httpGet.path).toBe('/health');
    expect(c.readinessProbe.httpGet.path).toBe('/ready');
  });

  test('runs the order service from the chart image repository with the environment the chart gives it', () => {
    expect(c.image.split(':')[0]).toBe(values.image.repository);
    const env = Object.fromEntries(c.env.map((e: any) => [e.name, e]));
    expect(env.SERVICE.value).toBe('order');
    expect(env.PORT.value).toBe(String(values.services.order.port));
    expect(env.WALLET_URL.value).toBe('http://wallet:3002');
    for (const [name, secretKey] of [
      ['DATABASE_URL', 'database'],
      ['AMQP_URL', 'amqp'],
      ['RABBITMQ_MANAGEMENT_URL', 'amqp'],
    ] as const) {
      expect(env[name].valueFrom.secretKeyRef).toEqual({ name: values.secrets[secretKey], key: name });
    }
    // the order service's own internal credential and its callers, as the chart gives them
    expect(env.INTERNAL_API_TOKEN.valueFrom.secretKeyRef).toEqual({ name: values.secrets.internalToken, key: 'order' });
    expect(env.INTERNAL_CALLERS.valueFrom.secretKeyRef).toEqual({
      name: values.secrets.internalToken,
      key: 'order-callers',
    });
    for (const name of [
      'NODE_ENV',
      'LOG_LEVEL',
      'JWT_ISSUER',
      'JWT_AUDIENCE',
      'AUTH_JWKS_URL',
      'OTEL_EXPORTER_OTLP_ENDPOINT',
      'OTEL_SERVICE_NAME',
    ])
      expect(env[name]).toBeDefined();
  });
});

describe('weighted routing', () => {
  test('per-track Services select stable and canary pods', () => {
    const byName = Object.fromEntries(tracks.map((s) => [s.metadata.name, s]));
    expect(byName['order-stable'].spec.selector['app.kubernetes.io/track']).toBe('stable');
    expect(byName['order-canary'].spec.selector['app.kubernetes.io/track']).toBe('canary');
  });

  test('the mesh HTTPRoute attaches to Service order and splits 90/10 between the tracks', () => {
    expect(route.kind).toBe('HTTPRoute');
    expect(route.spec.parentRefs).toEqual([{ group: '', kind: 'Service', name: 'order', port: 3003 }]);
    const refs = route.spec.rules[0].backendRefs;
    expect(refs.map((r: any) => r.name)).toEqual(['order-stable', 'order-canary']);
    expect(refs.reduce((a: number, r: any) => a + r.weight, 0)).toBe(100);
    expect(refs[1].weight).toBeLessThanOrEqual(10);
  });

  test('kustomizations reference files that exist', () => {
    for (const dir of ['k8s/canary', 'k8s/canary/base', 'k8s/canary/mesh']) {
      const k = readYaml(dir, 'kustomization.yaml');
      for (const r of k.resources)
        expect({ dir, r, exists: existsSync(join(repoPath(dir), r)) }).toEqual({ dir, r, exists: true });
    }
    expect(
      readdirSync(repoPath('k8s/canary/base'))
        .filter((f) => f.endsWith('.yaml'))
        .sort(),
    ).toEqual(['kustomization.yaml', 'order-canary.yaml', 'order-tracks.yaml']);
  });
});
