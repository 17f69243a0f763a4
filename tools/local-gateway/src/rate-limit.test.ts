import { Redis } from 'ioredis';
import { RateLimiter } from './rate-limit.ts';

// Redis that is down: nothing listens on port 1, no offline queue, no retries.
let dead: Redis;
beforeAll(() => {
  dead = new Redis({
    port: 1,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  dead.on('error', () => {});
});
afterAll(() => dead.disconnect());

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
    const stream = (redis as unknown as { stream: { write: (...a: unknown[]) => boolean } }).stream;
    const write = stream.write.bind(stream);
    let writes = 0;
    stream.write = (...a: unknown[]) => {
      writes++;
      return write(...a);
    };
    const [route, user] = await both();
    stream.write = write;
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
