// Dockerfile and .dockerignore. No Docker engine here, so the image is not built; the structure is checked and
// the entrypoint script embedded in the Dockerfile (a heredoc) is extracted and run for real with sh + node.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, chmodSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readText, SERVICES, entrypointScript } from '../src/helpers.ts';

const dockerfile = readText('Dockerfile');
const lines = dockerfile.split('\n');

function instructions(): { op: string; args: string }[] {
  const out: { op: string; args: string }[] = [];
  let inHeredoc: string | null = null;
  let cont = '';
  for (const line of lines) {
    if (inHeredoc) {
      if (line === inHeredoc) inHeredoc = null;
      continue;
    }
    if (!cont && (/^\s*#/.test(line) || line.trim() === '')) continue;
    const full = cont + line;
    if (full.endsWith('\\')) {
      cont = full.slice(0, -1) + ' ';
      continue;
    }
    cont = '';
    const m = /^\s*([A-Z]+)\s+(.*)$/.exec(full);
    if (!m) continue;
    out.push({ op: m[1]!, args: m[2]! });
    const h = /<<'?([A-Z]+)'?/.exec(m[2]!);
    if (h) inHeredoc = h[1]!;
  }
  return out;
}

describe('Dockerfile', () => {
  const ins = instructions();
  const stages = ins.filter((i) => i.op === 'FROM');

  test('multi-stage on node:24-slim', () => {
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:24-slim$/m);
    expect(stages.map((s) => s.args)).toEqual([
      '${NODE_IMAGE} AS deps',
      '${NODE_IMAGE} AS web',
      '${NODE_IMAGE} AS runtime',
    ]);
    // only the web app's built files leave the web stage (its dev dependencies stay behind)
    expect(ins.filter((i) => i.op === 'COPY' && i.args.includes('--from=web')).map((i) => i.args)).toEqual([
      '--from=web /app/apps/web/dist /app/apps/web/dist',
    ]);
  });

  test('pnpm through corepack; production dependencies exactly as locked', () => {
    expect(ins.some((i) => i.op === 'RUN' && /corepack enable/.test(i.args))).toBe(true);
    expect(ins.some((i) => i.op === 'RUN' && /pnpm fetch --prod/.test(i.args))).toBe(true);
    expect(ins.some((i) => i.op === 'RUN' && /pnpm install --frozen-lockfile --prod --offline/.test(i.args))).toBe(
      true,
    );
    // the lockfile is copied before the sources, so dependency layers are cached
    const copyLock = ins.findIndex((i) => i.op === 'COPY' && i.args.includes('pnpm-lock.yaml'));
    const copyAll = ins.findIndex((i) => i.op === 'COPY' && i.args === '. .');
    expect(copyLock).toBeGreaterThan(-1);
    expect(copyLock).toBeLessThan(copyAll);
  });

  test('runs as a non-root user in the final stage, app files not writable by it', () => {
    const runtimeStart = ins.findIndex((i) => i.op === 'FROM' && i.args.endsWith('AS runtime'));
    const users = ins.slice(runtimeStart).filter((i) => i.op === 'USER');
    expect(users.length).toBeGreaterThan(0);
    const last = users[users.length - 1]!.args;
    expect(last).not.toMatch(/^(root|0)(:|$)/);
    expect(last).toBe('1000:1000');
    const copyApp = ins.slice(runtimeStart).find((i) => i.op === 'COPY' && i.args.includes('--from=deps'));
    expect(copyApp?.args).not.toContain('--chown');
  });

  test('pg_dump is in the image (auth backups) at the PostgreSQL major the stack runs', () => {
    expect(dockerfile).toMatch(/^ARG PG_MAJOR=17$/m);
    expect(dockerfile).toContain('postgresql-client-${PG_MAJOR}');
    expect(readText('docker-compose.yml')).toMatch(/image: postgres:17\b/);
  });

  test('starts node services/$SERVICE/src/main.ts through the entrypoint, with a HEALTHCHECK on /health', () => {
    expect(ins.find((i) => i.op === 'ENTRYPOINT')?.args).toBe('["/usr/local/bin/exchange-service"]');
    expect(ins.find((i) => i.op === 'CMD')?.args).toBe('["serve"]');
    expect(ins.find((i) => i.op === 'HEALTHCHECK')?.args).toContain("/health')");
    expect(entrypointScript()).toContain('"services/${svc}/src/main.ts"');
  });

  test('no secret is baked into the image', () => {
    for (const i of ins.filter((x) => x.op === 'ENV' || x.op === 'ARG')) {
      expect(i.args).not.toMatch(/PASSWORD|TOKEN|SECRET|PRIVATE_KEY=/i);
    }
  });
});

describe('.dockerignore', () => {
  const ignore = readText('.dockerignore')
    .split('\n')
    .map((l) => l.trim());
  test.each(['**/node_modules', '.git', '.env', '.env.*', 'secrets', 'backups'])('excludes %s', (p) => {
    expect(ignore).toContain(p);
  });
  test('keeps docs/openapi.yaml for the docs server', () => {
    expect(ignore).toContain('/docs');
    expect(ignore).toContain('!docs/openapi.yaml');
  });
  test('keeps everything the workspace install needs', () => {
    for (const p of [
      'pnpm-lock.yaml',
      'pnpm-workspace.yaml',
      'package.json',
      '.npmrc',
      'packages',
      'services',
      'tools',
    ])
      expect(ignore).not.toContain(p);
  });
});

describe('exchange-service entrypoint (extracted from the Dockerfile, run with sh)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ops-entry-'));
  const script = join(dir, 'exchange-service');
  const bin = join(dir, 'bin');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  beforeAll(() => {
    writeFileSync(script, entrypointScript());
    chmodSync(script, 0o755);
    // A stand-in `node` that prints its arguments, to see what the script would exec.
    mkdirSync(bin);
    writeFileSync(join(bin, 'node'), '#!/bin/sh\necho "node $*"\n');
    chmodSync(join(bin, 'node'), 0o755);
  });

  function run(args: string[], env: Record<string, string>) {
    return spawnSync('sh', [script, ...args], {
      encoding: 'utf8',
      env: { PATH: `${bin}:/usr/bin:/bin`, APP_DIR: dir, ...env },
    });
  }

  test.each(SERVICES.map((s) => s.name))(
    'serve %s runs node with OpenTelemetry preloaded and the service main',
    (svc) => {
      const r = run([], { SERVICE: svc });
      expect(r.status).toBe(0);
      expect(r.stdout.trim()).toBe(`node --import ./packages/platform/src/instrument.ts services/${svc}/src/main.ts`);
    },
  );

  test('migrate runs the service migration entry; service can be given as an argument', () => {
    const r = run(['migrate', 'wallet'], {});
    expect(r.stdout.trim()).toBe('node services/wallet/src/migrate.ts');
  });

  test('docs runs the API reference server (Kong /docs upstream)', () => {
    expect(run(['docs'], {}).stdout.trim()).toBe('node tools/local-gateway/src/docs-main.ts');
  });

  test('db-roles provisions the per-service database roles (compose one-shot, migration hook)', () => {
    expect(run(['db-roles'], {}).stdout.trim()).toBe('node packages/db/src/provision-roles.ts');
  });

  test('web runs the web app server (Kong web upstream)', () => {
    expect(run(['web'], {}).stdout.trim()).toBe('node tools/local-gateway/src/web-main.ts');
  });

  test('refuses an unknown or missing SERVICE with exit 64', () => {
    expect(run([], { SERVICE: 'nope' }).status).toBe(64);
    const r = run([], {});
    expect(r.status).toBe(64);
    expect(r.stderr).toContain('SERVICE must be one of auth, wallet, order, payment-processor');
  });
});
