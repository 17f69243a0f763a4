/**
 * Development secrets that are public (they were committed to this repository, or are placeholders of
 * `.env.example`). A production process that finds one of them in its environment refuses to start: whoever holds
 * the repository would hold the keys.
 */
import { randomBytes } from 'node:crypto';

export const KNOWN_DEVELOPMENT_SECRETS: readonly string[] = [
  'exchange-dev-password',
  'dev-internal-token-0123456789abcdef',
  'ZGV2LW9ubHktc2lnbmluZy1rZXktZW5jcnlwdGlvbiE=',
  'ZGV2LW9ubHktYXBpLWtleS1lbmNyeXB0aW9uLWtleSE=',
  'dev-only-Operator-passphrase-7',
  'goalert-dev-password',
  'goalert-dev-only-encryption-key',
];

/** Markers of values nobody meant to run with. */
const PLACEHOLDER = /change-?me|dev-only|example-secret/i;

/** Names of the variables in `values` that hold a known development secret (substring: URLs embed passwords). */
export function developmentSecretsIn(values: Record<string, unknown>): string[] {
  return Object.entries(values)
    .filter(
      ([, v]) => typeof v === 'string' && (KNOWN_DEVELOPMENT_SECRETS.some((s) => v.includes(s)) || PLACEHOLDER.test(v)),
    )
    .map(([k]) => k);
}

const GENERATORS: Record<string, () => string> = {
  hex: () => randomBytes(24).toString('hex'),
  key32: () => randomBytes(32).toString('base64'),
  password: () => `Xch-${randomBytes(15).toString('base64url')}-9`,
};

/**
 * `.env` from `.env.example`: every variable annotated with a `# @generate <kind>` line above it (kind: hex, key32,
 * password) and left empty gets a fresh random value; everything else is copied as is.
 */
export function renderEnvFile(example: string): string {
  let pending: string | undefined;
  return example
    .split('\n')
    .map((line) => {
      const g = /^#\s*@generate\s+(\w+)/.exec(line);
      if (g) {
        if (!GENERATORS[g[1]!]) throw new Error(`.env.example: unknown generator ${g[1]}`);
        pending = g[1];
        return line;
      }
      const v = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
      if (v && pending) {
        const kind = pending;
        pending = undefined;
        return v[2] === '' ? `${v[1]}=${GENERATORS[kind]!()}` : line;
      }
      return line;
    })
    .join('\n');
}
