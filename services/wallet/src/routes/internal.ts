import { requireInternalCaller } from '@exchange/auth-client';
import {
  Hold,
  HoldBatchRequest,
  HoldBatchResult,
  HoldRequest,
  ReleaseRequest,
  ReleaseResult,
  type HoldBatchItem,
} from '@exchange/contracts/wallet';
import { withTransaction } from '@exchange/db';
import { errorResponses, notFound, Type, type App, type Static } from '@exchange/platform';
import type { WalletContext } from '../context.ts';
import { parseMinorUnits } from '../assets.ts';
import { audit } from '../audit/service.ts';
import { setKycTier } from '../funding/repository.ts';
import { createHoldBatcher } from '../ledger/hold-batch.ts';
import { releaseHold } from '../ledger/holds.ts';
import type { HoldRow } from '../ledger/model.ts';
import { getHold } from '../ledger/repository.ts';

export const holdOut = (h: HoldRow) => ({
  holdId: h.id,
  userId: h.user_id,
  asset: h.asset,
  amount: h.amount,
  captured: h.captured,
  released: h.released,
  remaining: (BigInt(h.amount) - BigInt(h.captured) - BigInt(h.released)).toString(),
  lateCaptured: h.late_captured,
  status: h.status,
  reason: h.reason,
  refType: h.ref_type,
  refId: h.ref_id,
  releaseReason: h.release_reason,
  createdAt: h.created_at.toISOString(),
  closedAt: h.closed_at ? h.closed_at.toISOString() : null,
});

/**
 * Service-to-service API (never routed by the gateway; `x-internal-token`): holds for the order service, KYC tier
 * for the KYC process.
 */
export function registerInternalRoutes(app: App, ctx: WalletContext): void {
  const { pool, assets } = ctx;
  const tags = ['internal'];
  const HoldParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
  // each caller its own credential and routes: holds are the order service's, the KYC tier the KYC process's
  const fromOrderService = requireInternalCaller('order');
  // Group commit: the holds requested while one transaction is in flight are created together in the next one.
  const holds = createHoldBatcher(pool, {
    onBatchFailure: (err, size) => app.log.warn({ err, size }, 'hold batch failed; retrying its holds one by one'),
  });

  /** One hold request through the batcher: its hold and whether this call created it, or the AppError it earns. */
  const hold = async (b: Static<typeof HoldRequest>) => {
    assets.get(b.asset);
    const amount = parseMinorUnits(b.amount);
    return holds.submit({
      holdId: b.holdId,
      userId: b.userId,
      asset: b.asset,
      amount,
      reason: b.reason,
      refType: b.refType,
      refId: b.refId,
    });
  };

  app.post(
    '/internal/holds',
    {
      onRequest: fromOrderService,
      schema: {
        tags,
        summary: 'Reserve funds for an order (idempotent by holdId = order id)',
        body: HoldRequest,
        response: { 201: Hold, 200: Hold, ...errorResponses(400, 401, 409) },
      },
    },
    async (req, reply) => {
      const { hold: h, created } = await hold(req.body as Static<typeof HoldRequest>);
      return reply.status(created ? 201 : 200).send(holdOut(h));
    },
  );

  app.post(
    '/internal/holds/batch',
    {
      onRequest: fromOrderService,
      schema: {
        tags,
        summary: 'Reserve funds for several orders in one call (each hold as POST /internal/holds would answer it)',
        description:
          'Order entry sends the holds of the orders that reach this step together in one call. Each result has the ' +
          'status and body the single call would have had, in request order; one hold refused does not affect the ' +
          'others. A result with a 5xx status was not decided (retry that hold).',
        body: HoldBatchRequest,
        response: { 200: HoldBatchResult, ...errorResponses(400, 401) },
      },
    },
    async (req) => {
      const results = await Promise.all(
        (req.body as Static<typeof HoldBatchRequest>).holds.map(async (b): Promise<HoldBatchItem> => {
          try {
            const { hold: h, created } = await hold(b);
            return { status: created ? 201 : 200, hold: holdOut(h) };
          } catch (err) {
            // each refused hold is logged and counted (http_errors_total by code) as the single route's would be
            const { status, code, message } = app.recordError(req, err);
            return { status, error: { code, message } };
          }
        }),
      );
      return { results };
    },
  );

  app.get(
    '/internal/holds/:id',
    {
      onRequest: fromOrderService,
      schema: {
        tags,
        summary: 'A hold and how much of it is captured, released, remaining',
        params: HoldParams,
        response: { 200: Hold, ...errorResponses(400, 401, 404) },
      },
    },
    async (req) => {
      const c = await pool.connect();
      try {
        const h = await getHold(c, (req.params as Static<typeof HoldParams>).id);
        if (!h) throw notFound('HOLD_NOT_FOUND', 'hold not found');
        return holdOut(h);
      } finally {
        c.release();
      }
    },
  );

  app.post(
    '/internal/holds/:id/release',
    {
      onRequest: fromOrderService,
      preValidation: async (req) => {
        if (req.body === undefined || req.body === null) req.body = {};
      },
      schema: {
        tags,
        summary: 'Release what is left of an order hold (idempotent: "0" once it has ended)',
        description:
          "Only holds of `refType` order or order_amend (an amend's top-up): a withdrawal hold is 409 HOLD_MISMATCH.",
        params: HoldParams,
        body: ReleaseRequest,
        response: { 200: ReleaseResult, ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (req) => {
      const id = (req.params as Static<typeof HoldParams>).id;
      const reason = (req.body as Static<typeof ReleaseRequest>).reason ?? 'released';
      const { hold, released } = await withTransaction(pool, (c) =>
        releaseHold(c, id, reason, ['order', 'order_amend']),
      );
      return { hold: holdOut(hold), released: released.toString() };
    },
  );

  const TierParams = Type.Object({ userId: Type.String({ format: 'uuid' }) });
  const TierBody = Type.Object({ tier: Type.Integer({ minimum: 0, maximum: 9 }) }, { additionalProperties: false });
  app.put(
    '/internal/users/:userId/kyc-tier',
    {
      onRequest: requireInternalCaller('kyc'),
      schema: {
        tags,
        summary: 'Set a user’s KYC tier (drives the daily withdrawal limits)',
        params: TierParams,
        body: TierBody,
        response: {
          200: Type.Object({ userId: Type.String(), kycTier: Type.Integer() }),
          ...errorResponses(400, 401),
        },
      },
    },
    async (req) => {
      const { userId } = req.params as Static<typeof TierParams>;
      const { tier } = req.body as Static<typeof TierBody>;
      await setKycTier(pool, userId, tier, 'service');
      await audit(
        pool,
        {
          actor: 'service',
          action: 'kyc_tier.set',
          outcome: 'ok',
          subjectType: 'user',
          subjectId: userId,
          details: { tier },
          requestId: req.id,
        },
        req.log,
      );
      return { userId, kycTier: tier };
    },
  );
}
