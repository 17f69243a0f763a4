/**
 * Request and response shapes of the public API (docs/openapi.yaml). Amounts, prices and quantities are decimal
 * strings, never numbers.
 */
export type Decimal = string;
export type Role = 'user' | 'support' | 'admin';
export type ApiKeyScope = 'read' | 'trade' | 'withdraw';
export type Side = 'buy' | 'sell';
export type OrderType = 'limit' | 'market';
export type TimeInForce = 'GTC' | 'IOC' | 'FOK';
export type SelfTradePrevention = 'cancel_newest' | 'cancel_oldest' | 'cancel_both' | 'decrement';
export type OrderStatus = 'pending' | 'new' | 'partially_filled' | 'filled' | 'cancelled' | 'rejected';

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

// ---- auth
export interface User {
  id: string;
  email: string;
  roles: Role[];
  mfaEnabled: boolean;
  /** The owner confirmed the address by the emailed link; unverified accounts cannot withdraw. */
  emailVerified: boolean;
  locked: boolean;
  createdAt: string;
}
export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
  sessionId: string;
}
export interface LoginResult extends TokenPair {
  user: User;
}
export interface LoginRequest {
  email: string;
  password: string;
  /** 6-digit TOTP code, when 2FA is on (otherwise login fails with 401 MFA_REQUIRED). */
  totpCode?: string;
  recoveryCode?: string;
  /** Answer to a 429 PROOF_OF_WORK_REQUIRED challenge; ExchangeClient.login solves and sends it by itself. */
  proofOfWork?: string;
}
export interface AccessToken {
  accessToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
  mfaAt: number;
}
export interface TwoFactorSetup {
  otpauthUri: string;
  secret: string;
}
export interface AuthSession {
  id: string;
  /** The session this client is using. */
  current: boolean;
  createdAt: string;
  lastUsedAt: string;
  expiresAt: string;
  ip: string | null;
  userAgent: string | null;
  mfaAt: string | null;
}
export interface ApiKey {
  id: string;
  label: string;
  keyPrefix: string;
  scopes: ApiKeyScope[];
  /** Source IPs or CIDRs the key is limited to; null when any. */
  allowedIps: string[] | null;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
}
export interface CreatedApiKey extends ApiKey {
  /** Sent as X-API-Key. */
  apiKey: string;
  /** HMAC secret: shown once. */
  secret: string;
}

// ---- wallet
export interface Balance {
  asset: string;
  total: Decimal;
  held: Decimal;
  available: Decimal;
}
export interface LedgerEntry {
  id: string;
  entryId: string;
  asset: string;
  amount: Decimal;
  balanceAfter: Decimal;
  reason: string;
  refType: string;
  refId: string;
  memo: string;
  createdAt: string;
}
export interface Deposit {
  id: string;
  asset: string;
  amount: Decimal;
  status: 'pending' | 'confirmed';
  confirmAt: string;
  confirmedAt: string | null;
  createdAt: string;
}
export interface Withdrawal {
  id: string;
  asset: string;
  amount: Decimal;
  fee: Decimal;
  address: string;
  /** `awaiting_confirmation`: large withdrawals wait for the emailed confirmation link. */
  status: 'awaiting_confirmation' | 'pending' | 'processing' | 'completed' | 'failed' | 'cancelled';
  /** While awaiting_confirmation: when the emailed confirmation link expires (then it is cancelled). */
  confirmationExpiresAt: string | null;
  railTxId: string | null;
  failureReason: string | null;
  createdAt: string;
  updatedAt: string;
}

// ---- orders
export interface PlaceOrderRequest {
  market: string;
  side: Side;
  type: OrderType;
  quantity: Decimal;
  /** Required for limit orders. */
  price?: Decimal;
  timeInForce?: TimeInForce;
  postOnly?: boolean;
  stp?: SelfTradePrevention;
  /** Your id for the order; placing twice with the same one returns the first order. */
  clientOrderId?: string;
  /**
   * Stop order: waits until the last trade price reaches it (buy: at or above, sell: at or below), then runs as this
   * limit (stop-limit) or market (stop-loss) order. Funds are held from placement.
   */
  stopPrice?: Decimal;
  /**
   * Iceberg order (GTC limit only): the quantity shown in the public book at a time, a multiple of the lot size and at
   * most `quantity`. The rest is hidden but executable; each new slice goes to the back of its price level.
   */
  displayQuantity?: Decimal;
}
export interface Order {
  id: string;
  clientOrderId: string | null;
  market: string;
  side: Side;
  type: OrderType;
  timeInForce: TimeInForce;
  postOnly: boolean;
  stp: string | null;
  price: Decimal | null;
  quantity: Decimal;
  filledQuantity: Decimal;
  remainingQuantity: Decimal;
  filledNotional: Decimal;
  averagePrice: Decimal | null;
  holdAsset: string;
  holdAmount: Decimal;
  status: OrderStatus;
  cancelRequested: boolean;
  /** Amends requested so far; the next amend is amendSeq + 1. */
  amendSeq: number;
  /** Stop orders: the trigger price (null for other orders). */
  stopPrice: Decimal | null;
  /** A stop order whose trigger price was reached. */
  stopTriggered: boolean;
  /** Iceberg orders: the quantity shown at a time (null for other orders). */
  displayQuantity: Decimal | null;
  /** Fee rate (bps) of this order's fills as maker: your volume tier when it was accepted; negative is a rebate. */
  makerFeeBps: number;
  /** Fee rate (bps) of this order's fills as taker. */
  takerFeeBps: number;
  reason: string | null;
  createdAt: string;
  updatedAt: string;
}
/** One volume tier of a market's fee schedule (tier 0: the base rates). */
export interface FeeTier {
  tier: number;
  /** 30-day volume (quote asset) from which the tier applies. */
  minVolume: Decimal;
  /** Negative: a rebate. */
  makerFeeBps: number;
  takerFeeBps: number;
}
/** GET /api/v1/account/fees: your tier per market. */
export interface AccountFees {
  windowDays: number;
  markets: Array<{
    market: string;
    volumeAsset: string;
    volume30d: Decimal;
    tier: FeeTier;
    nextTier: FeeTier | null;
    volumeToNextTier: Decimal | null;
    tiers: FeeTier[];
  }>;
}
/** The dead-man's switch (cancel-all-after). */
export interface DeadManSwitch {
  armed: boolean;
  timeoutSeconds: number;
  /** When your open orders are cancelled unless you call again first (null when disarmed). */
  firesAt: string | null;
}
/** PATCH /api/v1/orders/:id: a new price and/or a new TOTAL quantity (filled + open). */
export interface AmendOrderRequest {
  price?: Decimal;
  quantity?: Decimal;
  /** The amend's number for the order (order.amendSeq + 1): resending the same number replays it. */
  amendSeq?: number;
}
export type AmendStatus = 'pending' | 'sent' | 'applied' | 'rejected' | 'expiring';
export interface OrderAmend {
  id: string;
  orderId: string;
  amendSeq: number;
  /** `sent` until the engine answers `applied` or `rejected` (see `reason`). */
  status: AmendStatus;
  price: Decimal | null;
  quantity: Decimal | null;
  topUp: Decimal;
  holdDelta: Decimal | null;
  priorityKept: boolean | null;
  reason: string | null;
  createdAt: string;
  updatedAt: string;
}
export interface Fill {
  id: string;
  tradeId: string;
  orderId: string;
  market: string;
  side: Side;
  liquidity: 'maker' | 'taker';
  price: Decimal;
  quantity: Decimal;
  quoteAmount: Decimal;
  fee: Decimal;
  feeAsset: string;
  executedAt: string;
}

// ---- market data
export interface Market {
  symbol: string;
  base: string;
  quote: string;
  tickSize: Decimal;
  lotSize: Decimal;
  minQuantity: Decimal;
  maxQuantity: Decimal;
  minNotional: Decimal;
  makerFeeBps: number;
  takerFeeBps: number;
  priceBandBps: number;
  priceBand: { low: Decimal; high: Decimal } | null;
  lastPrice: Decimal | null;
  halted: boolean;
  haltReason: string | null;
}
/** The volatility guard's call auction: what the uncross would do now, from the displayed book. */
export interface AuctionState {
  referencePrice: Decimal;
  indicativePrice: Decimal | null;
  indicativeQuantity: Decimal;
}
/** Price levels as [price, quantity]. */
export interface OrderBook {
  market: string;
  seq: string;
  /** `auction`: continuous trading is paused; orders are collected (the book may cross) until the uncross. */
  phase: 'continuous' | 'auction';
  auction: AuctionState | null;
  at: string | null;
  bids: Array<[Decimal, Decimal]>;
  asks: Array<[Decimal, Decimal]>;
}
export interface Trade {
  tradeId: string;
  market: string;
  price: Decimal;
  quantity: Decimal;
  side: Side;
  seq: string;
  at: string;
}
export interface Ticker {
  market: string;
  lastPrice: Decimal | null;
  lastTradeAt: string | null;
  bestBid: Decimal | null;
  bestAsk: Decimal | null;
  open24h: Decimal | null;
  high24h: Decimal | null;
  low24h: Decimal | null;
  change24h: Decimal | null;
  volume24h: Decimal;
  quoteVolume24h: Decimal;
  trades24h: number;
}
export interface Candle {
  openTime: string;
  open: Decimal;
  high: Decimal;
  low: Decimal;
  close: Decimal;
  volume: Decimal;
  quoteVolume: Decimal;
  trades: number;
}
export interface TradingHealth {
  status: 'healthy' | 'unhealthy';
  tradingEnabled: boolean;
  maintenance: boolean;
  checkedAt: string;
  markets: Array<{
    market: string;
    status: 'ok' | 'no_consumer' | 'unknown';
    halted: boolean;
    engineConsumers: number | null;
    queueDepth: number | null;
    lastTradeAt: string | null;
    lastTradeAgeSeconds: number | null;
    error?: string;
  }>;
}

// ---- admin
export interface FeatureFlag {
  name: string;
  enabled: boolean;
  reason: string | null;
  updatedAt: string | null;
  updatedBy: string | null;
}
export interface MarketHalt {
  market: string;
  halted: boolean;
  reason: string | null;
  changedAt: string | null;
  changedBy: string | null;
  /** Cancel commands sent for the market's open orders. */
  cancelsSent: number;
}
export type DeadLetterService = 'wallet' | 'order' | 'payment-processor';
export interface DeadLetter {
  id: string;
  messageId: string;
  queue: string;
  type: string | null;
  reason: string;
  attempts: number;
  status: 'dead' | 'retried';
  retryCount: number;
  deadLetteredAt: string;
  retriedAt: string | null;
  headers: Record<string, unknown>;
  body: string | null;
  message: unknown;
}
export interface ReconciliationSummary {
  id: string;
  status: 'ok' | 'mismatch' | 'incomplete';
  mismatchCount: number;
  trigger: string;
  requestedBy: string | null;
  startedAt: string;
  finishedAt: string;
}
export interface ReconciliationCheck {
  name: string;
  description: string;
  mismatches: number;
  /** First 500 mismatches. */
  items: Array<Record<string, unknown>>;
  /** Why the check could not run (its mismatches are then unknown). */
  error?: string;
}
export interface ReconciliationReport extends ReconciliationSummary {
  report: {
    mismatchCount: number;
    checks: ReconciliationCheck[];
    totals: Array<Record<string, unknown>>;
    activeHolds: {
      count: number;
      byRefType: Array<Record<string, unknown>>;
      items: Array<Record<string, unknown>>;
    };
  };
}
export interface Backup {
  name: string;
  sizeBytes: number;
  sha256: string;
  /** age-encrypted (.dump.age); false only for files of older versions. */
  encrypted: boolean;
  createdAt: string;
}
export interface AuditEntry {
  id: number;
  action: string;
  actorId: string | null;
  targetId: string | null;
  at: string;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
  details: Record<string, unknown>;
}
export interface EngineMarket {
  market: string;
  queue: string;
  consumer: 'active' | 'standby' | 'not_consuming' | 'unknown';
  /**
   * Why the market is halted: a command kept failing for a reason other than its content (every replica; lifted by
   * `POST /api/v1/admin/engine/markets/:market/resume`), or the journal does not replay here; null when running.
   */
  halted: string | null;
  /** Id generation of this replica's loaded engine (new on every load: start, takeover, restore). */
  epoch: string | null;
  lastSeq: number;
  bookSeq: number;
  loadedSeq: number | null;
  lastSnapshotSeq: number | null;
  restingOrders: number | null;
  /** `auction`: the volatility guard's call auction runs in this replica's engine; null when not loaded. */
  phase: 'continuous' | 'auction' | null;
  reloads: number;
  lastAppliedAt: string | null;
  lastDeliveryAt: string | null;
}

// ---- security log and email links
export interface SecurityEvent {
  at: string;
  /** e.g. auth.login, auth.login_failed, auth.2fa_enabled, auth.api_key_created, auth.password_changed */
  action: string;
  ip: string | null;
  userAgent: string | null;
  details: Record<string, unknown>;
}

// ---- admin: orders, payouts, blocked withdrawals
export interface AdminOrder extends Order {
  userId: string;
  /** Jaeger search for the order's trace: the placing span carries `order.id`. */
  trace: { service: string; operation: string; tags: Record<string, string> };
}
export type PayoutState = 'pending' | 'completed' | 'failed' | 'cancelled';
export interface Payout {
  withdrawalId: string;
  userId: string;
  asset: string;
  amount: Decimal;
  fee: Decimal;
  address: string;
  /** The withdrawal's own status: pending (cancellation window), processing (sent to the rail), … */
  status: string;
  dueAt: string;
  railTxId: string | null;
  failureReason: string | null;
  createdAt: string;
  updatedAt: string;
}
export interface Payouts {
  status: PayoutState;
  payouts: Payout[];
  /** Per asset over every payout in this state, not only this page. */
  totals: Array<{ asset: string; count: number; amount: Decimal }>;
}
export interface BlockedWithdrawal {
  at: string;
  userId: string | null;
  reason: string;
  code: string | null;
  asset: string | null;
  amount: string | null;
  address: string | null;
  requestId: string | null;
}
