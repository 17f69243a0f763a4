import { loadConfigOrExit, tradingServiceEnv, Type, type Static } from '@exchange/config';

export const ConfigSchema = Type.Object({
  ...tradingServiceEnv(3002),
  SANDBOX_DEPOSITS: Type.Boolean({
    default: false,
    description:
      'Self-credited deposits (POST /api/v1/wallet/deposits): only for a sandbox deployment; refused with NODE_ENV=production',
  }),
  DEPOSIT_CONFIRMATION_MS: Type.Integer({
    minimum: 0,
    default: 5_000,
    description: 'Sandbox rail: how long a deposit stays pending before it is confirmed and credited',
  }),
  WITHDRAWAL_DISPATCH_DELAY_MS: Type.Integer({
    minimum: 0,
    default: 5_000,
    description:
      'How long a new withdrawal stays pending (cancellable by the user) before payout.requested is published',
  }),
  WITHDRAWAL_MFA_MAX_AGE_S: Type.Integer({
    minimum: 1,
    default: 300,
    description: 'A withdrawal by a user with 2FA on needs a 2FA check at most this old (seconds)',
  }),
  WITHDRAWAL_DAILY_LIMITS: Type.Optional(
    Type.String({
      description:
        'JSON {"<kycTier>": {"<ASSET>": "<decimal>"}}: rolling 24 h withdrawal limit per user and asset by KYC tier ' +
        '(default: built-in tiers 0-2)',
    }),
  ),
  WITHDRAWAL_EMAIL_CONFIRM_THRESHOLDS: Type.String({
    default: '{"BTC":"0.02","ETH":"0.5","USD":"1000","USDT":"1000"}',
    description:
      'JSON {"<ASSET>": "<decimal>"}: a withdrawal of at least this amount of the asset waits for the link emailed to ' +
      'the user (status awaiting_confirmation) on top of 2FA; assets not listed never need it; {} turns it off',
  }),
  WITHDRAWAL_EMAIL_CONFIRM_TTL_S: Type.Integer({
    minimum: 60,
    default: 1800,
    description:
      'How long the withdrawal confirmation link works; then the withdrawal is cancelled and its hold released',
  }),
  SCHEDULER_POLL_MS: Type.Integer({
    minimum: 50,
    default: 1_000,
    description: 'How often the scheduler looks for due deposits and withdrawals',
  }),
  RECONCILIATION_INTERVAL_MS: Type.Integer({
    minimum: 0,
    default: 3_600_000,
    description: 'Run a reconciliation this often (0 = only on demand)',
  }),
  RECONCILIATION_START_DELAY_MS: Type.Integer({
    minimum: 0,
    default: 60_000,
    description:
      'No scheduled reconciliation this soon after start-up: the order service and the payment-processor it asks may still be starting, and a run without them is incomplete (RECONCILIATION_INCOMPLETE pages)',
  }),
  ORDER_URL: Type.String({
    default: 'http://127.0.0.1:3003',
    description: 'Order service base URL: reconciliation compares order holds with its open orders (internal API)',
  }),
  PAYMENT_PROCESSOR_URL: Type.String({
    default: 'http://127.0.0.1:3004',
    description:
      "Payment-processor base URL: reconciliation compares booked withdrawals with the rail's payout records (internal API)",
  }),
  RECONCILIATION_GRACE_S: Type.Integer({
    minimum: 0,
    default: 60,
    description:
      'Reconciliation skips order holds, orders, trades and rail payouts that changed within this many seconds (in flight)',
  }),
  MARKETS_FILE: Type.Optional(Type.String({ description: 'Asset/market catalog JSON (default: built-in catalog)' })),
});

export type Config = Static<typeof ConfigSchema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const config = loadConfigOrExit('wallet', ConfigSchema, env);
  if (config.NODE_ENV === 'production' && config.SANDBOX_DEPOSITS) {
    // free money in production: refuse to start rather than trust that nobody finds the endpoint
    process.stderr.write('wallet: SANDBOX_DEPOSITS=true is refused with NODE_ENV=production\n');
    process.exit(78);
  }
  return config;
}
