/**
 * The web app's production build (apps/web → apps/web/dist, served by the gateway at `/`). `pnpm start` builds it
 * when the sources are newer than the build; the browser tests always build it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './stack.ts';

export const WEB_DIR = join(ROOT, 'apps/web');
export const WEB_DIST = join(WEB_DIR, 'dist');

function newestMtime(path: string): number {
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  let newest = s.mtimeMs;
  for (const name of readdirSync(path))
    if (name !== 'node_modules') newest = Math.max(newest, newestMtime(join(path, name)));
  return newest;
}

/** True when there is no build or a source file (the app's or the SDK's) changed after it. */
export function webBuildIsStale(): boolean {
  const index = join(WEB_DIST, 'index.html');
  if (!existsSync(index)) return true;
  const built = statSync(index).mtimeMs;
  const sources = ['src', 'public', 'index.html', 'vite.config.ts', 'package.json'].map((p) => join(WEB_DIR, p));
  sources.push(join(ROOT, 'packages/sdk/src'), join(ROOT, 'packages/money/src'));
  return sources.some((p) => existsSync(p) && newestMtime(p) > built);
}

/** Run Vite's production build (a few seconds). */
export function buildWebApp(opts: { quiet?: boolean } = {}): void {
  execFileSync(process.execPath, [join(WEB_DIR, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn'], {
    cwd: WEB_DIR,
    stdio: opts.quiet ? 'pipe' : 'inherit',
  });
}
