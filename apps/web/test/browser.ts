/**
 * Browser-test support: builds the web app, drives Debian's Chromium headless with playwright-core, checks pages
 * with axe-core, collects console errors, and saves screenshots (test artifacts; docs/screenshots on request).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generate } from 'otplib';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

const require = createRequire(import.meta.url);
export const WEB_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = resolve(WEB_DIR, '../..');
/** Every run's screenshots (CI keeps them as artifacts). */
export const ARTIFACTS = join(WEB_DIR, 'test-artifacts');
/** The few committed ones the README and docs show; written when UPDATE_SCREENSHOTS=1. */
export const DOCS_SHOTS = join(REPO, 'docs/screenshots');

export { buildWebApp } from '@exchange/stack';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
}

export interface Tab {
  context: BrowserContext;
  page: Page;
  /** console.error lines and uncaught page errors since the last `takeErrors`. */
  errors: string[];
  takeErrors(): string[];
}

export const DESKTOP = { width: 1280, height: 900 };
export const PHONE = { width: 390, height: 844 };

let ipCursor = 0;

/**
 * A browser context as its own client: own storage, own client IP (the test gateway trusts X-Forwarded-For, so
 * per-IP rate limits apply per context as they would per user), a viewport and a preferred color scheme.
 */
export async function openTab(
  browser: Browser,
  baseURL: string,
  opts: { viewport?: { width: number; height: number }; theme?: 'dark' | 'light'; staff?: boolean } = {},
): Promise<Tab> {
  // Staff work from the private network (Kong's admin routes allow private ranges only); traders from the internet.
  const n = (ipCursor++ % 250) + 1;
  const context = await browser.newContext({
    baseURL,
    viewport: opts.viewport ?? DESKTOP,
    colorScheme: opts.theme ?? 'dark',
    extraHTTPHeaders: { 'x-forwarded-for': opts.staff ? `10.20.0.${n}` : `203.0.113.${n}` },
  });
  if (opts.theme) await context.addInitScript((t) => localStorage.setItem('exchange.theme', t), opts.theme);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    // "Failed to load resource" names no URL in its text: the location does
    if (m.type() === 'error') errors.push(`console: ${m.text()}${m.location().url ? ` (${m.location().url})` : ''}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  return {
    context,
    page,
    errors,
    takeErrors: () => errors.splice(0, errors.length),
  };
}

const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

/** axe-core's serious and critical violations on the page as it is now (WCAG 2 A/AA rules and best practices). */
export async function seriousViolations(page: Page): Promise<AxeViolation[]> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ content: AXE_SOURCE });
  const result = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (ctx: Document, o: object) => Promise<any> } }).axe;
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return (
      r.violations as Array<{ id: string; impact: string | null; help: string; nodes: Array<{ target: string[] }> }>
    ).map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')) }));
  });
  return result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/** Save a full-page screenshot as a test artifact (and into docs/screenshots when UPDATE_SCREENSHOTS=1). */
export async function screenshot(page: Page, name: string, opts: { docs?: boolean } = {}): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true, animations: 'disabled' });
  if (opts.docs && process.env.UPDATE_SCREENSHOTS === '1') {
    mkdirSync(DOCS_SHOTS, { recursive: true });
    await page.screenshot({ path: join(DOCS_SHOTS, `${name}.png`), fullPage: false, animations: 'disabled' });
  }
}

const usedSteps = new Map<string, number>();

/**
 * A TOTP code the server has not seen yet. It accepts one 30 s step either side and each step once per user, so
 * successive logins use the next unused step and wait for the clock only when the window is used up.
 */
export async function freshTotp(secret: string): Promise<string> {
  for (;;) {
    const now = Math.floor(Date.now() / 1000 / 30);
    const step = Math.max((usedSteps.get(secret) ?? -Infinity) + 1, now);
    if (step <= now + 1) {
      usedSteps.set(secret, step);
      return generate({ secret, epoch: step * 30 + 1 });
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}
