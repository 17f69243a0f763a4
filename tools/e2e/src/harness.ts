/**
 * Cross-service test harness: the real services as child processes (tools/stack), on ports of their own, against a
 * database and a RabbitMQ vhost (or a private broker) of their own, so e2e files run in parallel and re-run cleanly.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createTestDatabase, freePortBlock, type TestDatabase } from '@exchange/db/testing';
import { createTestVhost, type TestVhost } from '@exchange/messaging/testing';
import { startPrivateBroker, type PrivateBroker } from '@exchange/messaging/private-broker';
import { ExchangeClient } from '@exchange/sdk';
import { backupAgeRecipient, Stack, type ServiceName } from '@exchange/stack';

export interface TestStackOptions {
  services?: ServiceName[];
  replicas?: Partial<Record<ServiceName, number>>;
  /**
   * AMQP URL of a private broker (its default vhost); default: a fresh vhost on the shared broker, or with
   * `E2E_PRIVATE_BROKER=1` a private broker started (and removed) with the stack, for when the shared one is congested.
   */
  amqpUrl?: string;
  env?: Record<string, string>;
  serviceEnv?: Partial<Record<ServiceName, Record<string, string>>>;
  /** How long a (re)started process may take to answer /ready (default 60 s). */
  readyTimeoutMs?: number;
  /** Run on this database (kept on close: its owner drops it) instead of a fresh one, e.g. after a restore. */
  database?: TestDatabase;
  /**
   * Each service connects as its own database role (default: true for a fresh database, as host mode, compose and
   * the chart run them); a given `database` is used with its roles when it has them.
   */
  databaseRoles?: boolean;
}

export interface TestStack {
  stack: Stack;
  db: TestDatabase;
  vhost?: TestVhost;
  /** Every line the processes printed, prefixed with the process label. */
  logs: string[];
  url(service: ServiceName): string;
  /** An SDK client through the gateway, as a distinct client IP (the gateway trusts X-Forwarded-For in tests). */
  client(): ExchangeClient;
  close(): Promise<void>;
}

/** The first admin every e2e stack seeds. */
export const ADMIN = { email: 'root@e2e.test', password: 'Vault-door-1234-open' };

/**
 * Start the stack on random ports; a port another test run took meanwhile (EADDRINUSE) is retried on new ports, so
 * parallel runs on one machine do not fail each other by chance.
 */
export async function startTestStack(opts: TestStackOptions = {}): Promise<TestStack> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      if (attempt >= 3 || !(err as Error).message.includes('EADDRINUSE')) throw err;
    }
  }
}

async function startOnce(opts: TestStackOptions): Promise<TestStack> {
  const db = opts.database ?? (await createTestDatabase('e2e', { serviceRoles: opts.databaseRoles !== false }));
  const dropDb = opts.database ? async () => {} : () => db.drop();
  const broker: PrivateBroker | undefined =
    !opts.amqpUrl && process.env.E2E_PRIVATE_BROKER === '1' ? await startPrivateBroker() : undefined;
  const amqpUrl = opts.amqpUrl ?? broker?.url;
  // a fresh database (and its roles) must not outlive a broker that refuses the vhost
  const vhost = amqpUrl
    ? undefined
    : await createTestVhost('e2e').catch(async (err: unknown) => {
        await dropDb();
        throw err;
      });
  // below the ephemeral range: a crash test starts a killed service again on its port
  const base = await freePortBlock(6);
  const logs: string[] = [];
  // admin backups are encrypted to a key pair of this stack's (identity in /tmp/e2e-age-<db>.txt)
  const backupIdentityFile = `/tmp/e2e-age-${db.name}.txt`;
  const backupRecipient = backupAgeRecipient(backupIdentityFile);
  const stack = new Stack({
    databaseUrl: db.url,
    ...(db.serviceUrls && opts.databaseRoles !== false
      ? { serviceDatabaseUrls: db.serviceUrls, backupDatabaseUrl: db.backupUrl! }
      : {}),
    amqpUrl: amqpUrl ?? vhost!.url,
    internalToken: randomBytes(24).toString('hex'),
    stateDir: '/tmp',
    ports: { auth: base + 1, wallet: base + 2, order: base + 3, 'payment-processor': base + 4, gateway: base + 5 },
    env: {
      LOG_LEVEL: 'info',
      API_KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      SIGNING_KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      SIGNING_KEY_ACTIVATION_DELAY_SECONDS: '0',
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
      SANDBOX_DEPOSITS: 'true', // the e2e users fund themselves through the sandbox rail
      DEPOSIT_CONFIRMATION_MS: '100',
      SCHEDULER_POLL_MS: '100',
      // tests reconcile only after the flow has settled: nothing is in flight, so judge every order hold
      RECONCILIATION_GRACE_S: '0',
      PAYOUT_DELAY_MS: '50',
      PAYOUT_FAILURE_RATE: '0',
      TRUST_PROXY: 'true',
      // the machine's one Redis holds every stack's rate-limit counters: a file's limits must not count another's
      RATE_LIMIT_KEY_PREFIX: `local-gateway:rl:${db.name}`,
      BACKUP_DIR: `/tmp/e2e-backups-${db.name}`,
      ...(backupRecipient ? { BACKUP_AGE_RECIPIENTS: backupRecipient } : {}),
      ...opts.env,
    },
    ...(opts.serviceEnv ? { serviceEnv: opts.serviceEnv } : {}),
    ...(opts.services ? { services: opts.services } : {}),
    ...(opts.replicas ? { replicas: opts.replicas } : {}),
    ...(opts.readyTimeoutMs ? { readyTimeoutMs: opts.readyTimeoutMs } : {}),
    onLine: (s, line) => {
      logs.push(`[${s}] ${line}`);
      if (logs.length > 200_000) logs.splice(0, 50_000);
      if (process.env.E2E_VERBOSE) process.stdout.write(`[${s}] ${line}\n`);
    },
  });
  try {
    await stack.start();
  } catch (err) {
    await stack.stop();
    await dropDb();
    await vhost?.drop();
    rmSync(backupIdentityFile, { force: true });
    await broker?.close();
    throw new Error(`${(err as Error).message}\n--- last log lines ---\n${logs.slice(-40).join('\n')}`);
  }
  let ip = 1;
  return {
    stack,
    db,
    ...(vhost ? { vhost } : {}),
    logs,
    url: (s) => stack.url(s),
    client: () => {
      const n = ip++;
      return new ExchangeClient({
        baseUrl: stack.url('gateway'),
        headers: { 'x-forwarded-for': `198.51.100.${n % 250}` },
        retries: 2,
      });
    },
    async close() {
      await stack.stop();
      await dropDb();
      await vhost?.drop();
      rmSync(backupIdentityFile, { force: true });
      await broker?.close();
    },
  };
}

/** Poll `fn` until it returns a truthy value or the time is up (then throw with the last value/error). */
export async function eventually<T>(
  fn: () => Promise<T | undefined | false | null>,
  timeoutMs = 30_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
}
