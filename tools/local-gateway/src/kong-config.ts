/**
 * Reads Kong's declarative configuration (kong/kong.yml) and answers "which route does this request take, and which
 * plugins apply to it" the way Kong 3's `traditional_compatible` router does.
 *
 * Route priority (descending significance, as in Kong's compat router): the number of matching criteria a route
 * declares (methods, hosts, headers), then its header count, then regex paths before prefix paths, then
 * `regex_priority`, then the longest path. Regex paths are anchored at the start of the path; header values
 * prefixed with `~*` are case-insensitive regexes (Kong 3), others compare case-insensitively.
 * Plugin precedence: a plugin on the route wins over the same plugin on the service, which wins over a global one.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

export interface KongPlugin {
  name: string;
  enabled?: boolean;
  config?: Record<string, unknown>;
  tags?: string[];
}

export interface KongRoute {
  name: string;
  paths?: string[];
  methods?: string[];
  hosts?: string[];
  headers?: Record<string, string[]>;
  protocols?: string[];
  strip_path?: boolean;
  preserve_host?: boolean;
  regex_priority?: number;
  plugins?: KongPlugin[];
  tags?: string[];
}

export interface KongService {
  name: string;
  url?: string;
  protocol?: string;
  host?: string;
  port?: number;
  path?: string;
  connect_timeout?: number;
  read_timeout?: number;
  write_timeout?: number;
  retries?: number;
  routes?: KongRoute[];
  plugins?: KongPlugin[];
}

export interface KongJwtSecret {
  key: string;
  algorithm?: string;
  rsa_public_key?: string;
  secret?: string;
}

export interface KongConsumer {
  username?: string;
  custom_id?: string;
  jwt_secrets?: KongJwtSecret[];
  plugins?: KongPlugin[];
}

export interface KongConfig {
  _format_version: string;
  services?: KongService[];
  consumers?: KongConsumer[];
  plugins?: KongPlugin[];
}

export function loadKongConfig(path: string): KongConfig {
  return parseKongConfig(readFileSync(path, 'utf8'));
}

export function parseKongConfig(text: string): KongConfig {
  const doc = parse(text, { maxAliasCount: -1 }) as KongConfig | null;
  if (!doc || typeof doc !== 'object') throw new Error('kong.yml is empty');
  if (doc._format_version !== '3.0') throw new Error(`kong.yml: unsupported _format_version ${doc._format_version}`);
  return doc;
}

/** Base URL of a Kong service (`url`, or protocol/host/port/path). */
export function serviceUrl(service: KongService): string {
  if (service.url) return service.url;
  const protocol = service.protocol ?? 'http';
  const port = service.port ?? (protocol === 'https' ? 443 : 80);
  return `${protocol}://${service.host}:${port}${service.path ?? ''}`;
}

interface CompiledPath {
  source: string;
  regex?: RegExp;
  prefix?: string;
}

interface Candidate {
  route: KongRoute;
  service: KongService;
  path: CompiledPath | null;
  headers: Array<{ name: string; tests: Array<(value: string) => boolean> }>;
  methods: Set<string> | null;
  priority: number[];
}

export interface RouteMatch {
  route: KongRoute;
  service: KongService;
  /** The request path the upstream receives (differs only when `strip_path` is true). */
  upstreamPath: string;
  /** Effective plugins (route over service over global), enabled ones only, keyed by name. */
  plugins: Map<string, KongPlugin>;
}

export interface RequestShape {
  method: string;
  /** Path without the query string. */
  path: string;
  headers: Record<string, string | string[] | undefined>;
}

function compilePath(source: string): CompiledPath {
  if (source.startsWith('~')) return { source, regex: new RegExp(`^(?:${source.slice(1)})`) };
  return { source, prefix: source };
}

function compileHeaderValue(value: string): (v: string) => boolean {
  if (value.startsWith('~*')) {
    const re = new RegExp(value.slice(2), 'i');
    return (v) => re.test(v);
  }
  const lower = value.toLowerCase();
  return (v) => v.toLowerCase() === lower;
}

/** Compares priority vectors, highest first. */
function byPriority(a: Candidate, b: Candidate): number {
  for (let i = 0; i < a.priority.length; i++) {
    const d = (b.priority[i] ?? 0) - (a.priority[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export class KongRouter {
  readonly config: KongConfig;
  private readonly candidates: Candidate[] = [];

  constructor(config: KongConfig) {
    this.config = config;
    for (const service of config.services ?? []) {
      for (const route of service.routes ?? []) {
        const headers = Object.entries(route.headers ?? {}).map(([name, values]) => ({
          name: name.toLowerCase(),
          tests: values.map(compileHeaderValue),
        }));
        const methods = route.methods?.length ? new Set(route.methods.map((m) => m.toUpperCase())) : null;
        const points = (methods ? 1 : 0) + (route.hosts?.length ? 1 : 0) + (headers.length ? 1 : 0);
        const paths = route.paths?.length ? route.paths.map(compilePath) : [null];
        for (const path of paths) {
          const isRegex = path?.regex ? 1 : 0;
          this.candidates.push({
            route,
            service,
            path,
            headers,
            methods,
            priority: [
              points,
              headers.length,
              isRegex,
              isRegex ? (route.regex_priority ?? 0) : 0,
              path?.source.length ?? 0,
            ],
          });
        }
      }
    }
    this.candidates.sort(byPriority);
  }

  /** All routes with their service. */
  routes(): Array<{ route: KongRoute; service: KongService }> {
    return (this.config.services ?? []).flatMap((service) =>
      (service.routes ?? []).map((route) => ({ route, service })),
    );
  }

  match(req: RequestShape): RouteMatch | null {
    const method = req.method.toUpperCase();
    for (const c of this.candidates) {
      if (c.methods && !c.methods.has(method)) continue;
      let matched = '';
      if (c.path) {
        if (c.path.regex) {
          const m = c.path.regex.exec(req.path);
          if (!m) continue;
          matched = m[0];
        } else if (c.path.prefix !== undefined) {
          if (!req.path.startsWith(c.path.prefix)) continue;
          matched = c.path.prefix;
        }
      }
      const headersOk = c.headers.every(({ name, tests }) => {
        const raw = req.headers[name];
        const values = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
        return values.some((v) => tests.some((t) => t(v)));
      });
      if (!headersOk) continue;
      const strip = c.route.strip_path ?? true;
      let upstreamPath = req.path;
      if (strip && matched) {
        upstreamPath = req.path.slice(matched.length);
        if (!upstreamPath.startsWith('/')) upstreamPath = `/${upstreamPath}`;
      }
      return { route: c.route, service: c.service, upstreamPath, plugins: this.pluginsFor(c.route, c.service) };
    }
    return null;
  }

  pluginsFor(route: KongRoute, service: KongService): Map<string, KongPlugin> {
    const out = new Map<string, KongPlugin>();
    for (const layer of [this.config.plugins ?? [], service.plugins ?? [], route.plugins ?? []]) {
      for (const p of layer) {
        if (p.enabled === false) out.delete(p.name);
        else out.set(p.name, p);
      }
    }
    return out;
  }

  /** Global plugins (for requests that match no route: Kong still runs global plugins such as correlation-id). */
  globalPlugins(): Map<string, KongPlugin> {
    const out = new Map<string, KongPlugin>();
    for (const p of this.config.plugins ?? []) if (p.enabled !== false) out.set(p.name, p);
    return out;
  }
}
