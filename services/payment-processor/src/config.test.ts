import { loadConfig, ConfigError } from '@exchange/config';
import { ConfigSchema } from './config.ts';
import { openapiDocument } from './openapi.ts';
import { selectMarkets } from './runtime.ts';

const base = { INTERNAL_API_TOKEN: 'x'.repeat(20) };

describe('config', () => {
  it('defaults to every catalog market and the documented knobs', () => {
    const c = loadConfig('payment-processor', ConfigSchema, base);
    expect(c.PORT).toBe(3004);
    expect(c.SNAPSHOT_EVERY).toBe(500);
    expect(selectMarkets(c).map((m) => m.symbol)).toEqual(['BTC-USD', 'ETH-USD', 'BTC-USDT']);
    expect(selectMarkets({ ...c, MARKETS: 'ETH-USD' }).map((m) => m.symbol)).toEqual(['ETH-USD']);
    expect(() => selectMarkets({ ...c, MARKETS: 'DOGE-USD' })).toThrow(/unknown market DOGE-USD/);
  });

  it('names every bad variable at once', () => {
    try {
      loadConfig('payment-processor', ConfigSchema, {
        MARKETS: 'btc usd',
        PAYOUT_FAILURE_RATE: '2',
        SNAPSHOT_EVERY: '0',
      });
      throw new Error('should have failed');
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).problems.map((p) => p.variable).sort()).toEqual(
        ['INTERNAL_API_TOKEN', 'MARKETS', 'PAYOUT_FAILURE_RATE', 'SNAPSHOT_EVERY'].sort(),
      );
    }
  });
});

describe('openapi', () => {
  it('documents the admin routes without connecting to anything', async () => {
    const doc = (await openapiDocument()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/api/v1/admin/engine/markets',
        '/api/v1/admin/dead-letters/payment-processor',
        '/api/v1/admin/dead-letters/payment-processor/{id}/retry',
        '/ready',
      ]),
    );
  });
});
