// The product's docs stand alone: every relative link or path a Markdown file names must resolve to a file inside
// this repository. A link that climbs out of the repository (to a design file, a sibling checkout) or points at a
// file that no longer exists is a broken promise to a reader of a fresh clone.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { repoRoot } from '../src/helpers.ts';

const markdownFiles = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '*.md'], {
  cwd: repoRoot,
  encoding: 'utf8',
})
  .split('\n')
  .filter((f) => f && !f.includes('node_modules/') && existsSync(join(repoRoot, f)));

interface Reference {
  file: string;
  line: number;
  target: string;
}

/** Markdown links `[text](target)`, and inline code naming a path that climbs (`../x`); `./x` in code is a value. */
export function referencesIn(file: string, text: string): Reference[] {
  const refs: Reference[] = [];
  text.split('\n').forEach((lineText, i) => {
    for (const m of lineText.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g))
      refs.push({ file, line: i + 1, target: m[1]! });
    for (const m of lineText.matchAll(/`(\.\.\/[^`\s]+)`/g)) refs.push({ file, line: i + 1, target: m[1]! });
  });
  return refs.filter((r) => !/^[a-z][a-z0-9+.-]*:/i.test(r.target) && !r.target.startsWith('#'));
}

function problem(ref: Reference): string | undefined {
  const path = ref.target.split('#')[0]!;
  if (!path) return undefined;
  const abs = resolve(repoRoot, dirname(ref.file), decodeURIComponent(path));
  const rel = relative(repoRoot, abs);
  if (rel.startsWith('..') || rel.startsWith(sep)) return 'points outside the repository';
  if (!existsSync(abs)) return 'points at a file that does not exist';
  return undefined;
}

describe('documentation links', () => {
  it('finds the Markdown files of the repository', () => {
    expect(markdownFiles).toEqual(expect.arrayContaining(['README.md', 'docs/architecture.md', 'docs/runbook.md']));
  });

  it('detects a link out of the repository and a missing file (the check itself can fail)', () => {
    const refs = referencesIn(
      'docs/x.md',
      'see [the contract](../../shared/DESIGN.md) and `../gone.md` and [ok](runbook.md)',
    );
    expect(refs.map((r) => [r.target, problem(r)])).toEqual([
      ['../../shared/DESIGN.md', 'points outside the repository'],
      ['runbook.md', undefined],
      ['../gone.md', 'points at a file that does not exist'],
    ]);
  });

  it('every relative link in every Markdown file resolves inside the repository', () => {
    const broken = markdownFiles.flatMap((file) =>
      referencesIn(file, readFileSync(join(repoRoot, file), 'utf8'))
        .map((ref) => ({ ref, why: problem(ref) }))
        .filter((r) => r.why)
        .map(({ ref, why }) => `${ref.file}:${ref.line} ${ref.target} ${why}`),
    );
    expect(broken).toEqual([]);
  });
});
