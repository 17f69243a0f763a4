/** Routes without credentials: markets, market data and the WebSocket stream (whose private channels take a token). */
import { AppError, errorResponses, Type, type App } from '@exchange/platform';
import { marketOr404, type OrderContext } from '../context.ts';
import { CANDLE_INTERVALS, type CandleInterval } from '../market-data/candles.ts';
import {
  BookSchema,
  CandleSchema,
  getBook,
  getCandles,
  getTicker,
  getTrades,
  TickerSchema,
  TradeSchema,
} from '../market-data/service.ts';
import { priceBand } from '../orders/validate.ts';
import { registerStream } from '../stream.ts';
import { MarketParams } from './schemas.ts';

const MarketSchema = Type.Object({
  symbol: Type.String(),
  base: Type.String(),
  quote: Type.String(),
  tickSize: Type.String(),
  lotSize: Type.String(),
  minQuantity: Type.String(),
  maxQuantity: Type.String(),
  minNotional: Type.String(),
  makerFeeBps: Type.Integer(),
  takerFeeBps: Type.Integer(),
  priceBandBps: Type.Integer(),
  halted: Type.Boolean(),
  haltReason: Type.Union([Type.String(), Type.Null()]),
  lastPrice: Type.Union([Type.String(), Type.Null()]),
  priceBand: Type.Union([Type.Object({ low: Type.String(), high: Type.String() }), Type.Null()], {
    description: 'Limit prices accepted right now (around the last trade); null before the first trade',
  }),
});

export function registerPublicRoutes(app: App, ctx: OrderContext): void {
  const { pool, catalog, orders } = ctx;

  app.get(
    '/api/v1/markets',
    {
      schema: {
        tags: ['markets'],
        summary: 'Markets with their trading rules, halted status and current price band',
        response: { 200: Type.Object({ markets: Type.Array(MarketSchema) }) },
      },
    },
    async () => {
      const states = await orders.allMarketStates();
      return {
        markets: [...catalog.markets.values()].map((m) => {
          const st = states.get(m.symbol);
          const last = st?.last_trade_ticks != null ? BigInt(st.last_trade_ticks) : undefined;
          const band = last !== undefined ? priceBand(m, last) : undefined;
          return {
            ...m.config,
            halted: st?.halted ?? false,
            haltReason: st?.halted ? st.halt_reason : null,
            lastPrice: last !== undefined ? m.ticksToPrice(last) : null,
            priceBand: band ? { low: m.ticksToPrice(band.low), high: m.ticksToPrice(band.high) } : null,
          };
        }),
      };
    },
  );

  app.get(
    '/api/v1/markets/:market/book',
    {
      schema: {
        tags: ['market-data'],
        summary: 'L2 order book (aggregated levels, best first)',
        params: MarketParams,
        querystring: Type.Object({ depth: Type.Integer({ minimum: 1, maximum: 200, default: 50 }) }),
        response: { 200: BookSchema, ...errorResponses(400, 404) },
      },
    },
    async (req) => getBook(pool, marketOr404(catalog, req.params.market), req.query.depth),
  );
  app.get(
    '/api/v1/markets/:market/trades',
    {
      schema: {
        tags: ['market-data'],
        summary: 'Recent trades, newest first',
        params: MarketParams,
        querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }) }),
        response: { 200: Type.Object({ trades: Type.Array(TradeSchema) }), ...errorResponses(400, 404) },
      },
    },
    async (req) => ({ trades: await getTrades(pool, marketOr404(catalog, req.params.market), req.query.limit) }),
  );
  app.get(
    '/api/v1/markets/:market/ticker',
    {
      schema: {
        tags: ['market-data'],
        summary: '24h ticker',
        params: MarketParams,
        response: { 200: TickerSchema, ...errorResponses(400, 404) },
      },
    },
    async (req) => getTicker(pool, marketOr404(catalog, req.params.market)),
  );
  app.get(
    '/api/v1/markets/:market/candles',
    {
      schema: {
        tags: ['market-data'],
        summary: 'OHLCV candles, oldest first',
        params: MarketParams,
        querystring: Type.Object({
          interval: Type.Union(
            Object.keys(CANDLE_INTERVALS).map((k) => Type.Literal(k)),
            { default: '1m' },
          ),
          from: Type.Optional(Type.String({ format: 'date-time' })),
          to: Type.Optional(Type.String({ format: 'date-time' })),
          limit: Type.Integer({ minimum: 1, maximum: 1000, default: 500 }),
        }),
        response: {
          200: Type.Object({ market: Type.String(), interval: Type.String(), candles: Type.Array(CandleSchema) }),
          ...errorResponses(400, 404),
        },
      },
    },
    async (req) => {
      const m = marketOr404(catalog, req.params.market);
      const q = req.query as { interval: CandleInterval; from?: string; to?: string; limit: number };
      return { market: m.symbol, interval: q.interval, candles: await getCandles(pool, m, q) };
    },
  );

  // Token verification for the WebSocket goes through the same auth plugin (JWKS, revocation) via the internal
  // route /internal/stream/whoami (routes/internal.ts).
  registerStream(app, {
    hub: ctx.hub,
    catalog,
    pool,
    cod: ctx.cod,
    log: app.log,
    onCodEnded: (e) => {
      ctx.metrics.sessionCancels.inc({ trigger: 'disconnect' });
      ctx.metrics.cancelRequests.inc({ reason: 'disconnect' }, e.cancelled);
    },
    async authenticate(token) {
      const res = await app.inject({
        method: 'GET',
        url: '/internal/stream/whoami',
        headers: { authorization: `Bearer ${token}`, 'x-internal-token': ctx.internalToken },
      });
      const body = res.json<{ userId?: string; error?: { code: string; message: string } }>();
      if (res.statusCode === 200 && body.userId) return body.userId;
      throw new AppError(
        res.statusCode >= 400 ? res.statusCode : 401,
        body.error?.code ?? 'UNAUTHENTICATED',
        body.error?.message ?? 'invalid token',
      );
    },
  });
}
