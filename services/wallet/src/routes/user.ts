import type { FastifyReply, FastifyRequest } from 'fastify';
import { actorOf, requireAuth, requireFreshMfa, requireScope, requireVerifiedEmail } from '@exchange/auth-client';
import {
  AppError,
  badRequest,
  errorResponses,
  notFound,
  recordIdempotentReply,
  serviceUnavailable,
  forbidden,
  Type,
  type App,
  type Static,
} from '@exchange/platform';
import type { WalletContext } from '../context.ts';
import { audit } from '../audit/service.ts';
import {
  getDeposit,
  getWithdrawal,
  listDeposits,
  listWithdrawals,
  type DepositRow,
  type WithdrawalRow,
} from '../funding/repository.ts';
import {
  cancelWithdrawal,
  confirmWithdrawal,
  createDeposit,
  requestWithdrawal,
  WithdrawalBlocked,
} from '../funding/service.ts';
import { balancesOf, BalancesResponse, ledgerPage, LedgerQuery, LedgerResponse } from './statements.ts';

const AssetSymbol = Type.String({ pattern: '^[A-Z0-9]{2,10}$', description: 'Asset symbol, e.g. BTC' });
const Amount = Type.String({ maxLength: 80, description: 'Decimal string, e.g. "0.015" (never a number)' });
const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
const ListQuery = Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }) });

const DepositSchema = Type.Object({
  id: Type.String(),
  asset: Type.String(),
  amount: Type.String(),
  status: Type.Union([Type.Literal('pending'), Type.Literal('confirmed')]),
  confirmAt: Type.String(),
  confirmedAt: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(),
});

const WithdrawalSchema = Type.Object({
  id: Type.String(),
  asset: Type.String(),
  amount: Type.String(),
  fee: Type.String(),
  address: Type.String(),
  status: Type.Union([
    Type.Literal('awaiting_confirmation'),
    Type.Literal('pending'),
    Type.Literal('processing'),
    Type.Literal('completed'),
    Type.Literal('failed'),
    Type.Literal('cancelled'),
  ]),
  railTxId: Type.Union([Type.String(), Type.Null()]),
  failureReason: Type.Union([Type.String(), Type.Null()]),
  confirmationExpiresAt: Type.Union([Type.String(), Type.Null()], {
    description: 'While awaiting_confirmation: when the emailed confirmation link expires (then it is cancelled)',
  }),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});

const DepositBody = Type.Object({ asset: AssetSymbol, amount: Amount }, { additionalProperties: false });
const WithdrawalBody = Type.Object(
  { asset: AssetSymbol, amount: Amount, address: Type.String({ minLength: 1, maxLength: 128 }) },
  { additionalProperties: false },
);

/** `"amount": 12.5` is refused with the same code as any other bad amount (before generic schema validation). */
async function amountMustBeString(req: FastifyRequest): Promise<void> {
  const body = req.body as Record<string, unknown> | null | undefined;
  if (body && typeof body === 'object' && 'amount' in body && typeof body.amount !== 'string') {
    throw badRequest('INVALID_AMOUNT', 'amount must be a decimal string, e.g. "0.015"');
  }
}

export function registerUserRoutes(app: App, ctx: WalletContext): void {
  const { pool, assets, metrics, flags } = ctx;
  const tags = ['wallet'];
  const security: Array<Record<string, string[]>> = [{ bearer: [] }, { apiKey: [] }];
  const read = [requireAuth, requireScope('read')];
  const userId = (req: FastifyRequest) => req.principal!.id;

  const depositOut = (d: DepositRow) => ({
    id: d.id,
    asset: d.asset,
    amount: assets.format(d.asset, d.amount),
    status: d.status,
    confirmAt: d.confirm_at.toISOString(),
    confirmedAt: d.confirmed_at ? d.confirmed_at.toISOString() : null,
    createdAt: d.created_at.toISOString(),
  });
  const withdrawalOut = (w: WithdrawalRow) => ({
    id: w.id,
    asset: w.asset,
    amount: assets.format(w.asset, w.amount),
    fee: assets.format(w.asset, w.fee),
    address: w.address,
    status: w.status,
    railTxId: w.rail_tx_id,
    failureReason: w.failure_reason,
    confirmationExpiresAt:
      w.status === 'awaiting_confirmation' && w.confirm_expires_at ? w.confirm_expires_at.toISOString() : null,
    createdAt: w.created_at.toISOString(),
    updatedAt: w.updated_at.toISOString(),
  });

  app.get(
    '/api/v1/wallet/balances',
    {
      onRequest: read,
      schema: {
        tags,
        security,
        summary: 'Balances in every asset (available, held, total) as decimal strings',
        response: { 200: BalancesResponse, ...errorResponses(401, 403) },
      },
    },
    async (req) => ({ balances: await balancesOf(ctx, userId(req)) }),
  );

  app.get(
    '/api/v1/wallet/ledger',
    {
      onRequest: read,
      schema: {
        tags,
        security,
        summary: 'Statement: every posting on your accounts, newest first, paginated by an opaque cursor',
        querystring: LedgerQuery,
        response: { 200: LedgerResponse, ...errorResponses(400, 401, 403) },
      },
    },
    async (req) => ledgerPage(ctx, userId(req), req.query as Static<typeof LedgerQuery>),
  );

  // ---------------------------------------------------------------------------------------------------- deposits
  app.post(
    '/api/v1/wallet/deposits',
    {
      onRequest: [requireAuth, requireScope('trade')],
      preValidation: amountMustBeString,
      schema: {
        tags,
        security,
        summary:
          'Sandbox deposit (only when SANDBOX_DEPOSITS is on): pending now, credited once confirmed (DEPOSIT_CONFIRMATION_MS)',
        description: 'Accepts `Idempotency-Key`. Kill switch: `deposits` (503 DEPOSITS_DISABLED).',
        body: DepositBody,
        response: { 201: DepositSchema, ...errorResponses(400, 401, 403, 409, 422, 503) },
      },
    },
    async (req, reply) => {
      const body = req.body as Static<typeof DepositBody>;
      if (!ctx.settings.sandboxDeposits) {
        throw forbidden('SANDBOX_DEPOSITS_DISABLED', 'self-service deposits exist only in a sandbox deployment');
      }
      if (!(await flags.isEnabled('deposits'))) {
        throw serviceUnavailable('DEPOSITS_DISABLED', 'deposits are temporarily disabled');
      }
      const amount = assets.parse(body.asset, body.amount);
      const d = await createDeposit(
        pool,
        { userId: userId(req), asset: body.asset, amount, confirmationMs: ctx.settings.depositConfirmationMs },
        (c, row) => recordIdempotentReply(c, req, 201, depositOut(row)),
      );
      metrics.depositsRequested.inc({ asset: d.asset });
      return reply.status(201).send(depositOut(d));
    },
  );

  app.get(
    '/api/v1/wallet/deposits',
    {
      onRequest: read,
      schema: {
        tags,
        security,
        summary: 'Your deposits, newest first',
        querystring: ListQuery,
        response: { 200: Type.Object({ deposits: Type.Array(DepositSchema) }), ...errorResponses(400, 401, 403) },
      },
    },
    async (req) => ({
      deposits: (await listDeposits(pool, userId(req), (req.query as Static<typeof ListQuery>).limit)).map(depositOut),
    }),
  );

  app.get(
    '/api/v1/wallet/deposits/:id',
    {
      onRequest: read,
      schema: {
        tags,
        security,
        summary: 'One of your deposits',
        params: IdParams,
        response: { 200: DepositSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => {
      const d = await getDeposit(pool, userId(req), (req.params as Static<typeof IdParams>).id);
      if (!d) throw notFound('DEPOSIT_NOT_FOUND', 'deposit not found');
      return depositOut(d);
    },
  );

  // ------------------------------------------------------------------------------------------------- withdrawals
  const blocked = async (req: FastifyRequest, reason: string, err: AppError) => {
    metrics.withdrawalsBlocked.inc({ reason });
    await audit(
      pool,
      {
        actor: actorOf(req),
        action: 'withdrawal.request',
        outcome: 'blocked',
        details: { reason, code: err.code, body: req.body ?? null },
        requestId: req.id,
      },
      req.log,
    );
  };
  const mfa = requireFreshMfa(ctx.settings.mfaMaxAgeS);
  const scope = requireScope('withdraw');
  /** Authenticated, scope `withdraw` (API keys), fresh 2FA when enabled; refusals are counted and audited. */
  const withdrawGuard = async (req: FastifyRequest, reply: FastifyReply) => {
    await requireAuth(req, reply);
    try {
      await scope(req, reply);
    } catch (e) {
      if (e instanceof AppError) await blocked(req, 'scope', e);
      throw e;
    }
    try {
      await mfa(req, reply);
    } catch (e) {
      if (e instanceof AppError) await blocked(req, 'mfa', e);
      throw e;
    }
    try {
      await requireVerifiedEmail(req, reply);
    } catch (e) {
      if (e instanceof AppError) await blocked(req, 'email_not_verified', e);
      throw e;
    }
  };

  app.post(
    '/api/v1/wallet/withdrawals',
    {
      onRequest: withdrawGuard,
      preValidation: amountMustBeString,
      schema: {
        tags,
        security,
        summary: 'Request a withdrawal: amount + fee are held now; payout follows after the cancellation window',
        description:
          'Checks: address format per asset, min/max, rolling 24 h limit by KYC tier (429 VELOCITY_LIMIT_EXCEEDED), ' +
          'available funds (amount + fee). Needs scope `withdraw`, a verified email (403 EMAIL_NOT_VERIFIED) and a ' +
          'fresh 2FA check when 2FA is on. At or above WITHDRAWAL_EMAIL_CONFIRM_THRESHOLDS for its asset it starts as ' +
          '`awaiting_confirmation` and waits for the emailed link (POST /api/v1/wallet/withdrawals/confirm); ' +
          'unconfirmed when the link expires it is cancelled and the hold released. ' +
          'Accepts `Idempotency-Key`. Kill switch: `withdrawals` (503 WITHDRAWALS_DISABLED).',
        body: WithdrawalBody,
        response: { 201: WithdrawalSchema, ...errorResponses(400, 401, 403, 409, 422, 429, 503) },
      },
    },
    async (req, reply) => {
      const body = req.body as Static<typeof WithdrawalBody>;
      try {
        if (!(await flags.isEnabled('withdrawals'))) {
          throw new WithdrawalBlocked(
            'kill_switch',
            503,
            'WITHDRAWALS_DISABLED',
            'withdrawals are temporarily disabled',
          );
        }
        const w = await requestWithdrawal(
          pool,
          assets,
          {
            limits: ctx.limits,
            dispatchDelayMs: ctx.settings.withdrawalDispatchDelayMs,
            emailConfirmThresholds: ctx.emailConfirmThresholds,
            emailConfirmTtlS: ctx.settings.withdrawalEmailConfirmTtlS,
          },
          {
            userId: userId(req),
            asset: body.asset,
            amount: body.amount,
            address: body.address,
          },
          (c, row) => recordIdempotentReply(c, req, 201, withdrawalOut(row)),
        );
        metrics.withdrawalsRequested.inc({ asset: w.asset });
        await audit(
          pool,
          {
            actor: actorOf(req),
            action: 'withdrawal.request',
            outcome: 'ok',
            subjectType: 'withdrawal',
            subjectId: w.id,
            details: { asset: w.asset, amount: assets.format(w.asset, w.amount), address: w.address },
            requestId: req.id,
          },
          req.log,
        );
        return reply.status(201).send(withdrawalOut(w));
      } catch (e) {
        if (e instanceof WithdrawalBlocked) await blocked(req, e.reason, e);
        throw e;
      }
    },
  );

  app.get(
    '/api/v1/wallet/withdrawals',
    {
      onRequest: read,
      schema: {
        tags,
        security,
        summary: 'Your withdrawals, newest first',
        querystring: ListQuery,
        response: { 200: Type.Object({ withdrawals: Type.Array(WithdrawalSchema) }), ...errorResponses(400, 401, 403) },
      },
    },
    async (req) => ({
      withdrawals: (await listWithdrawals(pool, userId(req), (req.query as Static<typeof ListQuery>).limit)).map(
        withdrawalOut,
      ),
    }),
  );

  app.get(
    '/api/v1/wallet/withdrawals/:id',
    {
      onRequest: read,
      schema: {
        tags,
        security,
        summary: 'One of your withdrawals (404 for anyone else’s)',
        params: IdParams,
        response: { 200: WithdrawalSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => {
      const w = await getWithdrawal(pool, userId(req), (req.params as Static<typeof IdParams>).id);
      if (!w) throw notFound('WITHDRAWAL_NOT_FOUND', 'withdrawal not found');
      return withdrawalOut(w);
    },
  );

  const ConfirmBody = Type.Object(
    { token: Type.String({ minLength: 1, maxLength: 300, description: 'the token of the emailed link' }) },
    { additionalProperties: false },
  );
  app.post(
    '/api/v1/wallet/withdrawals/confirm',
    {
      schema: {
        tags,
        summary: 'Confirm a withdrawal with the token of the emailed link (single use); it then proceeds as pending',
        description:
          'The token is the credential (no login needed: the link was mailed to the account holder, who already ' +
          'passed 2FA when requesting). Unknown, altered or used: 400 INVALID_TOKEN; expired: 400 TOKEN_EXPIRED.',
        body: ConfirmBody,
        response: { 200: WithdrawalSchema, ...errorResponses(400) },
      },
    },
    async (req) => {
      const w = await confirmWithdrawal(
        pool,
        (req.body as Static<typeof ConfirmBody>).token,
        ctx.settings.withdrawalDispatchDelayMs,
      );
      await audit(
        pool,
        {
          actor: `email-link:${w.user_id}`,
          action: 'withdrawal.confirm',
          outcome: 'ok',
          subjectType: 'withdrawal',
          subjectId: w.id,
          requestId: req.id,
        },
        req.log,
      );
      return withdrawalOut(w);
    },
  );

  app.post(
    '/api/v1/wallet/withdrawals/:id/cancel',
    {
      onRequest: [requireAuth, requireScope('withdraw')],
      schema: {
        tags,
        security,
        summary: 'Cancel a withdrawal that is still pending or awaiting confirmation; its funds are released',
        params: IdParams,
        response: { 200: WithdrawalSchema, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (req) => {
      const w = await cancelWithdrawal(pool, userId(req), (req.params as Static<typeof IdParams>).id);
      await audit(
        pool,
        {
          actor: actorOf(req),
          action: 'withdrawal.cancel',
          outcome: 'ok',
          subjectType: 'withdrawal',
          subjectId: w.id,
          requestId: req.id,
        },
        req.log,
      );
      return withdrawalOut(w);
    },
  );
}
