/**
 * The SDK's hand-written types (types.ts) against docs/openapi.yaml, the contract the services generate. Types are
 * generated from the spec with openapi-typescript, then the TypeScript compiler checks, for every SDK type and the
 * operation that carries it, that each is assignable to the other. A field added, dropped, renamed, made optional or
 * retyped on either side fails here with the compiler's explanation.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import openapiTS, { astToString } from 'openapi-typescript';
import ts from 'typescript';

const SPEC = new URL('../../../docs/openapi.yaml', import.meta.url);
const TYPES = fileURLToPath(new URL('./types.ts', import.meta.url));

/**
 * [SDK type, OpenAPI type]. `Ok<path, method>` is the JSON body of the operation's 2xx responses, `Body<path, method>`
 * its JSON request body.
 */
const PAIRS: Array<[string, string]> = [
  // auth
  ['T.User', "Ok<'/api/v1/auth/me', 'get'>"],
  ['T.LoginRequest', "Body<'/api/v1/auth/login', 'post'>"],
  ['T.LoginResult', "Ok<'/api/v1/auth/login', 'post'>"],
  ['T.TokenPair', "Ok<'/api/v1/auth/refresh', 'post'>"],
  ['T.AccessToken', "Ok<'/api/v1/auth/2fa/challenge', 'post'>"],
  ['T.AccessToken & { recoveryCodes: string[] }', "Ok<'/api/v1/auth/2fa/verify', 'post'>"],
  ['T.TwoFactorSetup', "Ok<'/api/v1/auth/2fa/setup', 'post'>"],
  ['{ sessions: T.AuthSession[] }', "Ok<'/api/v1/auth/sessions', 'get'>"],
  ['{ apiKeys: T.ApiKey[] }', "Ok<'/api/v1/auth/api-keys', 'get'>"],
  ['T.CreatedApiKey', "Ok<'/api/v1/auth/api-keys', 'post'>"],
  ['{ label: string; scopes: T.ApiKeyScope[] }', "Body<'/api/v1/auth/api-keys', 'post'>"],
  // wallet
  ['{ balances: T.Balance[] }', "Ok<'/api/v1/wallet/balances', 'get'>"],
  ['{ entries: T.LedgerEntry[]; nextCursor: string | null }', "Ok<'/api/v1/wallet/ledger', 'get'>"],
  ['T.Deposit', "Ok<'/api/v1/wallet/deposits', 'post'>"],
  ['{ deposits: T.Deposit[] }', "Ok<'/api/v1/wallet/deposits', 'get'>"],
  ['T.Deposit', "Ok<'/api/v1/wallet/deposits/{id}', 'get'>"],
  ['T.Withdrawal', "Ok<'/api/v1/wallet/withdrawals', 'post'>"],
  ['{ withdrawals: T.Withdrawal[] }', "Ok<'/api/v1/wallet/withdrawals', 'get'>"],
  ['T.Withdrawal', "Ok<'/api/v1/wallet/withdrawals/{id}', 'get'>"],
  ['T.Withdrawal', "Ok<'/api/v1/wallet/withdrawals/{id}/cancel', 'post'>"],
  // orders
  ['T.PlaceOrderRequest', "Body<'/api/v1/orders', 'post'>"],
  ['T.Order', "Ok<'/api/v1/orders', 'post'>"],
  ['T.Page<T.Order>', "Ok<'/api/v1/orders', 'get'>"],
  ['T.Order', "Ok<'/api/v1/orders/{id}', 'get'>"],
  ['T.Order', "Ok<'/api/v1/orders/{id}', 'delete'>"],
  ['{ count: number; orders: T.Order[] }', "Ok<'/api/v1/orders', 'delete'>"],
  ['T.Page<T.Fill>', "Ok<'/api/v1/fills', 'get'>"],
  ['T.AccountFees', "Ok<'/api/v1/account/fees', 'get'>"],
  ['T.DeadManSwitch', "Ok<'/api/v1/orders/cancel-all-after', 'get'>"],
  ['T.DeadManSwitch & { cancelledOnArm: number }', "Ok<'/api/v1/orders/cancel-all-after', 'post'>"],
  ['{ timeoutSeconds: number }', "Body<'/api/v1/orders/cancel-all-after', 'post'>"],
  ['T.OrderStatus', "NonNullable<Query<'/api/v1/orders', 'get'>['status']>"],
  // market data
  ['{ markets: T.Market[] }', "Ok<'/api/v1/markets', 'get'>"],
  ['T.OrderBook', "Ok<'/api/v1/markets/{market}/book', 'get'>"],
  ['{ trades: T.Trade[] }', "Ok<'/api/v1/markets/{market}/trades', 'get'>"],
  ['T.Ticker', "Ok<'/api/v1/markets/{market}/ticker', 'get'>"],
  ['{ market: string; interval: string; candles: T.Candle[] }', "Ok<'/api/v1/markets/{market}/candles', 'get'>"],
  ['T.TradingHealth', "Ok<'/api/health/trading', 'get'>"],
  // admin
  ['{ flags: T.FeatureFlag[] }', "Ok<'/api/v1/admin/feature-flags', 'get'>"],
  ['T.FeatureFlag', "Ok<'/api/v1/admin/feature-flags/{flag}/enable', 'post'>"],
  ['T.FeatureFlag', "Ok<'/api/v1/admin/feature-flags/{flag}/disable', 'post'>"],
  ['T.MarketHalt', "Ok<'/api/v1/admin/markets/{market}/halt', 'post'>"],
  ['T.MarketHalt', "Ok<'/api/v1/admin/markets/{market}/resume', 'post'>"],
  ['T.Page<T.DeadLetter>', "Ok<'/api/v1/admin/dead-letters/wallet', 'get'>"],
  ['T.DeadLetter', "Ok<'/api/v1/admin/dead-letters/order/{id}', 'get'>"],
  [
    '{ alreadyRetried: boolean; deadLetter: T.DeadLetter }',
    "Ok<'/api/v1/admin/dead-letters/payment-processor/{id}/retry', 'post'>",
  ],
  ['T.ReconciliationReport', "Ok<'/api/v1/admin/reconciliation/run', 'post'>"],
  ['{ reports: T.ReconciliationSummary[] }', "Ok<'/api/v1/admin/reconciliation/reports', 'get'>"],
  ['T.ReconciliationReport', "Ok<'/api/v1/admin/reconciliation/reports/{id}', 'get'>"],
  ['{ backups: T.Backup[] }', "Ok<'/api/v1/admin/backups', 'get'>"],
  ['T.Backup', "Ok<'/api/v1/admin/backups', 'post'>"],
  ['{ items: T.AuditEntry[]; nextBefore: number | null }', "Ok<'/api/v1/admin/audit', 'get'>"],
  ['{ users: T.User[] }', "Ok<'/api/v1/admin/users', 'get'>"],
  ['T.User', "Ok<'/api/v1/admin/users/{id}/lock', 'post'>"],
  ['T.User', "Ok<'/api/v1/admin/users/{id}/unlock', 'post'>"],
  ['T.User', "Ok<'/api/v1/admin/users/{id}/roles', 'put'>"],
  ['{ replica: string; markets: T.EngineMarket[] }', "Ok<'/api/v1/admin/engine/markets', 'get'>"],
];

const HELPERS = `
type Json<X> = X extends { content: { 'application/json': infer B } } ? B : never;
type Op<P extends keyof paths, M extends keyof paths[P]> = paths[P][M];
export type Ok<P extends keyof paths, M extends keyof paths[P]> =
  Op<P, M> extends { responses: infer R } ? { [S in keyof R]: S extends 200 | 201 | 202 ? Json<R[S]> : never }[keyof R] : never;
export type Body<P extends keyof paths, M extends keyof paths[P]> =
  Op<P, M> extends { requestBody?: infer B } ? Json<NonNullable<B>> : never;
export type Query<P extends keyof paths, M extends keyof paths[P]> =
  Op<P, M> extends { parameters: { query?: infer Q } } ? NonNullable<Q> : never;
`;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sdk-openapi-'));
  await writeFile(join(dir, 'openapi.d.ts'), astToString(await openapiTS(SPEC)));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Compiles one check per pair and direction; returns the compiler's complaints, each naming its pair. */
async function mismatches(pairs: Array<[string, string]>): Promise<string[]> {
  const lines = [
    `import type { paths } from './openapi.d.ts';`,
    `import type * as T from ${JSON.stringify(TYPES)};`,
    ...HELPERS.split('\n'),
  ];
  const where = new Map<number, string>();
  pairs.forEach(([sdk, api], i) => {
    where.set(lines.length, `SDK ${sdk} is not assignable to OpenAPI ${api}`);
    lines.push(`export const sdkToApi${i} = (x: ${sdk}): ${api} => x;`);
    where.set(lines.length, `OpenAPI ${api} is not assignable to SDK ${sdk}`);
    lines.push(`export const apiToSdk${i} = (x: ${api}): ${sdk} => x;`);
  });
  const file = join(dir, `check-${pairs.length}-${Date.now()}.ts`);
  await writeFile(file, lines.join('\n'));
  const program = ts.createProgram([file], {
    strict: true,
    noUncheckedIndexedAccess: true,
    exactOptionalPropertyTypes: false,
    allowImportingTsExtensions: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: [],
  });
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : -1;
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    return `${where.get(line) ?? `${d.file?.fileName ?? ''}:${line + 1}`}\n${text}`;
  });
}

it('every SDK type matches its operation in docs/openapi.yaml, both ways', async () => {
  expect(await mismatches(PAIRS)).toEqual([]);
});

it('the check catches a mismatch (a fill is not an order; a missing field; a widened enum)', async () => {
  const found = await mismatches([
    ['T.Order', "Ok<'/api/v1/fills', 'get'>"],
    ["Omit<T.Ticker, 'trades24h'>", "Ok<'/api/v1/markets/{market}/ticker', 'get'>"],
    ["Omit<T.Balance, 'held'> & { held: number }", "Ok<'/api/v1/wallet/balances', 'get'>['balances'][number]"],
    ["T.OrderStatus | 'expired'", "NonNullable<Query<'/api/v1/orders', 'get'>['status']>"],
  ]);
  const heads = found.map((f) => f.split('\n')[0]);
  expect(heads).toEqual(
    expect.arrayContaining([
      "SDK T.Order is not assignable to OpenAPI Ok<'/api/v1/fills', 'get'>",
      "OpenAPI Ok<'/api/v1/fills', 'get'> is not assignable to SDK T.Order",
      "SDK Omit<T.Ticker, 'trades24h'> is not assignable to OpenAPI Ok<'/api/v1/markets/{market}/ticker', 'get'>",
      "SDK Omit<T.Balance, 'held'> & { held: number } is not assignable to OpenAPI Ok<'/api/v1/wallet/balances', 'get'>['balances'][number]",
      "OpenAPI Ok<'/api/v1/wallet/balances', 'get'>['balances'][number] is not assignable to SDK Omit<T.Balance, 'held'> & { held: number }",
      "SDK T.OrderStatus | 'expired' is not assignable to OpenAPI NonNullable<Query<'/api/v1/orders', 'get'>['status']>",
    ]),
  );
});
