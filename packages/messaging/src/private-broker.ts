/**
 * A private RabbitMQ node for tests that restart the broker (restarting the shared node would break every other test
 * file running in parallel): the Debian rabbitmq-server on its own ports, data directory and node name; removed
 * afterwards. `@exchange/messaging/private-broker`.
 */
import { execFile } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePortBlock } from '@exchange/db/testing';

const run = promisify(execFile);

export interface PrivateBroker {
  url: string;
  node: string;
  port: number;
  /** Stop and start the RabbitMQ application (connections drop; durable queues and persistent messages survive). */
  restart(downMs?: number): Promise<void>;
  stopApp(): Promise<void>;
  startApp(): Promise<void>;
  /** kill -9 the node's VM (a crash, not a clean stop); `start()` brings it back with its data. */
  kill(): Promise<void>;
  /** Start the node again after `kill()`; resolves once it accepts connections. */
  start(): Promise<void>;
  rabbitmqctl(...args: string[]): Promise<string>;
  close(): Promise<void>;
}

function uid(name: string): { uid: number; gid: number } | undefined {
  try {
    // rabbitmq-server drops to the rabbitmq user; its data directory must be writable by it.
    const passwd = readFileSync('/etc/passwd', 'utf8');
    const line = passwd.split('\n').find((l) => l.startsWith(`${name}:`));
    if (!line) return undefined;
    const [, , u, g] = line.split(':');
    return { uid: Number(u), gid: Number(g) };
  } catch {
    return undefined;
  }
}

export async function startPrivateBroker(): Promise<PrivateBroker> {
  // below the ephemeral range, so the port is still free when the node starts its app again after stop_app
  const port = await freePortBlock(2);
  const distPort = port + 1;
  const node = `e2e${port}@localhost`;
  const dir = mkdtempSync(join(tmpdir(), 'rmq-'));
  mkdirSync(join(dir, 'mnesia'));
  mkdirSync(join(dir, 'log'));
  writeFileSync(join(dir, 'enabled_plugins'), '[].');
  writeFileSync(join(dir, 'rabbitmq.conf'), `listeners.tcp.local = 127.0.0.1:${port}\nloopback_users = none\n`);
  const owner = uid('rabbitmq');
  if (owner)
    for (const p of [
      dir,
      join(dir, 'mnesia'),
      join(dir, 'log'),
      join(dir, 'enabled_plugins'),
      join(dir, 'rabbitmq.conf'),
    ])
      chownSync(p, owner.uid, owner.gid);
  const env = {
    ...process.env,
    RABBITMQ_NODENAME: node,
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_PID_FILE: join(dir, 'pid'),
  };
  const ctl = async (...args: string[]) =>
    (await run('rabbitmqctl', ['-q', '-n', node, ...args], { env, timeout: 120_000 })).stdout;
  const start = async () => {
    await run('rabbitmq-server', ['-detached'], { env, timeout: 60_000 });
    await ctl('wait', join(dir, 'pid'), '--timeout', '90');
  };
  await start();
  const broker: PrivateBroker = {
    url: `amqp://guest:guest@127.0.0.1:${port}`,
    node,
    port,
    rabbitmqctl: ctl,
    stopApp: async () => void (await ctl('stop_app')),
    startApp: async () => void (await ctl('start_app')),
    async kill() {
      const pid = Number(readFileSync(join(dir, 'pid'), 'utf8').trim());
      process.kill(pid, 'SIGKILL');
      for (let i = 0; i < 100; i++) {
        try {
          process.kill(pid, 0);
        } catch {
          break; // gone
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      rmSync(join(dir, 'pid'), { force: true });
    },
    start,
    async restart(downMs = 1000) {
      await ctl('stop_app');
      await new Promise((r) => setTimeout(r, downMs));
      await ctl('start_app');
    },
    async close() {
      await ctl('stop').catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return broker;
}
