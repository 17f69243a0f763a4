// The commit-msg hook the repository installs (.githooks/commit-msg, `./exchange setup` points core.hooksPath at
// it): real commits in a scratch repository, accepted or refused by the hook.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../src/helpers.ts';

const hooks = join(repoRoot, '.githooks');
let repo: string;

const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, encoding: 'utf8' });

beforeEach(() => {
  repo = mkdtempSync(join(tmpdir(), 'commit-msg-'));
  git('init', '-q', '-b', 'main');
  git('config', 'user.email', 'dev@exchange.local');
  git('config', 'user.name', 'Dev');
  git('config', 'core.hooksPath', hooks);
  writeFileSync(join(repo, 'README.md'), 'start\n');
  git('add', '.');
  git('commit', '-q', '--no-verify', '-m', 'Initial commit');
});
afterEach(() => rmSync(repo, { recursive: true, force: true }));

/** Stages `lines` changed lines in `file` and commits with `message`; returns the hook's verdict. */
function commit(message: string, lines = 3, file = 'src.ts'): { ok: boolean; stderr: string } {
  writeFileSync(join(repo, file), Array.from({ length: lines }, (_, i) => `line ${i}`).join('\n') + '\n');
  git('add', file);
  const r = spawnSync('git', ['commit', '-q', '-F', '-'], { cwd: repo, input: message, encoding: 'utf8' });
  return { ok: r.status === 0, stderr: r.stderr };
}

it('the repository installs the hook with ./exchange setup', () => {
  expect(readFileSync(join(repoRoot, 'exchange'), 'utf8')).toMatch(/git config core\.hooksPath \.githooks/);
});

it('accepts a short subject for a small change', () => {
  expect(commit('Fix the typo in the wallet README')).toEqual({ ok: true, stderr: '' });
  expect(git('log', '-1', '--format=%s')).toBe('Fix the typo in the wallet README\n');
});

it('refuses a subject of 72 characters or more, accepts 71', () => {
  const refused = commit('x'.repeat(72));
  expect(refused.ok).toBe(false);
  expect(refused.stderr).toMatch(/subject is 72 characters; keep it under 72/);
  expect(commit('y'.repeat(71)).ok).toBe(true);
});

it('refuses an empty message and a body glued to the subject', () => {
  expect(commit('# only a comment\n').stderr).toMatch(/(message is empty|empty commit message)/);
  const glued = commit('Subject line\nbody without a blank line');
  expect(glued.ok).toBe(false);
  expect(glued.stderr).toMatch(/one blank line between the subject and the body/);
});

it('a large change needs a body that says why; a small one does not', () => {
  const bare = commit('Rewrite the settlement path', 200);
  expect(bare.ok).toBe(false);
  expect(bare.stderr).toMatch(/changes 200 lines \(more than 150\): add a body/);
  expect(commit('Rewrite the settlement path', 200, 'other.ts').ok).toBe(false);
  expect(
    commit('Rewrite the settlement path\n\nOne transaction per batch: the per-message commit was the ceiling.', 200).ok,
  ).toBe(true);
  expect(commit('Small follow-up', 150, 'small.ts').ok).toBe(true);
});

it('generated files do not count towards a large change', () => {
  expect(commit('Regenerate the lockfile', 400, 'pnpm-lock.yaml').ok).toBe(true);
});

it('ignores comment lines and the scissors section git adds to the message', () => {
  const message = `Short subject\n# ${'c'.repeat(100)}\n# ------------------------ >8 ------------------------\n${'d'.repeat(200)}\n`;
  expect(commit(message).ok).toBe(true);
});
