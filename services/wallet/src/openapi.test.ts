import { loadConfig } from '@exchange/config';
import { ConfigSchema } from './config.ts';
import { openapiDocument } from './openapi.ts';

test('the OpenAPI document builds without a database and lists every route with its error responses', async () => {
  const doc = (await openapiDocument()) as {
    paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
  };
  expect(Object.keys(doc.paths)).toEqual(
    expect.arrayContaining([
      '/api/v1/wallet/balances',
      '/api/v1/wallet/ledger',
      '/api/v1/wallet/deposits',
      '/api/v1/wallet/withdrawals',
      '/api/v1/wallet/withdrawals/{id}/cancel',
      '/api/v1/admin/reconciliation/run',
      '/api/v1/admin/reconciliation/reports/{id}',
      '/internal/holds',
      '/internal/holds/{id}/release',
    ]),
  );
  expect(Object.keys(doc.paths['/api/v1/wallet/withdrawals']!.post!.responses)).toEqual(
    expect.arrayContaining(['201', '400', '401', '403', '429', '503']),
  );
});

test('config: INTERNAL_API_TOKEN is required; numeric settings are validated', () => {
  expect(() => loadConfig('wallet', ConfigSchema, { DEPOSIT_CONFIRMATION_MS: '-5' })).toThrow(
    /INTERNAL_API_TOKEN: is required[\s\S]*DEPOSIT_CONFIRMATION_MS/,
  );
  const c = loadConfig('wallet', ConfigSchema, { INTERNAL_API_TOKEN: 'x'.repeat(16) });
  expect(c.PORT).toBe(3002);
  expect(c.DEPOSIT_CONFIRMATION_MS).toBe(5000);
});
