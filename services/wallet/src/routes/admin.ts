import type { FastifyRequest } from 'fastify';
import { actorOf, allOf, requireFreshMfa, requireFreshMfaOnWrites, requireRole } from '@exchange/auth-client';
import { deadLetterRoutes } from '@exchange/messaging';
import { errorResponses, notFound, registerFeatureFlagRoutes, Type, type App, type Static } from '@exchange/platform';
import type { WalletContext } from '../context.ts';
import { audit } from '../audit/service.ts';
import { WALLET_SCHEMA } from '../db/schema.ts';
import { getReport, listReports, runReconciliation, type ReportRow } from '../reconciliation/service.ts';
import { balancesOf, BalancesResponse, ledgerPage, LedgerQuery, LedgerResponse } from './statements.ts';

const Check = Type.Object({
  name: Type.String(),
  description: Type.String(),
  mismatches: Type.Integer(),
  items: Type.Array(Type.Record(Type.String(), Type.Unknown()), { description: 'First 500 mismatches' }),
  error: Type.Optional(Type.String({ description: 'Why the check could not run (its mismatches are then unknown)' })),
});

const ReportSummary = Type.Object({
  id: Type.String(),
  trigger: Type.String(),
  requestedBy: Type.Union([Type.String(), Type.Null()]),
  status: Type.Union([Type.Literal('ok'), Type.Literal('mismatch'), Type.Literal('incomplete')], {
    description: 'incomplete: nothing found, but a check could not run (see its error)',
  }),
  mismatchCount: Type.Integer(),
  startedAt: Type.String(),
  finishedAt: Type.String(),
});

const Report = Type.Composite([
  ReportSummary,
  Type.Object({
    report: Type.Object({
      checks: Type.Array(Check),
      mismatchCount: Type.Integer(),
      activeHolds: Type.Object({
        count: Type.Integer(),
        byRefType: Type.Array(Type.Record(Type.String(), Type.Unknown())),
        items: Type.Array(Type.Record(Type.String(), Type.Unknown())),
      }),
      totals: Type.Array(Type.Record(Type.String(), Type.Unknown())),
    }),
  }),
]);

const summary = (r: ReportRow) => ({
  id: r.id,
  trigger: r.trigger,
  requestedBy: r.requestedBy,
  status: r.status,
  mismatchCount: r.mismatchCount,
  startedAt: r.startedAt,
  finishedAt: r.finishedAt,
});

export function registerAdminRoutes(app: App, ctx: WalletContext): void {
  const { pool } = ctx;
  const tags = ['admin'];
  const security = [{ bearer: [] }];
  const staff = requireRole('admin', 'support');

  app.post(
    '/api/v1/admin/reconciliation/run',
    {
      onRequest: allOf(staff, requireFreshMfa()),
      schema: {
        tags,
        security,
        summary: 'Reconcile now: recompute balances from the journal, check sums, holds and rail records',
        response: { 201: Report, ...errorResponses(401, 403) },
      },
    },
    async (req, reply) => {
      const report = await runReconciliation(pool, {
        ...ctx.reconciliation,
        trigger: 'manual',
        requestedBy: actorOf(req),
        metrics: ctx.metrics,
      });
      if (report.status !== 'ok')
        req.log.error({ reportId: report.id, mismatches: report.mismatchCount }, 'reconciliation found mismatches');
      await audit(
        pool,
        {
          actor: actorOf(req),
          action: 'reconciliation.run',
          outcome: 'ok',
          subjectType: 'reconciliation_report',
          subjectId: report.id,
          details: { status: report.status, mismatchCount: report.mismatchCount },
          requestId: req.id,
        },
        req.log,
      );
      return reply.status(201).send(report);
    },
  );

  const ListQuery = Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }) });
  app.get(
    '/api/v1/admin/reconciliation/reports',
    {
      onRequest: staff,
      schema: {
        tags,
        security,
        summary: 'Latest reconciliation reports (summaries), newest first',
        querystring: ListQuery,
        response: { 200: Type.Object({ reports: Type.Array(ReportSummary) }), ...errorResponses(400, 401, 403) },
      },
    },
    async (req) => ({
      reports: (await listReports(pool, (req.query as Static<typeof ListQuery>).limit)).map(summary),
    }),
  );

  const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
  app.get(
    '/api/v1/admin/reconciliation/reports/:id',
    {
      onRequest: staff,
      schema: {
        tags,
        security,
        summary: 'One reconciliation report with every check and its mismatches',
        params: IdParams,
        response: { 200: Report, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => {
      const r = await getReport(pool, (req.params as Static<typeof IdParams>).id);
      if (!r) throw notFound('REPORT_NOT_FOUND', 'reconciliation report not found');
      return r;
    },
  );

  // Support looks at a user's account when answering a ticket; each look is audited (who saw whose money).
  const UserParams = Type.Object({ userId: Type.String({ format: 'uuid' }) });
  const viewed = (req: FastifyRequest, what: string) =>
    audit(
      pool,
      {
        actor: actorOf(req),
        action: `account.${what}_viewed`,
        outcome: 'ok',
        subjectType: 'user',
        subjectId: (req.params as Static<typeof UserParams>).userId,
        requestId: req.id,
      },
      req.log,
    );
  app.get(
    '/api/v1/admin/wallet/users/:userId/balances',
    {
      onRequest: staff,
      schema: {
        tags,
        security,
        summary: "A user's balances in every asset (support and admin; audited)",
        params: UserParams,
        response: { 200: BalancesResponse, ...errorResponses(400, 401, 403) },
      },
    },
    async (req) => {
      await viewed(req, 'balances');
      return { balances: await balancesOf(ctx, (req.params as Static<typeof UserParams>).userId) };
    },
  );
  app.get(
    '/api/v1/admin/wallet/users/:userId/ledger',
    {
      onRequest: staff,
      schema: {
        tags,
        security,
        summary: "A user's ledger statement, newest first, paginated by cursor (support and admin; audited)",
        params: UserParams,
        querystring: LedgerQuery,
        response: { 200: LedgerResponse, ...errorResponses(400, 401, 403) },
      },
    },
    async (req) => {
      await viewed(req, 'ledger');
      return ledgerPage(ctx, (req.params as Static<typeof UserParams>).userId, req.query as Static<typeof LedgerQuery>);
    },
  );

  // Kill switches owned here (the order service serves the list route for all of them).
  registerFeatureFlagRoutes(app, ctx.flags, {
    authorize: allOf(requireRole('admin'), requireFreshMfa()),
    actorOf,
    listRoute: false,
    onChange: async (name, enabled, actor, req) =>
      audit(
        pool,
        {
          actor,
          action: `feature_flag.${enabled ? 'enable' : 'disable'}`,
          outcome: 'ok',
          subjectType: 'feature_flag',
          subjectId: name,
          requestId: req.id,
        },
        req.log,
      ),
  });

  void app.register(
    async (scope) => {
      scope.addHook('onRequest', requireRole('admin'));
      scope.addHook('onRequest', requireFreshMfaOnWrites);
      await scope.register(deadLetterRoutes, { pool, schema: WALLET_SCHEMA });
    },
    { prefix: '/api/v1/admin/dead-letters/wallet' },
  );
}
