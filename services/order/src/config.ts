import { loadConfigOrExit, tradingServiceEnv, Type, type Static } from '@exchange/config';

const Url = (description: string, def: string) =>
  Type.String({ pattern: '^[a-z][a-z0-9+.-]*://', description, default: def });

export const ConfigSchema = Type.Object({
  ...tradingServiceEnv(3003),
  WALLET_URL: Url('Base URL of the wallet service (internal hold API)', 'http://127.0.0.1:3002'),
  WALLET_TIMEOUT_MS: Type.Integer({ minimum: 100, default: 5000, description: 'Timeout of one wallet call' }),
  RABBITMQ_MANAGEMENT_URL: Url(
    'RabbitMQ management API (credentials in the URL), for GET /api/health/trading',
    'http://guest:guest@127.0.0.1:15672',
  ),
  PENDING_ORDER_TIMEOUT_S: Type.Integer({
    minimum: 1,
    default: 30,
    description: 'A `pending` order (hold not confirmed) older than this is finished or released by the sweeper',
  }),
  SWEEP_INTERVAL_MS: Type.Integer({ minimum: 100, default: 5000, description: 'How often the recovery sweeper runs' }),
  MARKETS_FILE: Type.Optional(Type.String({ description: 'JSON market catalog; built-in defaults when unset' })),
  ORDER_RATE_PER_SECOND: Type.Number({
    exclusiveMinimum: 0,
    default: 20,
    description:
      'New orders per second per account, per replica (in-process bucket: with N replicas a user gets up to N×; set the per-replica share)',
  }),
  ORDER_RATE_BURST: Type.Integer({ minimum: 1, default: 40, description: 'Bucket size of ORDER_RATE_PER_SECOND' }),
  DEAD_MAN_POLL_MS: Type.Integer({
    minimum: 50,
    default: 1000,
    description: "How often each replica fires due dead-man's switches (the latency past a switch's deadline)",
  }),
  COD_HEARTBEAT_MS: Type.Integer({
    minimum: 100,
    default: 5000,
    description: 'How often a replica refreshes its cancel-on-disconnect sessions and sweeps stale ones',
  }),
  COD_STALE_MS: Type.Integer({
    minimum: 1000,
    default: 20000,
    description:
      'A cancel-on-disconnect session not refreshed for this long (its replica crashed) is ended and its orders cancelled; keep it well above COD_HEARTBEAT_MS',
  }),
  MAX_OPEN_ORDERS_PER_USER: Type.Integer({
    minimum: 1,
    default: 500,
    description: 'Open orders (pending, new, partially filled) one account may have; bounds the engine memory per user',
  }),
});
export type Config = Static<typeof ConfigSchema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return loadConfigOrExit('order', ConfigSchema, env);
}
