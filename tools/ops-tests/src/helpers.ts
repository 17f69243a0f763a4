// Shared helpers for the ops tests: repo paths, YAML loading, and running real CLI tools
// (promtool, amtool) with a failure — never a skip — when a tool is missing.
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export function repoPath(...parts: string[]): string {
  return join(repoRoot, ...parts);
}

export function readText(...parts: string[]): string {
  return readFileSync(repoPath(...parts), 'utf8');
}

export function readYaml<T = any>(...parts: string[]): T {
  return parse(readText(...parts)) as T;
}

export function readYamlDocs(...parts: string[]): any[] {
  return parseAllDocuments(readText(...parts)).map((d) => {
    if (d.errors.length) throw new Error(`${parts.join('/')}: ${d.errors.map((e) => e.message).join('; ')}`);
    return d.toJS();
  });
}

export function exists(...parts: string[]): boolean {
  return existsSync(repoPath(...parts));
}

/** Debian packages that provide each CLI the tests run (CI installs them with apt-get). */
export const TOOL_PACKAGES: Record<string, string> = {
  promtool: 'prometheus',
  amtool: 'prometheus-alertmanager',
  psql: 'postgresql-client',
  prometheus: 'prometheus',
  'prometheus-alertmanager': 'prometheus-alertmanager',
};

export interface ToolResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a real tool. Throws (failing the test) with the install command if the tool is not on PATH. */
export function runTool(tool: string, args: string[], cwd = repoRoot): ToolResult {
  const r = spawnSync(tool, args, { cwd, encoding: 'utf8', timeout: 60_000 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    const pkg = TOOL_PACKAGES[tool] ?? tool;
    throw new Error(
      `${tool} is not installed; these tests run it for real. Install it: apt-get update && apt-get install -y ${pkg}`,
    );
  }
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** GitHub-style heading anchors of a markdown file. */
export function markdownAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let inFence = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) inFence = !inFence;
    if (inFence) continue;
    const m = /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = m[2]!
      .toLowerCase()
      .replace(/`/g, '')
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .trim()
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

export const SERVICES = [
  { name: 'auth', port: 3001, schema: 'auth' },
  { name: 'wallet', port: 3002, schema: 'wallet' },
  { name: 'order', port: 3003, schema: 'orders' },
  { name: 'payment-processor', port: 3004, schema: 'payment' },
] as const;

/** The exchange-service entrypoint script embedded in the Dockerfile (the COPY heredoc), as text. */
export function entrypointScript(): string {
  const lines = readText('Dockerfile').split('\n');
  const start = lines.findIndex((l) => l.startsWith("COPY <<'EOF' /usr/local/bin/exchange-service"));
  if (start < 0) throw new Error('Dockerfile: the exchange-service heredoc is missing');
  const end = lines.indexOf('EOF', start + 1);
  return lines.slice(start + 1, end).join('\n') + '\n';
}

/** `.env` as a map (KEY=value lines). */
export function dotenv(): Record<string, string> {
  return Object.fromEntries(
    readText('.env')
      .split('\n')
      .filter((l) => /^[A-Z_][A-Z0-9_]*=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

/** Compose's interpolation of ${VAR}, ${VAR:-default}, ${VAR:?message} from `env`. */
export function interpolate(value: string, env: Record<string, string>): string {
  return value.replace(
    /\$\{([A-Z_][A-Z0-9_]*)(?::([-?])([^}]*))?\}/g,
    (_m, name: string, op?: string, arg?: string) => {
      const v = env[name];
      if (op === '-') return v ? v : arg!;
      if (op === '?' && !v) throw new Error(`${name}: ${arg}`);
      return v ?? '';
    },
  );
}

/** Starts a long-running tool; fails (with the install command) when it is not installed. */
export function startTool(tool: string, args: string[], env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(
      `${tool} is not installed; these tests run it for real. Install it: apt-get update && apt-get install -y ${TOOL_PACKAGES[tool] ?? tool}`,
    );
  }
  let out = '';
  const proc = spawn(tool, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.on('data', (c) => (out = (out + c).slice(-20_000)));
  proc.stderr!.on('data', (c) => (out = (out + c).slice(-20_000)));
  return { proc, log: () => out };
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Polls `check` until it returns a value (not undefined) or the time is up. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  log = () => '',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      lastError = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms ${lastError}\n${log().slice(-3000)}`);
}

/** Metric names registered in the product's source (prom-client `name: '...'`), excluding tests. */
export function productMetricNames(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string) => {
    for (const f of readdirSync(dir)) {
      if (f === 'node_modules') continue;
      const p = join(dir, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (f.endsWith('.ts') && !f.endsWith('.test.ts')) {
        for (const m of readFileSync(p, 'utf8').matchAll(/name:\s*'([a-z_:]+)'/g)) names.add(m[1]!);
      }
    }
  };
  for (const root of ['packages', 'services'])
    for (const d of readdirSync(repoPath(root))) if (exists(root, d, 'src')) walk(repoPath(root, d, 'src'));
  return names;
}
