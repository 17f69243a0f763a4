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
