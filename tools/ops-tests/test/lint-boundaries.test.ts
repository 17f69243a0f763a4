// The package boundaries are held by `pnpm lint` (eslint.config.js). These probes lint code that crosses each boundary
// and expect the rule that guards it to fire, so a config change that silently drops a rule fails here.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ESLint } from 'eslint';
import { repoRoot } from '../src/helpers.ts';

const eslint = new ESLint({ cwd: repoRoot });

/** Lints `code` as if it were the file at `filePath` (an existing file, so the TypeScript project includes it). */
async function rulesFiredBy(code: string, filePath: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${repoRoot}/${filePath}` });
  return (result?.messages ?? []).map((m) => `${m.ruleId ?? 'parse'}: ${m.message}`);
}

it('a relative import into another workspace package fails', async () => {
  const fired = await rulesFiredBy(
    "import { loadConfig } from '../../../packages/config/src/index.ts';\nexport const x = loadConfig;\n",
    'tools/stack/src/probe.ts',
  );
  expect(fired).toEqual([expect.stringMatching(/^import-x\/no-relative-packages: .*@exchange\/config/)]);
});

it("an import into a package's src/ by name fails", async () => {
  const fired = await rulesFiredBy(
    "import { withTransaction } from '@exchange/db/src/index.ts';\nexport const x = withTransaction;\n",
    'tools/stack/src/probe.ts',
  );
  expect(fired).toEqual(
    expect.arrayContaining([
      expect.stringMatching(/^no-restricted-imports: .*exports/),
      expect.stringMatching(/^import-x\/no-unresolved/),
    ]),
  );
});

it("a deep import past a package's exports fails, an exported subpath passes", async () => {
  expect(
    await rulesFiredBy(
      "import { buildApp } from '@exchange/wallet/app';\nexport const x = buildApp;\n",
      'tools/stack/src/probe.ts',
    ),
  ).toEqual([expect.stringMatching(/^import-x\/no-unresolved: .*@exchange\/wallet\/app/)]);
  expect(
    await rulesFiredBy(
      "import { ConfigSchema } from '@exchange/wallet/config';\nexport const x = ConfigSchema;\n",
      'tools/stack/src/probe.ts',
    ),
  ).toEqual([]);
});

it('a service importing another service fails (tools may import a service through its exports)', async () => {
  const code = "import { ConfigSchema } from '@exchange/wallet/config';\nexport const x = ConfigSchema;\n";
  expect(await rulesFiredBy(code, 'services/order/src/main.ts')).toEqual([
    expect.stringMatching(/^no-restricted-imports: .*Services never import each other/),
  ]);
  expect(await rulesFiredBy(code, 'tools/stack/src/probe.ts')).toEqual([]);
}, 300_000);

// The first type-aware lint loads the TypeScript program: slow on a busy machine.
it('a floating promise in a service fails', async () => {
  const fired = await rulesFiredBy(
    'export async function f(): Promise<void> {}\nexport function g(): void {\n  f();\n}\n',
    'services/order/src/main.ts',
  );
  expect(fired).toEqual([expect.stringMatching(/^@typescript-eslint\/no-floating-promises/)]);
}, 300_000);

it('every workspace package lists its entry points explicitly (no wildcard in exports)', () => {
  const manifests = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '*/*/package.json'], {
    cwd: repoRoot,
    encoding: 'utf8',
  })
    .split('\n')
    .filter((f) => /^(packages|services|tools|apps)\/[^/]+\/package\.json$/.test(f) && existsSync(join(repoRoot, f)));
  expect(manifests.length).toBeGreaterThanOrEqual(20);
  const problems = manifests.flatMap((f) => {
    const { exports } = JSON.parse(readFileSync(join(repoRoot, f), 'utf8')) as { exports?: unknown };
    if (exports === undefined || exports === null || typeof exports !== 'object') return [`${f}: no exports map`];
    return Object.keys(exports)
      .filter((k) => k.includes('*'))
      .map((k) => `${f}: wildcard entry ${k}`);
  });
  expect(problems).toEqual([]);
});
