/**
 * docs/configuration.md is generated from the services' env schemas (the same schemas that validate the environment
 * at start-up), so the documentation cannot drift from what the code accepts.
 *   node tools/stack/src/config-doc.ts          rewrite docs/configuration.md
 *   node tools/stack/src/config-doc.ts --check  exit 1 when it is out of date
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TObject, TSchema } from '@sinclair/typebox';
import { ConfigSchema as AuthEnv } from '@exchange/auth/config';
import { ConfigSchema as WalletEnv } from '@exchange/wallet/config';
import { ConfigSchema as OrderEnv } from '@exchange/order/config';
import { ConfigSchema as PaymentEnv } from '@exchange/payment-processor/config';
import { ConfigSchema as NotificationEnv } from '@exchange/notification/config';
import { ROOT } from './stack.ts';

const SERVICES: Array<[string, TObject]> = [
  ['auth', AuthEnv],
  ['wallet', WalletEnv],
  ['order', OrderEnv],
  ['payment-processor', PaymentEnv],
  ['notification', NotificationEnv],
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
    '`node tools/stack/src/config-doc.ts` (a test fails when it is stale). `./exchange start` sets all of them for host mode;',
    '`.env` and `docker-compose.yml` set them for compose; the Helm chart sets them from `values.yaml` and Secrets.',
    '`pnpm start` itself reads `EXCHANGE_PORT_BASE` (gateway on N, auth..payment-processor on N+1..N+4; default 8000',
    'and 3001..3004; the notification service on N+5 and MailDev on N+6 (web UI) and N+7 (SMTP), default 3005, 1080',
    'and 1025), `DATABASE_URL` and `AMQP_URL` (database and vhost, created when missing): a second stack next',
    'to the default one, e.g. for `pnpm bench:e2e` (tools/bench/README.md).',
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
    '| `RATE_LIMIT_KEY_PREFIX` | `local-gateway:rl` | prefix of those counters in Redis (gateways sharing one Redis share counters under one prefix) |',
    '| `TRUST_PROXY` | `false` | take the client IP from `X-Forwarded-For` |',
    '| `PER_USER_LIMIT_SECOND`, `PER_USER_LIMIT_MINUTE` | `20`, `600` | per verified `sub`; `0` disables |',
    "| `WEB_ROOT` | `apps/web/dist` | the built web app it serves for Kong's `web` routes |",
    '| `WEB_URL` | unset | proxy the `web` routes to this web server instead of serving `WEB_ROOT` |',
    "| `JAEGER_UI_URL` | `http://localhost:16686` | the operator console's trace links (rendered into `/config.js`; also read by the `web` container) |",
    '',
    '## host mode (`./exchange`, `tools/stack`)',
    '',
    '| variable | default | meaning |',
    '|---|---|---|',
    "| `DATABASE_URL` | `postgres://postgres@127.0.0.1:5432/exchange` | the database host mode creates, as a role that may create roles: each service then connects as its own role `<database>_auth`, … (owning only its schema; passwords from `DATABASE_ROLE_SEED` in `.stack/secrets.json`), auth's admin backups as `<database>_backup` (read-only) |",
    '| `AMQP_URL` | `amqp://guest:guest@127.0.0.1:5672/exchange` | broker and vhost (created through the management API) |',
    '| `RABBITMQ_MANAGEMENT_URL` | `http://guest:guest@127.0.0.1:15672` | management API (vhost creation, preflight) |',
    '| `REDIS_URL` | `redis://127.0.0.1:6379` | Redis of the gateway and the services |',
    '| `EXCHANGE_PORT_BASE` | unset (gateway 8000, services 3001-3004) | gateway on the base, auth/wallet/order/payment-processor on base+1..base+4 |',
    '| `EXCHANGE_STATE_DIR` | `.stack` | development secrets, backups (age-encrypted; the private key is `backup-age-identity.txt` there), the pid file of `stop` |',
    '| `EXCHANGE_MIN_FREE_DISK_MB` | `1024` | preflight fails below this much free disk |',
    '| `EXCHANGE_BOOTSTRAP` | `1` | `0`: never fetch Node 24 or pnpm into `.tools/`, fail with a message instead |',
    '| `LOG_LEVEL` | `info` | every process; `debug` adds one line per request |',
    "| `LOG_FORMAT` | pretty | `json`: the processes' JSON lines unchanged, no prefix or colour |",
    '| `NO_COLOR`, `FORCE_COLOR` | colour on a terminal | turn colours off / on |',
    '| `NODE_ENV` | `development` | `production` turns the demo market maker off |',
    '',
    '## every service (`@exchange/db`)',
    '',
    '| variable | default | meaning |',
    '|---|---|---|',
    '| `DB_PREPARED_STATEMENTS` | on | `off`: no server-side prepared statements (behind a pooler in transaction mode, or to compare in a benchmark); on: each pool prepares its repeated parameterised statements (packages/db/src/prepared.ts) |',
    "| `DB_PLAN_CACHE_MODE` | `force_generic_plan` | PostgreSQL's `plan_cache_mode` for every session of the pools: a prepared statement is planned once per connection; `auto` (PostgreSQL's default) re-plans batched statements on most executions (packages/db/src/index.ts) |",
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
