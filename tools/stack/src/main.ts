/**
 * `pnpm start`: the whole exchange on this machine against the local PostgreSQL and RabbitMQ.
 * Creates the `exchange` database and vhost, generates development secrets once (.stack/), starts auth, wallet,
 * payment-processor, order and the local gateway on :8000 with their logs prefixed, and stops everything on Ctrl-C.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureDatabase } from '@exchange/db';
import { ensureVhost, ROOT, Stack } from './stack.ts';
import { buildWebApp, webBuildIsStale } from './web-build.ts';

const stateDir = join(ROOT, '.stack');
mkdirSync(stateDir, { recursive: true });
const secretsFile = join(stateDir, 'secrets.json');
const secrets: Record<string, string> = existsSync(secretsFile)
  ? JSON.parse(readFileSync(secretsFile, 'utf8'))
  : {
      INTERNAL_API_TOKEN: randomBytes(24).toString('hex'),
      API_KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      SIGNING_KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      ADMIN_EMAIL: 'admin@exchange.local',
      ADMIN_PASSWORD: `Xch-${randomBytes(12).toString('base64url')}-9`,
    };
writeFileSync(secretsFile, JSON.stringify(secrets, null, 2), { mode: 0o600 });

const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/exchange';
const amqpUrl = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672/exchange';
const managementUrl = process.env.RABBITMQ_MANAGEMENT_URL ?? 'http://guest:guest@127.0.0.1:15672';

const colors = { auth: 36, wallet: 33, order: 35, 'payment-processor': 32, gateway: 34 } as Record<string, number>;
const tty = process.stdout.isTTY;

async function main() {
  // The gateway serves the web app at `/`: build it when there is no build or its sources changed.
  if (webBuildIsStale()) {
    process.stdout.write('building the web app (apps/web)…\n');
    buildWebApp();
  }
  await ensureDatabase(databaseUrl);
  await ensureVhost(managementUrl, decodeURIComponent(new URL(amqpUrl).pathname.slice(1) || '/'));
  const stack = new Stack({
    databaseUrl,
    amqpUrl,
    managementUrl,
    internalToken: secrets.INTERNAL_API_TOKEN!,
    stateDir,
    env: {
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
      API_KEY_ENCRYPTION_KEY: secrets.API_KEY_ENCRYPTION_KEY!,
      SIGNING_KEY_ENCRYPTION_KEY: secrets.SIGNING_KEY_ENCRYPTION_KEY!,
      BACKUP_DIR: join(stateDir, 'backups'),
      ADMIN_EMAIL: secrets.ADMIN_EMAIL!,
      ADMIN_PASSWORD: secrets.ADMIN_PASSWORD!,
      ...(process.env.OTEL_EXPORTER_OTLP_ENDPOINT
        ? { OTEL_EXPORTER_OTLP_ENDPOINT: process.env.OTEL_EXPORTER_OTLP_ENDPOINT }
        : {}),
    },
    onLine: (s, line) => {
      const name = s.padEnd(19);
      process.stdout.write(
        tty ? `\x1b[${colors[s.split('#')[0]!] ?? 37}m${name}\x1b[0m| ${line}\n` : `${name}| ${line}\n`,
      );
    },
  });
  let shuttingDown = false;
  const shutdown = async (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    process.stdout.write(`\n${signal}: stopping the stack…\n`);
    await stack.stop();
    process.stdout.write('stack stopped\n');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  try {
    await stack.start();
  } catch (err) {
    process.stderr.write(`stack failed to start: ${(err as Error).message}\n`);
    await stack.stop();
    process.exit(1);
  }
  for (const p of stack.processes) {
    void p.exited.then((code) => {
      if (!shuttingDown) {
        process.stderr.write(`${p.service} exited unexpectedly (code ${code}); stopping the stack\n`);
        void shutdown('child exit');
      }
    });
  }
  process.stdout.write(
    [
      '',
      'Exchange is up (host mode).',
      `  Web app:         http://localhost:${stack.ports.gateway}/`,
      `  Gateway (API):   http://localhost:${stack.ports.gateway}/api/v1/markets`,
      `  API docs:        http://localhost:${stack.ports.gateway}/docs`,
      `  Services:        auth :${stack.ports.auth}  wallet :${stack.ports.wallet}  order :${stack.ports.order}  payment-processor :${stack.ports['payment-processor']}  (each: /health /ready /metrics)`,
      `  Admin login:     ${secrets.ADMIN_EMAIL} / ${secrets.ADMIN_PASSWORD}   (from .stack/secrets.json)`,
      '  Stop:            Ctrl-C',
      '',
    ].join('\n'),
  );
}

void main();
