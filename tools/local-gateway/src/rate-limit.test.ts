import { Redis } from 'ioredis';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { RateLimiter, SyncedCounters } from './rate-limit.ts';

// Redis that is down: nothing listens on port 1, no offline queue, no retries.
let dead: Redis;
beforeAll(() => {
  dead = new Redis({
    port: 1,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    // its socket never opened, so disconnect() would wait the default 2 s for a close that already happened
    disconnectTimeout: 1,
  });
  dead.on('error', () => {});
});
afterAll(() => dead.disconnect());

/** Runs `fn` and counts the client's writes to Redis meanwhile: one per round trip when commands are batched. */
async function countWrites<T>(client: Redis, fn: () => Promise<T>): Promise<[number, T]> {
  const stream = (client as unknown as { stream: { write: (...a: unknown[]) => boolean } }).stream;
  const write = stream.write.bind(stream);
  let writes = 0;
  stream.write = (...a: unknown[]) => {
    writes++;
    return write(...a);
  };
  try {
    const result = await fn();
    return [writes, result];
  } finally {
    stream.write = write;
  }
}

test('Redis down: a fault-tolerant limit lets the request through, a strict one (login, withdrawals) refuses it', async () => {
  const limiter = new RateLimiter({ redis: dead });
  const tolerant = await limiter.hit('r', '203.0.113.1', { minute: 5 }, { useRedis: true, faultTolerant: true });
  expect(tolerant.exceeded).toBe(false);
  await expect(
    limiter.hit('login', '203.0.113.1', { minute: 5 }, { useRedis: true, faultTolerant: false }),
  ).rejects.toBeDefined();
});

test('Redis: every period of a limit and a second scope are counted in one write to Redis', async () => {
  const redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true, enableAutoPipelining: true });
  await redis.connect();
  const prefix = `test:rl-pipeline:${process.pid}:${Date.now()}`;
  const limiter = new RateLimiter({ redis, keyPrefix: prefix });
  const both = () =>
    Promise.all([
      limiter.hit('orders:consumer', 'alice', { second: 30, minute: 1200 }, { useRedis: true }),
      limiter.hit('per-user', 'alice', { second: 20, minute: 600 }, { useRedis: true }),
    ]);
  try {
    await both(); // loads the counting script into Redis
    const [writes, [route, user]] = await countWrites(redis, both);
    expect(writes).toBe(1);
    // and each counter still counted: the second call of the test is the second hit of every counter
    expect(route.headers['X-RateLimit-Remaining-Second']).toBe('28');
    expect(route.headers['X-RateLimit-Remaining-Minute']).toBe('1198');
    expect(user.headers['X-RateLimit-Remaining-Minute']).toBe('598');
  } finally {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  }
});

describe('sync_rate (Kong 3.4+): counted in memory, synced to Redis', () => {
  const prefix = `test:rl-sync:${process.pid}:${Date.now()}`;
  let redis: Redis;
  // A clock in the middle of a minute, so that no window turns during a test unless the test moves it.
  let now = 0;
  const clock = () => now;
  const minuteKey = (scope: string, id: string) =>
    `${prefix}:${scope}:minute:${id}:${Math.floor(now / 60_000) * 60_000 + 60_000}`;

  beforeAll(async () => {
    redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true });
    await redis.connect();
  });
  beforeEach(() => {
    now = Math.floor(Date.now() / 60_000) * 60_000 + 30_000;
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  test('no Redis round trip on the request path; the hits reach Redis by the sync, none lost or doubled', async () => {
    const limiter = new RateLimiter({ redis, keyPrefix: prefix, nowMs: clock });
    const hit = () => limiter.hit('orders:ip', '203.0.113.7', { minute: 1200 }, { useRedis: true, syncRate: 60 });
    const [writes, last] = await countWrites(redis, async () => {
      const seen: string[] = [];
      for (let i = 0; i < 10; i++) seen.push(String((await hit()).headers['X-RateLimit-Remaining-Minute']));
      return seen;
    });
    expect(writes).toBe(0);
    expect(last).toEqual(['1199', '1198', '1197', '1196', '1195', '1194', '1193', '1192', '1191', '1190']);
    const key = minuteKey('orders:ip', '203.0.113.7');
    expect(await redis.get(key)).toBeNull(); // the sync (every 60 s here) has not run
    const [syncWrites] = await countWrites(redis, () => limiter.close()); // the gateway's close sends what is left
    expect(syncWrites).toBe(1); // one pipeline for every counter
    expect(await redis.get(key)).toBe('10');
    // the key ends with its window, like Kong's
    const ttl = await redis.pttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  test('a limit holds exactly on one node, and a new window starts a new count', async () => {
    const limiter = new RateLimiter({ redis, keyPrefix: prefix, nowMs: clock });
    const hit = () => limiter.hit('login:ip', '203.0.113.8', { minute: 3 }, { useRedis: true, syncRate: 60 });
    for (let i = 0; i < 3; i++) expect((await hit()).exceeded).toBe(false);
    const refused = await hit();
    expect(refused.exceeded).toBe(true);
    expect(refused.headers['X-RateLimit-Remaining-Minute']).toBe('0');
    expect(Number(refused.retryAfterSeconds)).toBe(30); // the window ends on the minute
    now += 60_000;
    expect((await hit()).headers['X-RateLimit-Remaining-Minute']).toBe('2');
    await limiter.close();
  });

  test('two gateway nodes on one Redis learn each other’s hits at the sync; the total is exact', async () => {
    const a = new RateLimiter({ redis, keyPrefix: prefix, nowMs: clock });
    const b = new RateLimiter({ redis, keyPrefix: prefix, nowMs: clock });
    const opts = { useRedis: true, syncRate: 60 };
    const remaining = async (node: RateLimiter) =>
      Number((await node.hit('r:ip', '203.0.113.9', { minute: 100 }, opts)).headers['X-RateLimit-Remaining-Minute']);
    expect([await remaining(a), await remaining(a), await remaining(a)]).toEqual([99, 98, 97]);
    expect(await remaining(b)).toBe(99); // b knows only its own hit
    await a.close(); // sends a's three hits: Redis has 3, and a learns no more than its own
    expect(await remaining(a)).toBe(96);
    expect(await remaining(b)).toBe(98); // b learns nothing until its own sync
    await b.close(); // sends b's two: Redis answers 5, every hit but a's last, not synced yet
    expect(await remaining(b)).toBe(94);
    await Promise.all([a.close(), b.close()]);
    expect(await redis.get(minuteKey('r:ip', '203.0.113.9'))).toBe('7');
  });

  test('the sync runs by itself every sync_rate seconds', async () => {
    now = Date.now();
    const limiter = new RateLimiter({ redis, keyPrefix: prefix, nowMs: clock });
    const id = `203.0.113.10-${now}`;
    for (let i = 0; i < 4; i++) await limiter.hit('s:ip', id, { hour: 1000 }, { useRedis: true, syncRate: 0.05 });
    const key = `${prefix}:s:ip:hour:${id}:${Math.floor(now / 3_600_000) * 3_600_000 + 3_600_000}`;
    const deadline = Date.now() + 5_000;
    while ((await redis.get(key)) !== '4' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(await redis.get(key)).toBe('4');
    await limiter.close();
  });

  test('a strict limit reads its counter at the first hit of a window (one round trip), then counts in memory', async () => {
    const limiter = new RateLimiter({ redis, keyPrefix: prefix, nowMs: clock });
    const opts = { useRedis: true, faultTolerant: false, syncRate: 60 };
    await redis.set(minuteKey('login:ip', '203.0.113.12'), '3'); // another node's hits, synced already
    const hit = () => limiter.hit('login:ip', '203.0.113.12', { minute: 5 }, opts);
    const [firstWrites, first] = await countWrites(redis, hit);
    expect(firstWrites).toBe(1); // INCR and PEXPIREAT in one MULTI
    expect(first.headers['X-RateLimit-Remaining-Minute']).toBe('1');
    const [laterWrites, later] = await countWrites(redis, hit);
    expect(laterWrites).toBe(0);
    expect(later.exceeded).toBe(false);
    expect((await hit()).exceeded).toBe(true);
    await limiter.close();
    expect(await redis.get(minuteKey('login:ip', '203.0.113.12'))).toBe('6');
  });

  test('Redis down: a fault-tolerant synced limit still counts in memory; a strict one refuses', async () => {
    const limiter = new RateLimiter({ redis: dead, keyPrefix: prefix, nowMs: clock });
    const hit = () => limiter.hit('r:ip', '203.0.113.11', { minute: 2 }, { useRedis: true, syncRate: 60 });
    expect((await hit()).exceeded).toBe(false);
    expect((await hit()).exceeded).toBe(false);
    expect((await hit()).exceeded).toBe(true);
    await expect(
      limiter.hit('login:ip', '203.0.113.11', { minute: 5 }, { useRedis: true, faultTolerant: false, syncRate: 60 }),
    ).rejects.toBeDefined();
    await limiter.close(); // its sync fails quietly and keeps the hits for the next one
  });

  test('a Redis that accepts and never answers does not hold the close', async () => {
    const sockets: Socket[] = [];
    const mute = createServer((socket) => sockets.push(socket)); // reads nothing, answers nothing
    await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve));
    const port = (mute.address() as AddressInfo).port;
    const client = new Redis({
      port,
      host: '127.0.0.1',
      enableReadyCheck: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    client.on('error', () => {});
    try {
      const counters = new SyncedCounters(client, 60_000, clock);
      await counters.increment(`${prefix}:mute`, now + 60_000);
      let closed = false;
      await Promise.race([counters.close(100).then(() => (closed = true)), delay(4_000, undefined, { ref: false })]);
      expect(closed).toBe(true);
    } finally {
      client.disconnect();
      for (const socket of sockets) socket.destroy();
      await new Promise((r) => mute.close(r));
    }
  });
});
