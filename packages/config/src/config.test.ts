import { spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, Type, baseEnv, databaseEnv, internalEnv, loadConfig, renderEnvFile } from './index.ts';

const schema = Type.Object({ ...baseEnv(3001), ...databaseEnv, ...internalEnv });

describe('loadConfig', () => {
  it('applies defaults and converts numbers', () => {
    const cfg = loadConfig('svc', schema, { INTERNAL_API_TOKEN: 'x'.repeat(16), PORT: '4000' });
    expect(cfg.PORT).toBe(4000);
    expect(cfg.NODE_ENV).toBe('development');
    expect(cfg.DATABASE_URL).toMatch(/^postgres:/);
  });

  it('names every offending variable at once', () => {
    let err: unknown;
    try {
      loadConfig('svc', schema, { PORT: 'abc', NODE_ENV: 'staging', DATABASE_URL: 'not a url' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const names = (err as ConfigError).problems.map((p) => p.variable).sort();
    expect(names).toEqual(['DATABASE_URL', 'INTERNAL_API_TOKEN', 'NODE_ENV', 'PORT']);
    expect((err as Error).message).toContain('INTERNAL_API_TOKEN: is required but not set');
  });

  it('stops a process at start-up with one message naming the missing variable', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const script = join(dir, 'main.ts');
    writeFileSync(
      script,
      `import { loadConfigOrExit, Type, internalEnv } from ${JSON.stringify(new URL('./index.ts', import.meta.url).pathname)};
       loadConfigOrExit('demo', Type.Object({ ...internalEnv }));
       console.log('started');`,
    );
    const env = { ...process.env };
    delete env.INTERNAL_API_TOKEN;
    const r = spawnSync(process.execPath, [script], { env, encoding: 'utf8' });
    expect(r.status).toBe(78);
    expect(r.stdout).not.toContain('started');
    expect(r.stderr).toContain('demo: invalid configuration');
    expect(r.stderr).toContain('INTERNAL_API_TOKEN: is required but not set');
  });
});

describe('development secrets in production', () => {
  const committed = 'dev-internal-token-0123456789abcdef'; // was in the repository's .env
  it('refuses a known development secret in production mode, naming the variable', () => {
    let err: unknown;
    try {
      loadConfig('svc', schema, {
        NODE_ENV: 'production',
        INTERNAL_API_TOKEN: committed,
        DATABASE_URL: 'postgres://exchange:exchange-dev-password@postgres:5432/exchange',
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems.map((p) => p.variable).sort()).toEqual(['DATABASE_URL', 'INTERNAL_API_TOKEN']);
  });

  it('accepts it outside production, and a generated secret in production', () => {
    expect(loadConfig('svc', schema, { INTERNAL_API_TOKEN: committed }).INTERNAL_API_TOKEN).toBe(committed);
    const env = Object.fromEntries(
      renderEnvFile('# @generate hex\nINTERNAL_API_TOKEN=\n')
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('=') as [string, string]),
    );
    expect(env.INTERNAL_API_TOKEN).toMatch(/^[0-9a-f]{48}$/);
    expect(loadConfig('svc', schema, { NODE_ENV: 'production', ...env }).NODE_ENV).toBe('production');
  });
});
