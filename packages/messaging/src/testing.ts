import { randomBytes } from 'node:crypto';

const AMQP_BASE = process.env.TEST_RABBITMQ_URL ?? process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const MGMT_BASE = process.env.TEST_RABBITMQ_MANAGEMENT_URL ?? 'http://guest:guest@127.0.0.1:15672';

function mgmt(): { base: string; auth: string } {
  const u = new URL(MGMT_BASE);
  const auth =
    'Basic ' + Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
  u.username = '';
  u.password = '';
  return { base: u.toString().replace(/\/$/, ''), auth };
}

/** Call the RabbitMQ management HTTP API. */
export async function managementApi<T = unknown>(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<T> {
  const { base, auth } = mgmt();
  const res = await fetch(`${base}/api${path}`, {
    method,
    headers: {
      ...headers,
      authorization: auth,
      'content-type': 'application/json',
      // fetch keeps an idle connection open for 4 s, which holds a jest worker past the end of the run ("a worker
      // process has failed to exit gracefully") when a test file's last act is dropping its vhost
      connection: 'close',
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  if (!res.ok && !(method === 'DELETE' && res.status === 404)) {
    throw new Error(`RabbitMQ management ${method} ${path}: ${res.status} ${await res.text()}`);
  }
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export interface TestVhost {
  /** amqp URL for the vhost (guest credentials). */
  url: string;
  name: string;
  /** Force-close every client connection of this vhost from the broker side; returns how many were closed. */
  closeConnections(opts?: { namePrefix?: string; atLeast?: number; timeoutMs?: number }): Promise<number>;
  drop(): Promise<void>;
}

/** A fresh vhost (guest has full permissions) for one test file; `drop()` deletes it with everything in it. */
export async function createTestVhost(prefix = 'test'): Promise<TestVhost> {
  const name = `${prefix.replace(/[^a-z0-9_.-]/gi, '_')}_${randomBytes(5).toString('hex')}`;
  const v = encodeURIComponent(name);
  await managementApi('PUT', `/vhosts/${v}`, { description: 'test vhost', tags: 'test' });
  const user = decodeURIComponent(new URL(MGMT_BASE).username) || 'guest';
  await managementApi('PUT', `/permissions/${v}/${encodeURIComponent(user)}`, {
    configure: '.*',
    write: '.*',
    read: '.*',
  });
  const base = new URL(AMQP_BASE);
  base.pathname = `/${v}`;
  return {
    url: base.toString(),
    name,
    closeConnections: (opts) => closeVhostConnections(name, opts),
    async drop() {
      await managementApi('DELETE', `/vhosts/${v}`);
    },
  };
}

interface MgmtConnection {
  name: string;
  vhost: string;
  client_properties?: { connection_name?: string };
}

/**
 * Close the connections of `vhost` from the broker side (like an operator or a broker failover would).
 * The management API lists connections with a delay (stats interval), so this polls until at least `atLeast`
 * (default 1) matching connections are visible, up to `timeoutMs` (default 15 s).
 */
export async function closeVhostConnections(
  vhost: string,
  opts: { namePrefix?: string; atLeast?: number; timeoutMs?: number } = {},
): Promise<number> {
  const until = Date.now() + (opts.timeoutMs ?? 15_000);
  const atLeast = opts.atLeast ?? 1;
  for (;;) {
    const all = await managementApi<MgmtConnection[]>('GET', `/vhosts/${encodeURIComponent(vhost)}/connections`);
    const matching = all.filter(
      (c) => !opts.namePrefix || (c.client_properties?.connection_name ?? '').startsWith(opts.namePrefix),
    );
    if (matching.length >= atLeast || Date.now() > until) {
      for (const c of matching) {
        await managementApi('DELETE', `/connections/${encodeURIComponent(c.name)}`, undefined, {
          'x-reason': 'closed by test',
        });
      }
      return matching.length;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A relay's registration as the active one in this process, for tests of writers that wake it (wakeup.ts). */
export { registerActiveRelay, sessionDatabase } from './wakeup.ts';
