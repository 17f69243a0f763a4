/**
 * A stand-in for the wallet's internal hold API in this service's unit-level tests: a real HTTP server on port 0
 * over real Postgres tables (schema `wallet_stub` of the test database), with the wallet's contract:
 * 201 created / 200 identical replay / 409 conflicting reuse / 400 INSUFFICIENT_FUNDS, and release.
 * The cross-service tests use the real wallet.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type pg from 'pg';
import { withTransaction } from '@exchange/db';

export interface WalletStub {
  url: string;
  internalToken: string;
  /** Credit `amount` minor units of `asset` to the user's available balance. */
  credit(userId: string, asset: string, amount: bigint): Promise<void>;
  balance(userId: string, asset: string): Promise<{ available: bigint; held: bigint }>;
  holds(): Promise<Array<{ holdId: string; userId: string; asset: string; amount: bigint; status: string }>>;
  /** While set, every call answers 503 (the wallet is down). */
  setDown(down: boolean): void;
  /** While unset, `POST /internal/holds/batch` answers 404 (a wallet from before the batch route). */
  setBatchRoute(enabled: boolean): void;
  calls: Array<{ path: string; status: number }>;
  close(): Promise<void>;
}

export async function createWalletStub(pool: pg.Pool, internalToken: string): Promise<WalletStub> {
  await pool.query(`CREATE SCHEMA IF NOT EXISTS wallet_stub;
    CREATE TABLE IF NOT EXISTS wallet_stub.balances (user_id uuid, asset text, available numeric(38,0) NOT NULL,
      held numeric(38,0) NOT NULL, PRIMARY KEY (user_id, asset));
    CREATE TABLE IF NOT EXISTS wallet_stub.holds (hold_id uuid PRIMARY KEY, user_id uuid NOT NULL, asset text NOT NULL,
      amount numeric(38,0) NOT NULL, status text NOT NULL)`);
  let down = false;
  let batchRoute = true;
  const calls: WalletStub['calls'] = [];

  const server: Server = createServer((req, res) => {
    void handle(req).then(
      ({ status, body }) => {
        calls.push({ path: req.url ?? '', status });
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      },
      (err: unknown) => {
        calls.push({ path: req.url ?? '', status: 500 });
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'INTERNAL_ERROR', message: String(err) } }));
      },
    );
  });

  function hold(body: Record<string, string>): Promise<{ status: number; body: unknown }> {
    return withTransaction(pool, async (c) => {
      const amount = BigInt(body.amount!);
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`hold:${body.holdId}`]);
      const existing = await c.query<{ user_id: string; asset: string; amount: string }>(
        'SELECT user_id, asset, amount FROM wallet_stub.holds WHERE hold_id = $1 FOR UPDATE',
        [body.holdId],
      );
      const e = existing.rows[0];
      if (e) {
        const same = e.user_id === body.userId && e.asset === body.asset && BigInt(e.amount) === amount;
        return same
          ? { status: 200, body: { holdId: body.holdId, amount: amount.toString(), status: 'active' } }
          : { status: 409, body: { error: { code: 'HOLD_CONFLICT', message: 'hold id reused' } } };
      }
      const upd = await c.query(
        `UPDATE wallet_stub.balances SET available = available - $3, held = held + $3
          WHERE user_id = $1 AND asset = $2 AND available >= $3`,
        [body.userId, body.asset, amount.toString()],
      );
      if (upd.rowCount !== 1) {
        return { status: 400, body: { error: { code: 'INSUFFICIENT_FUNDS', message: 'insufficient funds' } } };
      }
      await c.query(
        `INSERT INTO wallet_stub.holds (hold_id, user_id, asset, amount, status) VALUES ($1,$2,$3,$4,'held')`,
        [body.holdId, body.userId, body.asset, amount.toString()],
      );
      return { status: 201, body: { holdId: body.holdId, amount: amount.toString(), status: 'active' } };
    });
  }

  async function handle(req: IncomingMessage): Promise<{ status: number; body: unknown }> {
    if (down) return { status: 503, body: { error: { code: 'UNAVAILABLE', message: 'down' } } };
    if (req.headers['x-internal-token'] !== internalToken) {
      return { status: 401, body: { error: { code: 'INVALID_INTERNAL_TOKEN', message: 'no' } } };
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString() || '{}') as Record<string, string>;
    const url = req.url ?? '';
    if (req.method === 'POST' && url === '/internal/holds') return hold(body);
    if (req.method === 'POST' && url === '/internal/holds/batch' && batchRoute) {
      const items = (body as unknown as { holds: Array<Record<string, string>> }).holds;
      const results = await Promise.all(
        items.map(async (b) => {
          const r = await hold(b);
          return r.status < 300 ? { status: r.status, hold: r.body } : { status: r.status, ...(r.body as object) };
        }),
      );
      return { status: 200, body: { results } };
    }
    const m = /^\/internal\/holds\/([0-9a-f-]{36})\/release$/.exec(url);
    if (req.method === 'POST' && m) {
      return withTransaction(pool, async (c) => {
        const { rows } = await c.query<{ user_id: string; asset: string; amount: string; status: string }>(
          'SELECT user_id, asset, amount, status FROM wallet_stub.holds WHERE hold_id = $1 FOR UPDATE',
          [m[1]],
        );
        const h = rows[0];
        if (!h) return { status: 404, body: { error: { code: 'HOLD_NOT_FOUND', message: 'no hold' } } };
        if (h.status === 'held') {
          await c.query(`UPDATE wallet_stub.holds SET status = 'released' WHERE hold_id = $1`, [m[1]]);
          await c.query(
            `UPDATE wallet_stub.balances SET available = available + $3, held = held - $3
              WHERE user_id = $1 AND asset = $2`,
            [h.user_id, h.asset, h.amount],
          );
        }
        return {
          status: 200,
          body: { hold: { holdId: m[1], status: 'released' }, released: h.status === 'held' ? h.amount : '0' },
        };
      });
    }
    return { status: 404, body: { error: { code: 'ROUTE_NOT_FOUND', message: 'not found' } } };
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    internalToken,
    calls,
    setDown: (d) => {
      down = d;
    },
    setBatchRoute: (enabled) => {
      batchRoute = enabled;
    },
    async credit(userId, asset, amount) {
      await pool.query(
        `INSERT INTO wallet_stub.balances (user_id, asset, available, held) VALUES ($1,$2,$3,0)
         ON CONFLICT (user_id, asset) DO UPDATE SET available = wallet_stub.balances.available + EXCLUDED.available`,
        [userId, asset, amount.toString()],
      );
    },
    async balance(userId, asset) {
      const { rows } = await pool.query<{ available: string; held: string }>(
        'SELECT available, held FROM wallet_stub.balances WHERE user_id = $1 AND asset = $2',
        [userId, asset],
      );
      return { available: BigInt(rows[0]?.available ?? 0), held: BigInt(rows[0]?.held ?? 0) };
    },
    async holds() {
      const { rows } = await pool.query<{
        hold_id: string;
        user_id: string;
        asset: string;
        amount: string;
        status: string;
      }>('SELECT hold_id, user_id, asset, amount, status FROM wallet_stub.holds ORDER BY hold_id');
      return rows.map((r) => ({
        holdId: r.hold_id,
        userId: r.user_id,
        asset: r.asset,
        amount: BigInt(r.amount),
        status: r.status,
      }));
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
