/**
 * `GET /api/health/trading` (KrystalineX runbook "Trading system operational"): per market, whether an engine
 * consumer is attached to its command queue (RabbitMQ management API: consumers, messages = queue depth), the age of
 * the last trade and the halted flag. 200 when every market has a consumer, else 503.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { MarketCatalog } from '@exchange/contracts/markets';
import { ROUTES } from '@exchange/contracts/trading';
import type { OrderService } from './orders/service.ts';

export const MarketHealth = Type.Object({
  market: Type.String(),
  status: Type.Union([Type.Literal('ok'), Type.Literal('no_consumer'), Type.Literal('unknown')]),
  halted: Type.Boolean(),
  engineConsumers: Type.Union([Type.Integer(), Type.Null()]),
  queueDepth: Type.Union([Type.Integer(), Type.Null()]),
  lastTradeAt: Type.Union([Type.String(), Type.Null()]),
  lastTradeAgeSeconds: Type.Union([Type.Integer(), Type.Null()]),
  error: Type.Optional(Type.String()),
});
export const TradingHealth = Type.Object({
  status: Type.Union([Type.Literal('healthy'), Type.Literal('unhealthy')]),
  tradingEnabled: Type.Boolean(),
  maintenance: Type.Boolean(),
  markets: Type.Array(MarketHealth),
  checkedAt: Type.String(),
});
export type TradingHealthBody = Static<typeof TradingHealth>;

export interface ManagementTarget {
  /** e.g. http://guest:guest@127.0.0.1:15672 */
  managementUrl: string;
  /** The vhost the order queues live in (from AMQP_URL's path). */
  vhost: string;
}

export function vhostOf(amqpUrl: string): string {
  const p = new URL(amqpUrl).pathname.replace(/^\//, '');
  return p === '' ? '/' : decodeURIComponent(p);
}

async function queueInfo(t: ManagementTarget, queue: string): Promise<{ consumers: number; messages: number } | null> {
  const u = new URL(t.managementUrl);
  const auth = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
  u.username = '';
  u.password = '';
  const base = u.toString().replace(/\/$/, '');
  const res = await fetch(`${base}/api/queues/${encodeURIComponent(t.vhost)}/${encodeURIComponent(queue)}`, {
    headers: { authorization: auth },
    signal: AbortSignal.timeout(3000),
  });
  if (res.status === 404) return null;
  if (!res.ok) throw new Error(`management API answered ${res.status}`);
  const j = (await res.json()) as { consumers?: number; messages?: number };
  return { consumers: j.consumers ?? 0, messages: j.messages ?? 0 };
}

export async function tradingHealth(
  t: ManagementTarget,
  catalog: MarketCatalog,
  orders: OrderService,
): Promise<TradingHealthBody> {
  const states = await orders.allMarketStates();
  const now = Date.now();
  const markets = await Promise.all(
    [...catalog.markets.keys()].map(async (market) => {
      const st = states.get(market);
      const base = {
        market,
        halted: st?.halted ?? false,
        lastTradeAt: st?.last_trade_at?.toISOString() ?? null,
        lastTradeAgeSeconds: st?.last_trade_at ? Math.floor((now - st.last_trade_at.getTime()) / 1000) : null,
      };
      try {
        const q = await queueInfo(t, ROUTES.ordersQueue(market));
        return {
          ...base,
          status: q && q.consumers > 0 ? ('ok' as const) : ('no_consumer' as const),
          engineConsumers: q?.consumers ?? 0,
          queueDepth: q?.messages ?? 0,
          ...(q ? {} : { error: 'queue does not exist' }),
        };
      } catch (err) {
        return {
          ...base,
          status: 'unknown' as const,
          engineConsumers: null,
          queueDepth: null,
          error: `management API unreachable: ${(err as Error).message}`,
        };
      }
    }),
  );
  const [tradingEnabled, maintenance] = await Promise.all([
    orders.opts.flags.isEnabled('trading'),
    orders.opts.flags.isEnabled('maintenance'),
  ]);
  return {
    status: markets.every((m) => m.status === 'ok') ? 'healthy' : 'unhealthy',
    tradingEnabled,
    maintenance,
    markets,
    checkedAt: new Date(now).toISOString(),
  };
}
