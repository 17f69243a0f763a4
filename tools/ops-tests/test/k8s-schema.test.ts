// Every Kubernetes object the real `helm template` renders (defaults and every ci/*-values.yaml) and every object
// `kubectl kustomize` builds from the canary overlays, validated against the Kubernetes OpenAPI schemas
// (kubernetes-models; Gateway API, Prometheus Operator and Argo Rollouts CRDs too).
import { readdirSync } from 'node:fs';
import { repoPath } from '../src/helpers.ts';
import { kustomize, manifests, parseManifests } from '../src/k8s-tools.ts';
import { validateK8s } from '../src/k8s-validate.ts';

const chartDir = repoPath('k8s/charts/exchange');
const profiles: [string, string | undefined][] = [
  ['defaults', undefined],
  ...readdirSync(`${chartDir}/ci`)
    .filter((f) => f.endsWith('-values.yaml'))
    .map((f) => [f, `${chartDir}/ci/${f}`] as [string, string]),
];

test.each(profiles)('chart rendered with %s: every object is valid', async (_name, values) => {
  const objs = manifests(values);
  expect(objs.length).toBeGreaterThan(10);
  for (const { obj } of objs) await validateK8s(obj);
});

test('the schemas catch a broken object (the check is not vacuous)', async () => {
  const [deployment] = manifests()
    .filter(({ obj }) => obj.kind === 'Deployment')
    .map(({ obj }) => structuredClone(obj));
  deployment.spec.template.spec.containers[0].ports[0].containerPort = 'http';
  await expect(validateK8s(deployment)).rejects.toThrow(/containerPort must be integer/);
});

test.each(['k8s/canary', 'k8s/canary/mesh'])('kubectl kustomize %s: every object is valid', async (dir) => {
  const r = kustomize(dir);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const objs = parseManifests(r.stdout);
  expect(objs.length).toBeGreaterThan(0);
  for (const { obj } of objs) await validateK8s(obj);
});

test('the Argo Rollouts schemas catch a broken Rollout (the CRD check is not vacuous)', async () => {
  const rollout = manifests(`${chartDir}/ci/rollouts-values.yaml`)
    .map(({ obj }) => structuredClone(obj))
    .find((o) => o.kind === 'Rollout');
  rollout.spec.strategy.canary.steps[0].setWeight = 'ten';
  await expect(validateK8s(rollout)).rejects.toThrow(/setWeight/);
});
