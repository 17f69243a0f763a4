/**
 * Host mode: the whole exchange on this machine against the local PostgreSQL, RabbitMQ and Redis.
 *   start [--no-demo]   preflight, create the database and vhost, generate development secrets once (.stack/), start
 *                       the four services, the local gateway and the auxiliary processes (the demo market maker),
 *                       print a summary; Ctrl-C stops everything.
 *   stop                stop a stack started in another terminal (or left behind by a killed one).
 *   reset [--yes] [--no-start]   drop the host-mode database, vhost and .stack/, then start clean.
 *   preflight           only the checks.
 * Run through ./exchange (or pnpm start/stop/reset), which first makes sure Node 24 and the dependencies are there.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { ensureDatabase } from '@exchange/db';
import { DEMO_ACCOUNTS } from './demo/market-maker.ts';
import {
  backupAgeRecipient,
  databaseRoles,
  dropDatabaseRoles,
  hostSettings,
  loadSecrets,
  readPidFile,
  redactUrl,
  removePidFile,
  writePidFile,
  type HostSettings,
  type PidFile,
  type Secrets,
} from './host.ts';
import { outputFromEnv } from './logs.ts';
import { checkPostgres, checkRabbit, preflight } from './preflight.ts';
import { ensureVhost, internalTokenFor, ROOT, Stack, type AuxiliaryProcess } from './stack.ts';
import { buildWebApp, webBuildIsStale } from './web-build.ts';

const out = outputFromEnv();
const production = process.env.NODE_ENV === 'production';

/** A failure the user can act on: printed as one sentence, exit code 1, no stack trace. */
class Fatal extends Error {}

/**
 * Processes host mode runs next to the services, in start order. Adding one (a web app, a mail catcher) is one entry
 * here; `port` is checked free by preflight and `summary` lands in the start-up summary.
 */
function auxiliaryProcesses(s: HostSettings, secrets: Secrets, demo: boolean): AuxiliaryProcess[] {
  const gateway = `http://127.0.0.1:${s.ports.gateway}`;
  const m = s.mailPorts;
  return [
    // Every mail the exchange sends lands in MailDev (nothing leaves the machine); read them in its web UI.
    {
      name: 'maildev',
      command: [
        process.execPath,
        join(ROOT, 'tools/stack/node_modules/maildev/dist/bin/maildev.js'),
        '--smtp',
        String(m.maildevSmtp),
        '--ip',
        '127.0.0.1',
        '--web',
        String(m.maildevWeb),
        '--web-ip',
        '127.0.0.1',
        '--hide-extensions',
        'STARTTLS',
      ],
      port: m.maildevWeb,
      readyPath: '/api/email',
      summary: `Mail (MailDev):  http://localhost:${m.maildevWeb}/   (every mail: verification, reset, withdrawals; SMTP :${m.maildevSmtp})`,
    },
    {
      name: 'notification',
      script: 'services/notification/src/main.ts',
      port: m.notification,
      readyPath: '/ready',
      env: {
        PORT: String(m.notification),
        HOST: '127.0.0.1',
        OTEL_SERVICE_NAME: 'notification',
        INTERNAL_API_TOKEN: internalTokenFor(secrets.INTERNAL_API_TOKEN, 'notification'),
        SMTP_HOST: '127.0.0.1',
        SMTP_PORT: String(m.maildevSmtp),
        PUBLIC_WEB_URL: `http://localhost:${s.ports.gateway}`,
      },
      summary: `Notification:    :${m.notification} (/health /ready /metrics) consumes auth + wallet events, mails via MailDev`,
    },
    ...(demo
      ? [
          {
            name: 'demo',
            script: 'tools/stack/src/demo/main.ts',
            env: { EXCHANGE_URL: gateway, DEMO_PASSWORD: secrets.DEMO_PASSWORD },
            summary: `Demo market:     a market maker quotes and trades every market as ${DEMO_ACCOUNTS.maker} / ${DEMO_ACCOUNTS.taker} (orders "demo-…"; --no-demo turns it off)`,
          },
        ]
      : []),
  ];
}

async function start(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { demo: { type: 'boolean', default: !production } },
    allowNegative: true,
    strict: true,
  });
  const settings = hostSettings();
  refuseIfRunning(settings);
  const t0 = Date.now();
  const secrets = loadSecrets(settings.stateDir);
  const auxiliary = auxiliaryProcesses(settings, secrets, values.demo!);

  out.info(out.bold('Checking this machine…'));
  await runPreflight(settings, auxiliary);

  // The gateway serves the web app at `/`: build it when there is no build or its sources changed.
  if (webBuildIsStale()) {
    out.info('Building the web app (apps/web)…');
    buildWebApp({ quiet: true });
  }
  out.info(`Preparing database ${dbName(settings)} and RabbitMQ vhost "${settings.vhost}"…`);
  await ensureDatabase(settings.databaseUrl);
  const roles = await databaseRoles(settings.databaseUrl, secrets.DATABASE_ROLE_SEED).catch((err: Error) => {
    throw new Fatal(
      `Could not create the services' database roles as ${redactUrl(settings.databaseUrl)}: ${err.message}. ` +
        'DATABASE_URL must name a role that may create roles (the local superuser, or one with CREATEROLE).',
    );
  });
  // the notification service (an auxiliary process here) connects as its own role too
  for (const aux of auxiliary) {
    if (aux.name === 'notification') aux.env = { ...aux.env, DATABASE_URL: roles.serviceDatabaseUrls.notification };
  }
  const backupRecipient = backupAgeRecipient(join(settings.stateDir, 'backup-age-identity.txt'));
  await ensureVhost(settings.managementUrl, settings.vhost);

  const pids: PidFile = { pid: process.pid, startedAt: new Date().toISOString(), children: [] };
  writePidFile(settings.stateDir, pids);
  const stack = new Stack({
    databaseUrl: settings.databaseUrl,
    ...roles,
    amqpUrl: settings.amqpUrl,
    redisUrl: settings.redisUrl,
    managementUrl: settings.managementUrl,
    internalToken: secrets.INTERNAL_API_TOKEN,
    stateDir: settings.stateDir,
    ports: settings.ports,
    auxiliary,
    detached: true,
    env: {
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
      API_KEY_ENCRYPTION_KEY: secrets.API_KEY_ENCRYPTION_KEY,
      SIGNING_KEY_ENCRYPTION_KEY: secrets.SIGNING_KEY_ENCRYPTION_KEY,
      BACKUP_DIR: `${settings.stateDir}/backups`,
      // admin backups are age-encrypted; the private key stays in .stack/backup-age-identity.txt (restore side)
      ...(backupRecipient ? { BACKUP_AGE_RECIPIENTS: backupRecipient } : {}),
      ADMIN_EMAIL: secrets.ADMIN_EMAIL,
      ADMIN_PASSWORD: secrets.ADMIN_PASSWORD,
      // host mode is a development sandbox: users (and the demo market maker) fund themselves
      SANDBOX_DEPOSITS: process.env.SANDBOX_DEPOSITS ?? String(!production),
      // the demo accounts need no verification mail (the seeded admin is verified by the seed itself)
      EMAIL_PREVERIFIED: `${DEMO_ACCOUNTS.maker},${DEMO_ACCOUNTS.taker}`,
      ...(process.env.OTEL_EXPORTER_OTLP_ENDPOINT
        ? { OTEL_EXPORTER_OTLP_ENDPOINT: process.env.OTEL_EXPORTER_OTLP_ENDPOINT }
        : {}),
    },
    onLine: (label, line, stream) => out.processLine(label, line, stream),
    onProgress: (label, phase, ms) =>
      out.info(
        phase === 'starting'
          ? out.dim(
              `▸ starting ${label}${label in settings.ports && label !== 'gateway' ? ' (migrations, then HTTP)' : ''}…`,
            )
          : `${out.green('✓')} ${label} ${ms >= 100 ? `ready in ${(ms / 1000).toFixed(1)} s` : 'started'}`,
      ),
    onSpawn: (p) => {
      pids.children.push({ name: p.service, pid: p.child.pid ?? -1 });
      writePidFile(settings.stateDir, pids);
    },
  });

  let shuttingDown = false;
  const shutdown = async (why: string, code: number) => {
    if (shuttingDown) return;
    shuttingDown = true;
    out.info(`\n${why}: stopping the stack…`);
    await stack.stop();
    removePidFile(settings.stateDir);
    out.info('Stack stopped; data kept (the next start picks it up).');
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown('Ctrl-C', 0));
  process.on('SIGTERM', () => void shutdown('SIGTERM', 0));
  process.on('SIGHUP', () => void shutdown('SIGHUP', 0));
  // The children run in process groups of their own: whatever ends this process, they must not outlive it.
  process.on('exit', () => {
    for (const p of stack.processes)
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
  });
  try {
    await stack.start();
  } catch (err) {
    if (shuttingDown) return;
    shuttingDown = true;
    await stack.stop();
    removePidFile(settings.stateDir);
    throw new Fatal(`The stack did not start: ${(err as Error).message} (its log lines are above).`);
  }
  for (const p of stack.processes) {
    void p.exited.then((code) => {
      if (!shuttingDown) void shutdown(`${p.service} exited unexpectedly (code ${code})`, 1);
    });
  }
  summary(settings, secrets, auxiliary, Date.now() - t0);
}

function summary(s: HostSettings, secrets: Secrets, auxiliary: AuxiliaryProcess[], ms: number): void {
  const gw = `http://localhost:${s.ports.gateway}`;
  const p = s.ports;
  out.block([
    '',
    out.bold(out.green(`Exchange is up (host mode) in ${Math.round(ms / 1000)} s.`)),
    `  Web app:         ${gw}/`,
    `  API (gateway):   ${gw}/api/v1/markets`,
    `  API docs:        ${gw}/docs`,
    `  Services:        auth :${p.auth}  wallet :${p.wallet}  order :${p.order}  payment-processor :${p['payment-processor']}  (each /health /ready /metrics)`,
    `  Admin login:     ${secrets.ADMIN_EMAIL} / ${secrets.ADMIN_PASSWORD}   (kept in .stack/secrets.json)`,
    ...auxiliary.flatMap((a) => (a.summary ? [`  ${a.summary}`] : [])),
    `  Data:            database ${dbName(s)}, vhost "${s.vhost}"; kept across restarts (\`pnpm reset\` starts clean)`,
    `  Logs:            LOG_LEVEL=debug shows every request; LOG_FORMAT=json prints JSON`,
    '',
    out.bold('Try next') + ' (in a second terminal):',
    ...(process.execPath.startsWith(join(ROOT, '.tools'))
      ? ['  eval "$(./exchange env)"     # first: that terminal then uses the Node 24 and pnpm in .tools/']
      : []),
    `  curl -s ${gw}/api/v1/markets/BTC-USD/book`,
    `  pnpm exchange register --email you@example.com --password 'A-strong-pass-phrase-77'`,
    `  pnpm exchange login    --email you@example.com --password 'A-strong-pass-phrase-77'`,
    '  pnpm exchange deposit USD 5000 && pnpm exchange order place BTC-USD buy 0.01 --price 60000',
    '  pnpm exchange watch trades:BTC-USD',
    '',
    'Stop: Ctrl-C here, or `pnpm stop` from anywhere.',
    '',
  ]);
}

async function runPreflight(settings: HostSettings, auxiliary: AuxiliaryProcess[]): Promise<void> {
  const ports = [
    ...Object.entries(settings.ports).map(([name, port]) => ({ name, port })),
    ...auxiliary.flatMap((a) => (a.port ? [{ name: a.name, port: a.port }] : [])),
    { name: 'maildev smtp', port: settings.mailPorts.maildevSmtp },
  ];
  const results = await preflight({ settings, ports });
  const failed = results.filter((r) => !r.ok);
  for (const r of results.filter((x) => x.ok && !x.name.startsWith('port ')))
    out.info(`${out.green('✓')} ${r.message}`);
  if (!failed.length) {
    out.info(
      `${out.green('✓')} ports ${ports
        .map((p) => p.port)
        .sort((a, b) => a - b)
        .join(', ')} free`,
    );
    return;
  }
  for (const r of failed) process.stderr.write(`${out.red('✗')} ${r.message}\n`);
  throw new Fatal(`${failed.length} check${failed.length > 1 ? 's' : ''} failed; nothing was started.`);
}

function refuseIfRunning(settings: HostSettings): void {
  const running = readPidFile(settings.stateDir);
  if (!running || running.pid === process.pid) return;
  if (alive(running.pid)) {
    throw new Fatal(
      `An exchange stack is already running (pid ${running.pid}, started ${running.startedAt}): stop it with \`pnpm stop\` first.`,
    );
  }
  const left = running.children.filter((c) => alive(c.pid) && ours(c.pid));
  if (left.length) {
    throw new Fatal(
      `Processes of an earlier stack are still running without their runner (${left.map((c) => `${c.name} pid ${c.pid}`).join(', ')}): stop them with \`pnpm stop\` first.`,
    );
  }
}

/** Stop the stack recorded in the pid file: SIGTERM to the runner (it stops its children), then any stragglers. */
async function stop(quiet = false): Promise<void> {
  const settings = hostSettings();
  const rec = readPidFile(settings.stateDir);
  const left = rec ? [rec.pid, ...rec.children.map((c) => c.pid)].filter((pid) => alive(pid) && ours(pid)) : [];
  if (!rec || left.length === 0) {
    removePidFile(settings.stateDir);
    if (!quiet) out.info('No exchange stack is running.');
    return;
  }
  out.info(`Stopping the exchange stack (pid ${rec.pid})…`);
  if (alive(rec.pid)) {
    process.kill(rec.pid, 'SIGTERM');
    await waitGone([rec.pid], 30_000);
  }
  // Children of a runner that was killed outright (kill -9) are still ours to stop.
  const orphans = rec.children.map((c) => c.pid).filter((pid) => alive(pid) && ours(pid));
  for (const pid of orphans) process.kill(pid, 'SIGTERM');
  if (!(await waitGone(orphans, 15_000))) for (const pid of orphans.filter(alive)) process.kill(pid, 'SIGKILL');
  await waitGone([rec.pid, ...orphans], 5_000);
  removePidFile(settings.stateDir);
  out.info('Stopped.');
}

async function reset(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      yes: { type: 'boolean', short: 'y', default: false },
      start: { type: 'boolean', default: true },
      demo: { type: 'boolean', default: !production },
    },
    allowNegative: true,
    strict: true,
  });
  const s = hostSettings();
  const what = `the database ${dbName(s)}, the RabbitMQ vhost "${s.vhost}" and ${s.stateDir} (secrets, backups)`;
  if (!values.yes) {
    if (!process.stdin.isTTY) {
      throw new Fatal(`reset deletes ${what} and needs a confirmation: run \`pnpm reset --yes\` to skip the question.`);
    }
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    const answer = await rl.question(`This deletes ${what}. Type "reset" to go on: `);
    rl.close();
    if (answer.trim() !== 'reset') throw new Fatal('Nothing was deleted.');
  }
  await stop(true);
  try {
    await dropDatabase(s.databaseUrl);
    await dropDatabaseRoles(s.databaseUrl);
    await dropVhost(s.managementUrl, s.vhost);
  } catch (err) {
    // Say why in the preflight's words when a dependency is down; otherwise the error itself.
    const checks = [await checkPostgres(s.databaseUrl), ...(await checkRabbit(s.amqpUrl, s.managementUrl))];
    const down = checks.find((c) => !c.ok);
    throw new Fatal(down ? down.message : `Reset failed: ${(err as Error).message}`);
  }
  rmSync(s.stateDir, { recursive: true, force: true });
  out.info(`Deleted ${what}.`);
  if (values.start) await start(values.demo ? [] : ['--no-demo']);
}

async function dropDatabase(url: string): Promise<void> {
  const name = decodeURIComponent(new URL(url).pathname.slice(1));
  if (!/^[a-zA-Z0-9_]+$/.test(name)) throw new Error(`refusing to drop a database named "${name}"`);
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 3_000 });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

async function dropVhost(managementUrl: string, vhost: string): Promise<void> {
  const u = new URL(managementUrl);
  const auth = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
  const r = await fetch(`${u.protocol}//${u.host}/api/vhosts/${encodeURIComponent(vhost)}`, {
    method: 'DELETE',
    headers: { authorization: auth },
    signal: AbortSignal.timeout(10_000),
  });
  if (!r.ok && r.status !== 404) throw new Error(`RabbitMQ refused to delete vhost "${vhost}": HTTP ${r.status}`);
}

function dbName(s: HostSettings): string {
  return `"${decodeURIComponent(new URL(s.databaseUrl).pathname.slice(1))}" (${redactUrl(s.databaseUrl).replace(/\/[^/]*$/, '')})`;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid still runs one of this repository's processes (pids are reused after a reboot). */
function ours(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('main.ts');
  } catch {
    return true; // no /proc (macOS): trust the pid file
  }
}

async function waitGone(pids: number[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (pids.some(alive)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

async function main(): Promise<void> {
  // pnpm passes a literal `--` through (`pnpm start -- --no-demo`).
  const [command = 'start', ...argv] = process.argv.slice(2).filter((a) => a !== '--');
  switch (command) {
    case 'start':
      return start(argv);
    case 'stop':
      return stop();
    case 'reset':
      return reset(argv);
    case 'preflight': {
      const settings = hostSettings();
      const secrets = loadSecrets(settings.stateDir);
      await runPreflight(settings, auxiliaryProcesses(settings, secrets, !production));
      out.info('All checks passed.');
      return;
    }
    default:
      throw new Fatal(`Unknown command "${command}": use start, stop, reset or preflight.`);
  }
}

main().catch((err: unknown) => {
  const e = err as Error & { code?: string };
  // Our own sentences as they are; argument errors and anything unexpected as one line, never a stack trace.
  const message =
    err instanceof Fatal
      ? e.message
      : e.code?.startsWith('ERR_PARSE_ARGS')
        ? `${e.message} (see ./exchange help)`
        : `Unexpected error: ${e.message} (LOG_LEVEL=debug for details).`;
  process.stderr.write(`${out.red('✗')} ${message}\n`);
  if (!(err instanceof Fatal) && process.env.LOG_LEVEL === 'debug') process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
