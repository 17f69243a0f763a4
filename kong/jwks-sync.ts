/**
 * Keeps DB-less Kong's jwt credentials equal to the auth service's JWKS, without a restart: the chart runs this next
 * to Kong in the same pod. Every JWKS_SYNC_INTERVAL_SECONDS it reads the JWKS, writes its RSA signing keys into the
 * base kong.yml as the `exchange-auth` consumer's jwt_secrets (derive-jwt-credentials.ts, the same code the manual
 * rotation uses) and, when that differs from what Kong last got, loads it through Kong's admin API (POST /config on
 * the pod-local admin listener).
 *
 * Rotation needs no operator step: `cli.ts rotate-keys` publishes the new key at once and signs with it only after
 * SIGNING_KEY_ACTIVATION_DELAY_SECONDS, which the chart keeps above twice this interval, so Kong knows every key before
 * the first token signed with it arrives.
 *
 *   AUTH_JWKS_URL               the auth service's JWKS (http://auth:3001/.well-known/jwks.json)
 *   KONG_CONFIG                 the base kong.yml (the chart's ConfigMap)
 *   KONG_ADMIN_URL              Kong's admin API (http://127.0.0.1:8001)
 *   JWKS_SYNC_INTERVAL_SECONDS  poll interval (default 30)
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { credentialsFromJwks, rewriteKongConfig } from './derive-jwt-credentials.ts';

export interface SyncOptions {
  jwksUrl: string;
  kongConfigPath: string;
  kongAdminUrl: string;
}

/** One pass: returns 'loaded' when Kong got a new configuration, 'unchanged' otherwise. Throws on any failure. */
export async function syncOnce(opts: SyncOptions, state: { last?: string }): Promise<'loaded' | 'unchanged'> {
  const res = await fetch(opts.jwksUrl, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`GET ${opts.jwksUrl}: HTTP ${res.status}`);
  // credentialsFromJwks throws on a JWKS without RSA signing keys (auth mid-restore, a bad deploy): loading that
  // would lock every user out, so Kong keeps what it has
  const credentials = credentialsFromJwks((await res.json()) as { keys?: unknown });
  const config = rewriteKongConfig(await readFile(opts.kongConfigPath, 'utf8'), credentials, 'replace');
  if (config === state.last) return 'unchanged';
  const load = await fetch(`${opts.kongAdminUrl.replace(/\/$/, '')}/config`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(parse(config)),
    signal: AbortSignal.timeout(10_000),
  });
  if (!load.ok) throw new Error(`Kong refused the configuration: HTTP ${load.status} ${await load.text()}`);
  state.last = config;
  return 'loaded';
}

const log = (level: string, msg: string, extra: Record<string, unknown> = {}) =>
  process.stdout.write(
    `${JSON.stringify({ level, time: new Date().toISOString(), service: 'jwks-sync', msg, ...extra })}\n`,
  );

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const opts: SyncOptions = {
    jwksUrl: process.env.AUTH_JWKS_URL ?? 'http://auth:3001/.well-known/jwks.json',
    kongConfigPath: process.env.KONG_CONFIG ?? '/kong/declarative/kong.yml',
    kongAdminUrl: process.env.KONG_ADMIN_URL ?? 'http://127.0.0.1:8001',
  };
  const intervalMs = Number(process.env.JWKS_SYNC_INTERVAL_SECONDS ?? 30) * 1000;
  const state: { last?: string } = {};
  const tick = async () => {
    try {
      if ((await syncOnce(opts, state)) === 'loaded') log('info', 'Kong configuration loaded with the current JWKS');
    } catch (err) {
      log('error', 'JWKS sync failed; retrying', { err: err instanceof Error ? err.message : String(err) });
    }
  };
  await tick();
  const timer = setInterval(() => void tick(), intervalMs);
  process.on('SIGTERM', () => {
    clearInterval(timer);
    process.exit(0);
  });
}
