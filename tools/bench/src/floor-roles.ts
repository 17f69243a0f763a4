/**
 * The processes of `pnpm bench:floor`: the order path's hops with no exchange logic behind them, each in its own
 * process as in the stack. Run as `node floor-roles.ts <role> <port> [upstream] [database-url]`:
 * - `gateway`: fastify + @fastify/reply-from, as the local gateway proxies `/api/*`, to `upstream`;
 * - `order`: fastify, `POST /api/v1/orders` with the body schema of an order; with `upstream` it first takes a
 *   hold from the wallet skeleton over a keep-alive `node:http` agent, as the order service's wallet client does;
 *   with a database, it also runs the accept path's own statements (entry read, pending insert, finalize);
 * - `wallet`: fastify, `POST /internal/holds`; with a database, the hold is one insert that is its own transaction;
 * - `publisher` (`upstream` is an AMQP URL and queue): as `order`, but each order is published as a persistent message
 *   to a quorum queue on a confirm channel, and answered once the broker confirmed it;
 * - `engine` (same): consumes that queue and acks each message, as a consumer of the stack does.
 * Nothing is logged, traced or metered: the floor is what the hops themselves cost.
 */
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import replyFrom from '@fastify/reply-from';
import amqp from 'amqplib';
import Fastify from 'fastify';
import pg from 'pg';

const [role, portText, upstream, databaseUrl] = process.argv.slice(2);
const port = Number(portText);
const app = Fastify({ logger: false });
const pool =
  databaseUrl && databaseUrl !== '-'
    ? new pg.Pool({ connectionString: databaseUrl, max: 8, idleTimeoutMillis: 0 })
    : undefined;

const orderBody = {
  type: 'object',
  required: ['market', 'side', 'type', 'quantity', 'clientOrderId'],
  additionalProperties: false,
  properties: {
    market: { type: 'string', pattern: '^[A-Z0-9]{2,10}-[A-Z0-9]{2,10}$' },
    side: { type: 'string', enum: ['buy', 'sell'] },
    type: { type: 'string', enum: ['limit', 'market'] },
    price: { type: 'string', pattern: '^[0-9]+(\\.[0-9]+)?$' },
    quantity: { type: 'string', pattern: '^[0-9]+(\\.[0-9]+)?$' },
    timeInForce: { type: 'string', enum: ['GTC', 'IOC', 'FOK'] },
    clientOrderId: { type: 'string', minLength: 1, maxLength: 64 },
  },
} as const;

const orderReply = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    status: { type: 'string' },
    market: { type: 'string' },
    side: { type: 'string' },
    price: { type: 'string' },
    quantity: { type: 'string' },
    clientOrderId: { type: 'string' },
    createdAt: { type: 'string' },
  },
} as const;

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** `POST /api/v1/orders` as the order skeletons serve it: the order validated, `work` done, the order answered. */
function orderRoute(work: (id: string, body: Record<string, string>, user: string) => Promise<void>): void {
  app.post<{ Body: Record<string, string> }>(
    '/api/v1/orders',
    { schema: { body: orderBody, response: { 201: orderReply } } },
    async (req, reply) => {
      const id = randomUUID();
      await work(id, req.body, String(req.headers['x-forwarded-for'] ?? 'anon'));
      return reply.code(201).send({ id, status: 'new', ...req.body, createdAt: new Date().toISOString() });
    },
  );
}

/** The broker roles' connection and their quorum queue (`spec` is `<AMQP URL>#<queue>`). */
async function openQueue(spec: string): Promise<{ conn: amqp.ChannelModel; queue: string }> {
  const at = spec.lastIndexOf('#');
  const queue = spec.slice(at + 1);
  const conn = await amqp.connect(spec.slice(0, at), { noDelay: true });
  const ch = await conn.createChannel();
  await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  await ch.close();
  return { conn, queue };
}

function hold(body: string): Promise<void> {
  const url = new URL('/internal/holds', upstream);
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 201 ? resolve() : reject(new Error(`hold ${res.statusCode}`))));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

if (role === 'gateway') {
  await app.register(replyFrom, { base: upstream!, undici: { connections: 128, pipelining: 1 } });
  app.all('/api/*', (req, reply) => reply.from(req.url));
} else if (role === 'order') {
  if (pool) {
    await pool.query(`CREATE TABLE IF NOT EXISTS floor_orders (
      id uuid PRIMARY KEY, user_id text NOT NULL, client_order_id text NOT NULL, body jsonb NOT NULL,
      status text NOT NULL, UNIQUE (user_id, client_order_id))`);
    await pool.query(
      `CREATE TABLE IF NOT EXISTS floor_outbox (sequence bigserial PRIMARY KEY, message jsonb NOT NULL)`,
    );
  }
  orderRoute(async (id, body, user) => {
    if (pool) {
      await pool.query({
        name: 'entry',
        text: 'SELECT id FROM floor_orders WHERE user_id = $1 AND client_order_id = $2',
        values: [user, body.clientOrderId],
      });
      await pool.query({
        name: 'pending',
        text: `INSERT INTO floor_orders (id, user_id, client_order_id, body, status) VALUES ($1, $2, $3, $4, 'pending')`,
        values: [id, user, body.clientOrderId, body],
      });
    }
    if (upstream) await hold(JSON.stringify({ orderId: id, userId: user, asset: 'USD', amount: '600.00' }));
    if (pool) {
      await pool.query({
        name: 'finalize',
        text: `WITH u AS (UPDATE floor_orders SET status = 'new' WHERE id = $1 RETURNING id, body)
               INSERT INTO floor_outbox (message) SELECT jsonb_build_object('id', id, 'order', body) FROM u`,
        values: [id],
      });
    }
  });
} else if (role === 'wallet') {
  if (pool) {
    await pool.query(`CREATE TABLE IF NOT EXISTS floor_holds (
      id uuid PRIMARY KEY, order_id uuid NOT NULL UNIQUE, user_id text NOT NULL, amount numeric NOT NULL)`);
  }
  app.post<{ Body: { orderId: string; userId: string; amount: string } }>(
    '/internal/holds',
    {
      schema: {
        body: {
          type: 'object',
          required: ['orderId', 'userId', 'asset', 'amount'],
          properties: {
            orderId: { type: 'string' },
            userId: { type: 'string' },
            asset: { type: 'string' },
            amount: { type: 'string' },
          },
        },
      },
    },
    async (req, reply) => {
      const id = randomUUID();
      if (pool) {
        await pool.query({
          name: 'hold',
          text: 'INSERT INTO floor_holds (id, order_id, user_id, amount) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING',
          values: [id, req.body.orderId, req.body.userId, req.body.amount],
        });
      }
      return reply.code(201).send({ id, status: 'held' });
    },
  );
} else if (role === 'publisher') {
  const { conn, queue } = await openQueue(upstream!);
  const channel = await conn.createConfirmChannel();
  orderRoute(
    (id, body) =>
      new Promise<void>((resolve, reject) =>
        channel.publish(
          '',
          queue,
          Buffer.from(JSON.stringify({ type: 'PlaceOrderV1', orderId: id, ...body })),
          { persistent: true, messageId: id },
          (err) => (err ? reject(err) : resolve()),
        ),
      ),
  );
  app.addHook('onClose', () => conn.close());
} else if (role === 'engine') {
  const { conn, queue } = await openQueue(upstream!);
  const channel = await conn.createChannel();
  await channel.prefetch(256);
  await channel.consume(queue, (m) => {
    if (m) channel.ack(m);
  });
  // a process of its own, so its port only says it is up
  app.get('/health', async () => ({ ok: true }));
  app.addHook('onClose', async () => {
    await channel.deleteQueue(queue);
    await conn.close();
  });
} else {
  throw new Error(`unknown role ${role}`);
}

await app.listen({ host: '127.0.0.1', port });
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  void app
    .close()
    .then(() => pool?.end())
    .then(() => process.exit(0));
});
