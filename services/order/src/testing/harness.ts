/** Test harness: a fresh database (migrated), a test JWT issuer, the wallet stub and the app (not listening). */
import { randomUUID } from 'node:crypto';
import type { Envelope } from '@exchange/contracts';
import { withTransaction } from '@exchange/db';
import { createTestDatabase, type TestDatabase } from '@exchange/db/testing';
import { loadCatalog } from '@exchange/contracts/markets';
import { createTestIssuer, type TestIssuer } from '@exchange/auth-client/testing';
import type { App } from '@exchange/platform';
import { buildApp, type AppDeps } from '../app.ts';
import { runMigrations } from '../migrate.ts';
import { createWalletClient } from '../clients/wallet-client.ts';
import { orderEventsHandler, type Applied } from '../messaging/order-events.ts';
import { createWalletStub, type WalletStub } from './wallet-stub.ts';

export interface Harness {
  db: TestDatabase;
  issuer: TestIssuer;
  wallet: WalletStub;
  app: App;
  /** A user with a token (and funds when `fund` is true). */
  user(opts?: {
    fund?: boolean;
    roles?: Array<'user' | 'admin' | 'support'>;
  }): Promise<{ id: string; token: string; auth: Record<string, string> }>;
  /** Apply an engine event as the `order.events` consumer does, in one transaction. */
  applyEvent(message: Envelope): Promise<Applied>;
  /** The payloads of the outbox messages of `type` (e.g. `engine.place-order`) for the order, in outbox order. */
  outboxPayloads(type: string, orderId: string): Promise<Array<Record<string, unknown>>>;
  close(): Promise<void>;
}

export async function createHarness(overrides: Partial<AppDeps> = {}): Promise<Harness> {
  const db = await createTestDatabase('order');
  await runMigrations(db.pool);
  const issuer = await createTestIssuer();
  const wallet = await createWalletStub(db.pool, issuer.internalToken);
  const app = await buildApp({
    pool: db.pool,
    catalog: loadCatalog(undefined),
    wallet: createWalletClient({ baseUrl: wallet.url, internalToken: issuer.internalToken, timeoutMs: 2000 }),
    auth: issuer.authOptions(),
    management: { managementUrl: 'http://guest:guest@127.0.0.1:15672', vhost: 'order-test-no-such-vhost' },
    fastify: { logger: false },
    ...overrides,
  });
  await app.ready();
  const handleEvent = orderEventsHandler({
    catalog: loadCatalog(undefined),
    log: { debug() {}, info() {}, warn() {}, error() {} },
  });
  return {
    db,
    issuer,
    wallet,
    app,
    async user(opts = {}) {
      const id = randomUUID();
      if (opts.fund !== false) {
        await wallet.credit(id, 'USD', 100_000_000n); // 1,000,000.00 USD
        await wallet.credit(id, 'BTC', 10_000_000_000n); // 100 BTC
        await wallet.credit(id, 'ETH', 100n * 10n ** 18n);
        await wallet.credit(id, 'USDT', 1_000_000_000_000n);
      }
      const roles = opts.roles ?? ['user'];
      // staff roles work only with 2FA enrolled: give staff tokens a fresh check
      const mfa = roles.some((r) => r !== 'user') ? { mfaAt: Math.floor(Date.now() / 1000) } : {};
      const token = issuer.sign({ sub: id, roles, ...mfa });
      return { id, token, auth: { authorization: `Bearer ${token}` } };
    },
    applyEvent(message) {
      return withTransaction(db.pool, (c) => handleEvent(message, c));
    },
    async outboxPayloads(type, orderId) {
      const { rows } = await db.pool.query<{ message: { payload: Record<string, unknown> } }>(
        `SELECT message FROM orders.outbox WHERE type = $1 AND message->'payload'->>'orderId' = $2 ORDER BY sequence`,
        [type, orderId],
      );
      return rows.map((r) => r.message.payload);
    },
    async close() {
      await app.close();
      await wallet.close();
      await issuer.close();
      await db.drop();
    },
  };
}
