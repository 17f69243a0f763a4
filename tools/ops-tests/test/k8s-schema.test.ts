// Every Kubernetes object the chart renders (defaults and every ci/*-values.yaml) and every canary manifest,
// validated against the Kubernetes OpenAPI schemas (kubernetes-models; Gateway API and Prometheus Operator CRDs too).
import { readdirSync } from 'node:fs';
import { Chart } from '../src/helm-render.ts';
import { readYaml, readYamlDocs, repoPath } from '../src/helpers.ts';
import { validateK8s } from '../src/k8s-validate.ts';

const chartDir = repoPath('k8s/charts/exchange');
const chart = new Chart(chartDir);
const profiles: [string, Record<string, unknown>][] = [
  ['defaults', {}],
  ...readdirSync(`${chartDir}/ci`)
    .filter((f) => f.endsWith('-values.yaml'))
    .map((f) => [f, readYaml('k8s/charts/exchange/ci', f)] as [string, Record<string, unknown>]),
];

test.each(profiles)('chart rendered with %s: every object is valid', async (_name, values) => {
  const objs = chart.manifests(values);
  for (const { obj } of objs) await validateK8s(obj);
});

test('the schemas catch a broken object (the check is not vacuous)', async () => {
  const [deployment] = chart
    .manifests()
    .filter(({ obj }) => obj.kind === 'Deployment')
    .map(({ obj }) => structuredClone(obj));
  deployment.spec.template.spec.containers[0].ports[0].containerPort = 'http';
  await expect(validateK8s(deployment)).rejects.toThrow(/containerPort must be integer/);
});

test.each([
  ['k8s/canary/base', 'order-canary.yaml'],
  ['k8s/canary/base', 'order-tracks.yaml'],
  ['k8s/canary/mesh', 'order-weighted-route.yaml'],
])('%s/%s is valid', async (dir, file) => {
  for (const obj of readYamlDocs(dir, file)) await validateK8s(obj);
});
