/**
 * docs/configuration.md is generated from the services' env schemas (the same schemas that validate the environment
 * at start-up), so the documentation cannot drift from what the code accepts.
 *   node tools/stack/src/config-doc.ts          rewrite docs/configuration.md
 *   node tools/stack/src/config-doc.ts --check  exit 1 when it is out of date
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TObject, TSchema } from '@sinclair/typebox';
import { AuthEnv } from '../../../services/auth/src/config.ts';
import { WalletEnv } from '../../../services/wallet/src/config.ts';
import { OrderEnv } from '../../../services/order/src/config.ts';
import { ConfigSchema as PaymentEnv } from '../../../services/payment-processor/src/config.ts';
import { ROOT } from './stack.ts';

const SERVICES: Array<[string, TObject]> = [
  ['auth', AuthEnv],
  ['wallet', WalletEnv],
  ['order', OrderEnv],
  ['payment-processor', PaymentEnv],
];

function typeOf(s: TSchema): string {
  if (s.anyOf)
    return (s.anyOf as TSchema[]).map((x) => (x.const !== undefined ? `\`${x.const}\`` : typeOf(x))).join(' | ');
  if (s.const !== undefined) return `\`${s.const}\``;
  return String(s.type ?? 'string');
}

const cell = (v: string) => v.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function render(): string {
  const out: string[] = [
    '# Configuration',
    '',
    'Every service validates its environment at start-up against a TypeBox schema (`services/<name>/src/config.ts`,',
    'built on `@exchange/config`); a missing or malformed variable stops the process with one message naming every',
    'offending variable (exit code 78). This file is generated from those schemas by',
    '`node tools/stack/src/config-doc.ts` (a test fails when it is stale). `pnpm start` sets all of them for host mode;',
    '`.env` and `docker-compose.yml` set them for compose; the Helm chart sets them from `values.yaml` and Secrets.',
    '',
  ];
  for (const [name, schema] of SERVICES) {
    out.push(`## ${name}`, '', '| variable | required | default | type | meaning |', '|---|---|---|---|---|');
    const required = new Set(schema.required ?? []);
    for (const [key, prop] of Object.entries(schema.properties as Record<string, TSchema>)) {
      const def = prop.default === undefined ? '' : `\`${JSON.stringify(prop.default)}\``;
      const req = required.has(key) && prop.default === undefined ? 'yes' : 'no';
      out.push(
        `| \`${key}\` | ${req} | ${cell(def)} | ${cell(typeOf(prop))} | ${cell(String(prop.description ?? ''))} |`,
      );
    }
    out.push('');
  }
  out.push(
    '## local gateway (`tools/local-gateway`, host mode and tests only)',
    '',
    '| variable | default | meaning |',
    '|---|---|---|',
    '| `PORT` | `8000` | listen port |',
    '| `KONG_CONFIG` | `kong/kong.yml` | the declarative Kong config it applies |',
    '| `AUTH_URL`, `WALLET_URL`, `ORDER_URL`, `PAYMENT_PROCESSOR_URL` | `http://127.0.0.1:3001..3004` | upstreams |',
    '| `AUTH_JWKS_URL` | `${AUTH_URL}/.well-known/jwks.json` | signing keys for the jwt plugin |',
    '| `REDIS_URL` | unset (memory) | rate-limit counters for `policy: redis` |',
    '| `TRUST_PROXY` | `false` | take the client IP from `X-Forwarded-For` |',
    '| `PER_USER_LIMIT_SECOND`, `PER_USER_LIMIT_MINUTE` | `20`, `600` | per verified `sub`; `0` disables |',
    "| `WEB_ROOT` | `apps/web/dist` | the built web app it serves for Kong's `web` routes |",
    '| `WEB_URL` | unset | proxy the `web` routes to this web server instead of serving `WEB_ROOT` |',
    "| `JAEGER_UI_URL` | `http://localhost:16686` | the operator console's trace links (rendered into `/config.js`; also read by the `web` container) |",
    '',
  );
  return out.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const path = join(ROOT, 'docs/configuration.md');
  const text = render();
  if (process.argv.includes('--check')) {
    const current = (() => {
      try {
        return readFileSync(path, 'utf8');
      } catch {
        return '';
      }
    })();
    if (current !== text) {
      process.stderr.write('docs/configuration.md is out of date: run `node tools/stack/src/config-doc.ts`\n');
      process.exit(1);
    }
  } else {
    writeFileSync(path, text);
  }
}
