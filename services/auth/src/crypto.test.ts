import { Sealer } from './crypto.ts';
import { passwordProblems } from './users/passwords.ts';

describe('Sealer (AES-256-GCM)', () => {
  const sealer = new Sealer(Buffer.alloc(32, 7).toString('base64'));
  test('round trip; a fresh IV each time', () => {
    const a = sealer.seal('top secret', 'row-1');
    expect(sealer.open(a, 'row-1')).toBe('top secret');
    expect(sealer.seal('top secret', 'row-1')).not.toBe(a);
  });
  test('wrong AAD (secret moved to another row), tampering, or another key fail', () => {
    const a = sealer.seal('top secret', 'row-1');
    expect(() => sealer.open(a, 'row-2')).toThrow();
    const parts = a.split('.');
    const ct = Buffer.from(parts[3]!, 'base64url');
    ct[0] = ct[0]! ^ 1;
    expect(() => sealer.open([parts[0], parts[1], parts[2], ct.toString('base64url')].join('.'), 'row-1')).toThrow();
    expect(() => new Sealer(Buffer.alloc(32, 8).toString('base64')).open(a, 'row-1')).toThrow();
  });
  test('keys must be 32 bytes', () => {
    expect(() => new Sealer(Buffer.alloc(16).toString('base64'))).toThrow();
  });
});

describe('password policy', () => {
  test.each([
    ['correct horse battery staple', 'a@example.com', []],
    ['short', 'a@example.com', ['must be at least 12 characters']],
    ['password1234', 'a@example.com', ['is a commonly used password']],
    ['johnsmith-rules-ok', 'johnsmith@example.com', ['must not contain your email']],
    ['🔐🔐🔐🔐🔐🔐🔐🔐🔐🔐🔐🔐', 'a@example.com', ['must contain at least 5 different characters']],
  ])('%s', (pw, email, problems) => {
    expect(passwordProblems(pw, email)).toEqual(problems);
  });
});
