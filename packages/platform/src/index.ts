export {
  createApp,
  DebugRequestLogController,
  REDACT_PATHS,
  RecentErrors,
  type App,
  type CreateAppOptions,
  type ReadinessCheck,
} from './app.ts';
export {
  AppError,
  badRequest,
  conflict,
  forbidden,
  notFound,
  serviceUnavailable,
  tooManyRequests,
  unauthorized,
  unprocessable,
} from './errors.ts';
export { createHttpMetrics, promClient, type HttpMetrics } from './metrics.ts';
export { DecimalString, ErrorBody, SignedDecimalString, Uuid, errorResponses } from './schemas.ts';
export { runService, type RunOptions } from './service.ts';
export { annotateSpan, nameServerSpan, startTelemetry, stopTelemetry, untracedRequest } from './telemetry.ts';
export {
  canonicalJson,
  purgeIdempotencyKeys,
  recordIdempotentReply,
  registerIdempotency,
  type IdempotencyOptions,
} from './idempotency.ts';
export { FeatureFlags, registerFeatureFlagRoutes } from './flags.ts';
export { featureFlagsTable, idempotencyKeysTable } from './tables.ts';
export { Type, type Static, type TSchema } from '@sinclair/typebox';
