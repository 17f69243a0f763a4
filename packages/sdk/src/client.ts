/**
 * Typed client of the exchange's public API (through the gateway).
 *
 *   const client = new ExchangeClient({ baseUrl: 'http://localhost:8000' });
 *   await client.login({ email, password, totpCode });
 *   await client.placeOrder({ market: 'BTC-USD', side: 'buy', type: 'limit', price: '30000', quantity: '0.01' });
 *
 * - Session mode: access + refresh tokens; an expired or rejected (401) access token is refreshed once with the
 *   refresh token (single flight) and the call repeated. `onSession` sees every new session (persist it there).
 * - API-key mode (`apiKey: { key, secret }`): every attempt is signed (X-API-Key, X-API-Timestamp, X-API-Signature).
 * - Writes carry an `Idempotency-Key` (a UUID unless given), the same on every retry of one call.
 * - 429, 503, 409 IDEMPOTENCY_IN_PROGRESS and network failures are retried with exponential backoff (p-retry), never sooner than the
 *   server's Retry-After; a Retry-After beyond `maxRetryAfterMs` is not waited for (the error is thrown).
 * - Failures throw ExchangeApiError (status, code, message, requestId) or ExchangeNetworkError.
 */
import pRetry from 'p-retry';
import { errorFromResponse, ExchangeApiError, ExchangeNetworkError } from './errors.ts';
import { proofOfWorkChallenge, solveProofOfWork } from './proof-of-work.ts';
import { signRequest, type ApiKeyCredentials } from './signing.ts';
import { ExchangeStream, type StreamOptions } from './stream.ts';
import type * as T from './types.ts';

export interface Session {
  accessToken: string;
  refreshToken?: string;
  sessionId?: string;
  /** Epoch ms when the access token expires. */
  accessTokenExpiresAt?: number;
  user?: T.User;
}

export interface ExchangeClientOptions {
  /** The gateway, e.g. http://localhost:8000. */
  baseUrl: string;
  session?: Session;
  apiKey?: ApiKeyCredentials;
  /** Called with each new session (login, refresh, step-up) and with null when it ends (logout, refresh refused). */
  onSession?: (session: Session | null) => void | Promise<void>;
  /** Retries on 429/503/network errors (default 3). */
  retries?: number;
  /** First backoff delay (default 250 ms); doubles each retry up to maxBackoffMs (default 5 s). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Longest Retry-After the client waits for (default 30 s). */
  maxRetryAfterMs?: number;
  /** Per-attempt timeout (default 15 s). */
  timeoutMs?: number;
  fetch?: typeof fetch;
  userAgent?: string;
  /** Headers sent with every request (e.g. X-Forwarded-For for a simulated client behind a trusted proxy in tests). */
  headers?: Record<string, string>;
  /** Solve a login's proof-of-work challenge by itself (default true); false surfaces 429 PROOF_OF_WORK_REQUIRED. */
  solveProofOfWork?: boolean;
}

export interface CallOptions {
  /** Idempotency key for a write (default: a new UUID per call). */
  idempotencyKey?: string;
  /** Extra headers, e.g. X-Request-Id to correlate with your own logs. */
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

type Query = Record<string, string | number | boolean | undefined>;
type AuthMode = 'none' | 'required';

interface RequestSpec {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  query?: Query;
  body?: unknown;
  auth: AuthMode;
  /** Auth session endpoints never carry an Idempotency-Key. */
  idempotent?: boolean;
  call?: CallOptions;
}

const RETRYABLE_STATUS = new Set([429, 503]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const enc = encodeURIComponent;

export class ExchangeClient {
  readonly baseUrl: string;
  private session: Session | undefined;
  private readonly apiKey: ApiKeyCredentials | undefined;
  private readonly opts: ExchangeClientOptions;
  private readonly fetchImpl: typeof fetch;
  private refreshing: Promise<void> | null = null;

  constructor(opts: ExchangeClientOptions) {
    this.opts = opts;
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.session = opts.session;
    this.apiKey = opts.apiKey;
    // Never call the global fetch as a method of this object: browsers throw "Illegal invocation".
    this.fetchImpl = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
  }

  /** The current session (tokens), if any. */
  getSession(): Session | undefined {
    return this.session;
  }

  async setSession(session: Session | null): Promise<void> {
    this.session = session ?? undefined;
    await this.opts.onSession?.(session);
  }

  // ------------------------------------------------------------------ transport

  private url(path: string, query?: Query): string {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) qs.set(k, String(v));
    const s = qs.toString();
    return `${path}${s ? `?${s}` : ''}`;
  }

  private retryable(err: unknown): boolean {
    if (err instanceof ExchangeNetworkError) return true;
    if (!(err instanceof ExchangeApiError)) return false;
    // The first attempt with this Idempotency-Key is still running (e.g. a timed-out attempt): wait for its result.
    if (err.status === 409 && err.code === 'IDEMPOTENCY_IN_PROGRESS') return true;
    // Asking again unchanged cannot help: the login is repeated with a solved challenge instead (login()).
    if (err.code === 'PROOF_OF_WORK_REQUIRED') return false;
    if (!RETRYABLE_STATUS.has(err.status)) return false;
    return (err.retryAfterMs ?? 0) <= (this.opts.maxRetryAfterMs ?? 30_000);
  }

  private async attempt<R>(spec: RequestSpec, pathWithQuery: string, idempotencyKey: string | undefined): Promise<R> {
    const body = spec.body === undefined ? undefined : JSON.stringify(spec.body);
    const headers: Record<string, string> = { accept: 'application/json', ...this.opts.headers, ...spec.call?.headers };
    if (this.opts.userAgent) headers['user-agent'] = this.opts.userAgent;
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (idempotencyKey) headers['idempotency-key'] = idempotencyKey;
    if (spec.auth === 'required') {
      if (this.apiKey) {
        Object.assign(headers, signRequest(this.apiKey, { method: spec.method, pathWithQuery, body: body ?? '' }));
      } else if (this.session?.accessToken) {
        headers.authorization = `Bearer ${this.session.accessToken}`;
      }
    }
    const signals = [AbortSignal.timeout(this.opts.timeoutMs ?? 15_000)];
    if (spec.call?.signal) signals.push(spec.call.signal);
    let res: Response;
    try {
      res = await this.fetchImpl(`${this.baseUrl}${pathWithQuery}`, {
        method: spec.method,
        headers,
        signal: AbortSignal.any(signals),
        ...(body !== undefined ? { body } : {}),
      });
    } catch (err) {
      if (spec.call?.signal?.aborted) throw err;
      throw new ExchangeNetworkError(spec.method, spec.path, err);
    }
    if (!res.ok) throw await errorFromResponse(res, spec.method, spec.path);
    if (res.status === 204) return undefined as R;
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as R;
  }

  private withRetries<R>(spec: RequestSpec, pathWithQuery: string, idempotencyKey: string | undefined): Promise<R> {
    return pRetry(() => this.attempt<R>(spec, pathWithQuery, idempotencyKey), {
      retries: this.opts.retries ?? 3,
      minTimeout: this.opts.minBackoffMs ?? 250,
      maxTimeout: this.opts.maxBackoffMs ?? 5_000,
      factor: 2,
      randomize: true,
      ...(spec.call?.signal ? { signal: spec.call.signal } : {}),
      shouldRetry: ({ error }) => this.retryable(error),
      onFailedAttempt: async ({ error, retriesLeft, retryDelay }) => {
        // Never retry sooner than the server asked: top up p-retry's own backoff to Retry-After.
        if (retriesLeft > 0 && this.retryable(error) && error instanceof ExchangeApiError && error.retryAfterMs) {
          if (error.retryAfterMs > retryDelay) await sleep(error.retryAfterMs - retryDelay);
        }
      },
    });
  }

  /** Low-level call; the typed methods below are thin wrappers. */
  async request<R>(spec: RequestSpec): Promise<R> {
    const pathWithQuery = this.url(spec.path, spec.query);
    const write = spec.method !== 'GET';
    const idempotencyKey =
      write && spec.idempotent !== false ? (spec.call?.idempotencyKey ?? globalThis.crypto.randomUUID()) : undefined;
    const usesSession = spec.auth === 'required' && !this.apiKey;
    if (usesSession) {
      if (!this.session?.accessToken) {
        throw new ExchangeApiError({
          status: 401,
          code: 'NOT_LOGGED_IN',
          message: 'log in first (or use an API key)',
          method: spec.method,
          path: spec.path,
        });
      }
      await this.ensureFreshSession();
    }
    try {
      return await this.withRetries<R>(spec, pathWithQuery, idempotencyKey);
    } catch (err) {
      if (usesSession && err instanceof ExchangeApiError && err.status === 401 && this.session?.refreshToken) {
        await this.refreshSession();
        return this.withRetries<R>(spec, pathWithQuery, idempotencyKey);
      }
      throw err;
    }
  }

  /** Refreshes the session now if its access token has expired or expires within 15 s (no-op in API-key mode). */
  async ensureFreshSession(): Promise<void> {
    const s = this.session;
    if (this.apiKey || !s?.refreshToken) return;
    const exp = s.accessTokenExpiresAt;
    if (exp !== undefined && exp - 15_000 < Date.now()) await this.refreshSession();
  }

  /** Exchanges the refresh token for a new pair (one refresh at a time; concurrent callers share it). */
  async refreshSession(): Promise<void> {
    if (this.refreshing) return this.refreshing;
    const refreshToken = this.session?.refreshToken;
    if (!refreshToken)
      throw new ExchangeApiError({
        status: 401,
        code: 'NO_REFRESH_TOKEN',
        message: 'no refresh token',
        method: 'POST',
        path: '/api/v1/auth/refresh',
      });
    this.refreshing = (async () => {
      try {
        const pair = await this.withRetries<T.TokenPair>(
          { method: 'POST', path: '/api/v1/auth/refresh', body: { refreshToken }, auth: 'none', idempotent: false },
          '/api/v1/auth/refresh',
          undefined,
        );
        await this.setSession(this.sessionFrom(pair, this.session?.user));
      } catch (err) {
        if (err instanceof ExchangeApiError && (err.status === 401 || err.status === 400)) await this.setSession(null);
        throw err;
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  private sessionFrom(pair: T.TokenPair, user: T.User | undefined): Session {
    const s: Session = {
      accessToken: pair.accessToken,
      refreshToken: pair.refreshToken,
      sessionId: pair.sessionId,
      accessTokenExpiresAt: Date.now() + pair.expiresIn * 1000,
    };
    if (user) s.user = user;
    return s;
  }

  // ------------------------------------------------------------------ auth

  register(
    body: { email: string; password: string },
    call?: CallOptions,
  ): Promise<{ status: 'accepted'; message: string }> {
    return this.request({
      method: 'POST',
      path: '/api/v1/auth/register',
      body,
      auth: 'none',
      idempotent: false,
      ...(call ? { call } : {}),
    });
  }

  /**
   * Logs in and keeps the session (with 2FA on, pass `totpCode`, else 401 MFA_REQUIRED). When the account asks for a
   * proof of work (429 PROOF_OF_WORK_REQUIRED, after many failed logins from anywhere), the challenge it carries is
   * solved here (a second or two) and the login sent once more with it, unless `solveProofOfWork: false`.
   */
  async login(body: T.LoginRequest, call?: CallOptions): Promise<T.LoginResult> {
    const send = (b: T.LoginRequest) =>
      this.request<T.LoginResult>({
        method: 'POST',
        path: '/api/v1/auth/login',
        body: b,
        auth: 'none',
        idempotent: false,
        ...(call ? { call } : {}),
      });
    let result: T.LoginResult;
    try {
      result = await send(body);
    } catch (err) {
      const challenge = proofOfWorkChallenge(err);
      if (!challenge || body.proofOfWork !== undefined || this.opts.solveProofOfWork === false) throw err;
      result = await send({ ...body, proofOfWork: await solveProofOfWork(challenge, call?.signal) });
    }
    await this.setSession(this.sessionFrom(result, result.user));
    return result;
  }

  async logout(call?: CallOptions): Promise<void> {
    try {
      await this.request<void>({
        method: 'POST',
        path: '/api/v1/auth/logout',
        auth: 'required',
        idempotent: false,
        ...(call ? { call } : {}),
      });
    } finally {
      await this.setSession(null);
    }
  }

  me(call?: CallOptions): Promise<T.User> {
    return this.get('/api/v1/auth/me', undefined, call);
  }

  setup2fa(password: string, call?: CallOptions): Promise<T.TwoFactorSetup> {
    return this.post('/api/v1/auth/2fa/setup', { password }, call);
  }

  /** Confirms 2FA setup; the returned access token carries a fresh 2FA time and replaces the session's. */
  async verify2fa(totpCode: string, call?: CallOptions): Promise<T.AccessToken & { recoveryCodes: string[] }> {
    const r = await this.post<T.AccessToken & { recoveryCodes: string[] }>(
      '/api/v1/auth/2fa/verify',
      { totpCode },
      call,
    );
    await this.adoptAccessToken(r);
    return r;
  }

  /** Step-up: a fresh 2FA check (needed for withdrawals, API keys, admin actions). */
  async challenge2fa(code: { totpCode?: string; recoveryCode?: string }, call?: CallOptions): Promise<T.AccessToken> {
    const r = await this.post<T.AccessToken>('/api/v1/auth/2fa/challenge', code, call);
    await this.adoptAccessToken(r);
    return r;
  }

  disable2fa(call?: CallOptions): Promise<void> {
    return this.post('/api/v1/auth/2fa/disable', undefined, call);
  }

  private async adoptAccessToken(t: T.AccessToken): Promise<void> {
    if (!this.session) return;
    await this.setSession({
      ...this.session,
      accessToken: t.accessToken,
      accessTokenExpiresAt: Date.now() + t.expiresIn * 1000,
    });
  }

  async sessions(call?: CallOptions): Promise<T.AuthSession[]> {
    return (await this.get<{ sessions: T.AuthSession[] }>('/api/v1/auth/sessions', undefined, call)).sessions;
  }

  /** Ends one of your sessions (its refresh token stops working; its access token expires on its own). */
  revokeSession(id: string, call?: CallOptions): Promise<void> {
    return this.del(`/api/v1/auth/sessions/${enc(id)}`, undefined, call);
  }

  async listApiKeys(call?: CallOptions): Promise<T.ApiKey[]> {
    return (await this.get<{ apiKeys: T.ApiKey[] }>('/api/v1/auth/api-keys', undefined, call)).apiKeys;
  }

  createApiKey(body: { label: string; scopes: T.ApiKeyScope[] }, call?: CallOptions): Promise<T.CreatedApiKey> {
    return this.post('/api/v1/auth/api-keys', body, call);
  }

  deleteApiKey(id: string, call?: CallOptions): Promise<void> {
    return this.del(`/api/v1/auth/api-keys/${enc(id)}`, undefined, call);
  }

  /** Your security log: logins, failed logins, 2FA and password changes, API keys, staff actions on you. */
  async securityLog(q: { limit?: number } = {}, call?: CallOptions): Promise<T.SecurityEvent[]> {
    return (await this.get<{ events: T.SecurityEvent[] }>('/api/v1/auth/security-log', q, call)).events;
  }

  // ------------------------------------------------------------------ email links (no session needed but resend)

  /** Confirms the email address with the token of the emailed link (400 INVALID_TOKEN / TOKEN_EXPIRED). */
  verifyEmail(token: string, call?: CallOptions): Promise<{ emailVerified: true }> {
    return this.publicPost('/api/v1/auth/email/verify', { token }, call);
  }

  /** Sends a new verification link to the signed-in user (429 RATE_LIMITED when asked too often). */
  resendVerificationEmail(call?: CallOptions): Promise<{ sent: true }> {
    return this.post('/api/v1/auth/email/resend', undefined, call);
  }

  /** Asks for a password reset link; always 202 {accepted: true}, whether or not the email has an account. */
  requestPasswordReset(email: string, call?: CallOptions): Promise<{ accepted: true }> {
    return this.publicPost('/api/v1/auth/password/forgot', { email }, call);
  }

  /** Sets a new password with the token of the emailed reset link (every session and API key is revoked). */
  resetPassword(token: string, newPassword: string, call?: CallOptions): Promise<{ reset: true }> {
    return this.publicPost('/api/v1/auth/password/reset', { token, newPassword }, call);
  }

  /** Confirms a withdrawal with the token of the emailed link; answers the withdrawal. */
  confirmWithdrawal(token: string, call?: CallOptions): Promise<T.Withdrawal> {
    return this.publicPost('/api/v1/wallet/withdrawals/confirm', { token }, call);
  }

  jwks(): Promise<{ keys: Array<Record<string, unknown>> }> {
    return this.request({ method: 'GET', path: '/.well-known/jwks.json', auth: 'none' });
  }

  // ------------------------------------------------------------------ wallet

  async balances(call?: CallOptions): Promise<T.Balance[]> {
    return (await this.get<{ balances: T.Balance[] }>('/api/v1/wallet/balances', undefined, call)).balances;
  }

  ledger(
    q: { asset?: string; limit?: number; cursor?: string } = {},
    call?: CallOptions,
  ): Promise<{ entries: T.LedgerEntry[]; nextCursor: string | null }> {
    return this.get('/api/v1/wallet/ledger', q, call);
  }

  /** Sandbox rail: the deposit is credited after its confirmation time. */
  deposit(body: { asset: string; amount: T.Decimal }, call?: CallOptions): Promise<T.Deposit> {
    return this.post('/api/v1/wallet/deposits', body, call);
  }

  async deposits(q: { limit?: number } = {}, call?: CallOptions): Promise<T.Deposit[]> {
    return (await this.get<{ deposits: T.Deposit[] }>('/api/v1/wallet/deposits', q, call)).deposits;
  }

  getDeposit(id: string, call?: CallOptions): Promise<T.Deposit> {
    return this.get(`/api/v1/wallet/deposits/${enc(id)}`, undefined, call);
  }

  withdraw(body: { asset: string; amount: T.Decimal; address: string }, call?: CallOptions): Promise<T.Withdrawal> {
    return this.post('/api/v1/wallet/withdrawals', body, call);
  }

  async withdrawals(q: { limit?: number } = {}, call?: CallOptions): Promise<T.Withdrawal[]> {
    return (await this.get<{ withdrawals: T.Withdrawal[] }>('/api/v1/wallet/withdrawals', q, call)).withdrawals;
  }

  getWithdrawal(id: string, call?: CallOptions): Promise<T.Withdrawal> {
    return this.get(`/api/v1/wallet/withdrawals/${enc(id)}`, undefined, call);
  }

  cancelWithdrawal(id: string, call?: CallOptions): Promise<T.Withdrawal> {
    return this.post(`/api/v1/wallet/withdrawals/${enc(id)}/cancel`, undefined, call);
  }

  // ------------------------------------------------------------------ orders

  placeOrder(body: T.PlaceOrderRequest, call?: CallOptions): Promise<T.Order> {
    return this.post('/api/v1/orders', body, call);
  }

  orders(
    q: { market?: string; status?: T.OrderStatus; open?: boolean; cursor?: string; limit?: number } = {},
    call?: CallOptions,
  ): Promise<T.Page<T.Order>> {
    return this.get('/api/v1/orders', q, call);
  }

  getOrder(id: string, call?: CallOptions): Promise<T.Order> {
    return this.get(`/api/v1/orders/${enc(id)}`, undefined, call);
  }

  /**
   * Amend a resting order (202): new price and/or new total quantity. A lower quantity at the same price keeps time
   * priority; anything else loses it. The engine's answer shows in `orderAmends(id)` (`applied` / `rejected`).
   */
  amendOrder(
    id: string,
    body: T.AmendOrderRequest,
    call?: CallOptions,
  ): Promise<{ amend: T.OrderAmend; order: T.Order }> {
    return this.request({
      method: 'PATCH',
      path: `/api/v1/orders/${enc(id)}`,
      auth: 'required',
      body,
      ...(call ? { call } : {}),
    });
  }

  orderAmends(id: string, call?: CallOptions): Promise<{ items: T.OrderAmend[] }> {
    return this.get(`/api/v1/orders/${enc(id)}/amends`, undefined, call);
  }

  /** Requests the cancel (202); the order's status turns `cancelled` once the engine confirms. */
  cancelOrder(id: string, call?: CallOptions): Promise<T.Order> {
    return this.del(`/api/v1/orders/${enc(id)}`, undefined, call);
  }

  cancelAllOrders(q: { market?: string } = {}, call?: CallOptions): Promise<{ count: number; orders: T.Order[] }> {
    return this.del('/api/v1/orders', q, call);
  }

  fills(
    q: { market?: string; orderId?: string; cursor?: string; limit?: number } = {},
    call?: CallOptions,
  ): Promise<T.Page<T.Fill>> {
    return this.get('/api/v1/fills', q, call);
  }

  /** Your fee tier per market: 30-day volume, current rates, the next tier and how far it is. */
  accountFees(call?: CallOptions): Promise<T.AccountFees> {
    return this.get('/api/v1/account/fees', undefined, call);
  }

  /**
   * Dead-man's switch: unless this is called again within `timeoutSeconds`, all your open orders are cancelled.
   * Call it periodically (well within the timeout) to keep it armed; 0 disarms it.
   */
  cancelAllAfter(timeoutSeconds: number, call?: CallOptions): Promise<T.DeadManSwitch & { cancelledOnArm: number }> {
    return this.post('/api/v1/orders/cancel-all-after', { timeoutSeconds }, call);
  }

  deadManSwitch(call?: CallOptions): Promise<T.DeadManSwitch> {
    return this.get('/api/v1/orders/cancel-all-after', undefined, call);
  }

  // ------------------------------------------------------------------ market data (public)

  async markets(call?: CallOptions): Promise<T.Market[]> {
    return (await this.publicGet<{ markets: T.Market[] }>('/api/v1/markets', undefined, call)).markets;
  }

  book(market: string, q: { depth?: number } = {}, call?: CallOptions): Promise<T.OrderBook> {
    return this.publicGet(`/api/v1/markets/${enc(market)}/book`, q, call);
  }

  async trades(market: string, q: { limit?: number } = {}, call?: CallOptions): Promise<T.Trade[]> {
    return (await this.publicGet<{ trades: T.Trade[] }>(`/api/v1/markets/${enc(market)}/trades`, q, call)).trades;
  }

  ticker(market: string, call?: CallOptions): Promise<T.Ticker> {
    return this.publicGet(`/api/v1/markets/${enc(market)}/ticker`, undefined, call);
  }

  candles(
    market: string,
    q: { interval?: string; from?: string; to?: string; limit?: number } = {},
    call?: CallOptions,
  ): Promise<{ market: string; interval: string; candles: T.Candle[] }> {
    return this.publicGet(`/api/v1/markets/${enc(market)}/candles`, q, call);
  }

  tradingHealth(call?: CallOptions): Promise<T.TradingHealth> {
    return this.publicGet('/api/health/trading', undefined, call);
  }

  // ------------------------------------------------------------------ stream

  /**
   * Opens the stream with a live session: refreshes an expiring one first, and re-authenticates the open stream
   * before each access token expires, so the private `orders` channel survives a long `watch`.
   */
  async openStream(opts: StreamOptions = {}): Promise<ExchangeStream> {
    await this.ensureFreshSession();
    const stream = this.stream(opts);
    if (opts.token || this.apiKey || !this.session?.refreshToken) return stream;
    // The server drops the private channel when the token expires; re-authenticate 30 s before that.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const reauth = async () => {
      try {
        await this.refreshSession();
        const token = this.session?.accessToken;
        if (token && stream.socket.readyState === stream.socket.OPEN) stream.send({ op: 'auth', token });
      } catch (err) {
        const e = err as { code?: string; message?: string };
        stream.emit('stream-error', { type: 'error', code: e.code ?? 'REFRESH_FAILED', message: e.message });
      }
    };
    stream.on('message', (m: { type: string; expiresAt?: unknown }) => {
      if (m.type !== 'authenticated' || typeof m.expiresAt !== 'string') return;
      clearTimeout(timer);
      timer = setTimeout(() => void reauth(), Math.max(0, Date.parse(m.expiresAt) - 30_000 - Date.now()));
    });
    stream.on('close', () => clearTimeout(timer));
    return stream;
  }

  /** Opens the WebSocket stream (`/api/v1/stream`); authenticates with the session's access token when there is one. */
  stream(opts: StreamOptions = {}): ExchangeStream {
    const token = opts.token ?? (this.apiKey ? undefined : this.session?.accessToken);
    const headers = { ...this.opts.headers, ...opts.headers };
    return new ExchangeStream(this.baseUrl, { ...opts, headers, ...(token ? { token } : {}) });
  }

  // ------------------------------------------------------------------ admin (role admin, from private networks)

  readonly admin = {
    featureFlags: async (call?: CallOptions): Promise<T.FeatureFlag[]> =>
      (await this.get<{ flags: T.FeatureFlag[] }>('/api/v1/admin/feature-flags', undefined, call)).flags,
    /** trading, maintenance (order service); withdrawals, deposits (wallet). */
    setFeatureFlag: (flag: string, enabled: boolean, reason?: string, call?: CallOptions): Promise<T.FeatureFlag> =>
      this.post(
        `/api/v1/admin/feature-flags/${enc(flag)}/${enabled ? 'enable' : 'disable'}`,
        reason ? { reason } : {},
        call,
      ),
    haltMarket: (market: string, reason?: string, call?: CallOptions): Promise<T.MarketHalt> =>
      this.post(`/api/v1/admin/markets/${enc(market)}/halt`, reason ? { reason } : {}, call),
    resumeMarket: (market: string, reason?: string, call?: CallOptions): Promise<T.MarketHalt> =>
      this.post(`/api/v1/admin/markets/${enc(market)}/resume`, reason ? { reason } : {}, call),
    deadLetters: (
      service: T.DeadLetterService,
      q: { limit?: number; cursor?: string; status?: 'dead' | 'retried'; queue?: string } = {},
      call?: CallOptions,
    ): Promise<T.Page<T.DeadLetter>> => this.get(`/api/v1/admin/dead-letters/${service}/`, q, call),
    deadLetter: (service: T.DeadLetterService, id: string, call?: CallOptions): Promise<T.DeadLetter> =>
      this.get(`/api/v1/admin/dead-letters/${service}/${enc(id)}`, undefined, call),
    retryDeadLetter: (
      service: T.DeadLetterService,
      id: string,
      call?: CallOptions,
    ): Promise<{ alreadyRetried: boolean; deadLetter: T.DeadLetter }> =>
      this.post(`/api/v1/admin/dead-letters/${service}/${enc(id)}/retry`, undefined, call),
    runReconciliation: (call?: CallOptions): Promise<T.ReconciliationReport> =>
      this.post('/api/v1/admin/reconciliation/run', undefined, call),
    reconciliationReports: async (q: { limit?: number } = {}, call?: CallOptions): Promise<T.ReconciliationSummary[]> =>
      (await this.get<{ reports: T.ReconciliationSummary[] }>('/api/v1/admin/reconciliation/reports', q, call)).reports,
    reconciliationReport: (id: string, call?: CallOptions): Promise<T.ReconciliationReport> =>
      this.get(`/api/v1/admin/reconciliation/reports/${enc(id)}`, undefined, call),
    backups: async (call?: CallOptions): Promise<T.Backup[]> =>
      (await this.get<{ backups: T.Backup[] }>('/api/v1/admin/backups', undefined, call)).backups,
    createBackup: (call?: CallOptions): Promise<T.Backup> => this.post('/api/v1/admin/backups', undefined, call),
    audit: (
      q: { limit?: number; before?: number; actorId?: string; targetId?: string; action?: string } = {},
      call?: CallOptions,
    ): Promise<{ items: T.AuditEntry[]; nextBefore: number | null }> => this.get('/api/v1/admin/audit', q, call),
    users: async (q: { email?: string; limit?: number } = {}, call?: CallOptions): Promise<T.User[]> =>
      (await this.get<{ users: T.User[] }>('/api/v1/admin/users', q, call)).users,
    lockUser: (id: string, reason?: string, call?: CallOptions): Promise<T.User> =>
      this.post(`/api/v1/admin/users/${enc(id)}/lock`, reason ? { reason } : {}, call),
    unlockUser: (id: string, call?: CallOptions): Promise<T.User> =>
      this.post(`/api/v1/admin/users/${enc(id)}/unlock`, undefined, call),
    setUserRoles: (id: string, roles: T.Role[], call?: CallOptions): Promise<T.User> =>
      this.request({
        method: 'PUT',
        path: `/api/v1/admin/users/${enc(id)}/roles`,
        body: { roles },
        auth: 'required',
        ...(call ? { call } : {}),
      }),
    engineMarkets: (call?: CallOptions): Promise<{ replica: string; markets: T.EngineMarket[] }> =>
      this.get('/api/v1/admin/engine/markets', undefined, call),
    /** Any user's order by id, with its owner and the Jaeger search for its trace (admin and support). */
    order: (id: string, call?: CallOptions): Promise<T.AdminOrder> =>
      this.get(`/api/v1/admin/orders/${enc(id)}`, undefined, call),
    /** Payouts by state (default pending: not paid out yet), with exact per-asset totals (admin and support). */
    payouts: (
      q: { status?: T.PayoutState; asset?: string; limit?: number } = {},
      call?: CallOptions,
    ): Promise<T.Payouts> => this.get('/api/v1/admin/payouts', q, call),
    /** Withdrawal requests refused by policy, newest first (admin and support). */
    blockedWithdrawals: async (q: { limit?: number } = {}, call?: CallOptions): Promise<T.BlockedWithdrawal[]> =>
      (await this.get<{ blocked: T.BlockedWithdrawal[] }>('/api/v1/admin/withdrawals/blocked', q, call)).blocked,
  };

  // ------------------------------------------------------------------ helpers

  private get<R>(path: string, query?: Query, call?: CallOptions): Promise<R> {
    return this.request({
      method: 'GET',
      path,
      auth: 'required',
      ...(query ? { query } : {}),
      ...(call ? { call } : {}),
    });
  }

  private publicGet<R>(path: string, query?: Query, call?: CallOptions): Promise<R> {
    return this.request({ method: 'GET', path, auth: 'none', ...(query ? { query } : {}), ...(call ? { call } : {}) });
  }

  /** A POST without credentials (email links work without a session), without an Idempotency-Key. */
  private publicPost<R>(path: string, body: unknown, call?: CallOptions): Promise<R> {
    return this.request({ method: 'POST', path, body, auth: 'none', idempotent: false, ...(call ? { call } : {}) });
  }

  private post<R>(path: string, body?: unknown, call?: CallOptions): Promise<R> {
    return this.request({
      method: 'POST',
      path,
      auth: 'required',
      ...(body !== undefined ? { body } : {}),
      ...(call ? { call } : {}),
    });
  }

  private del<R>(path: string, query?: Query, call?: CallOptions): Promise<R> {
    return this.request({
      method: 'DELETE',
      path,
      auth: 'required',
      ...(query ? { query } : {}),
      ...(call ? { call } : {}),
    });
  }
}
