export {
  RabbitConnection,
  type ConnectionOptions,
  type ConnectionResource,
  type MessagingHealth,
} from './connection.ts';
export {
  Consumer,
  IdConflictError,
  PermanentError,
  messageDigest,
  dispatch,
  isDatabaseUnavailable,
  on,
  ATTEMPT_HEADER,
  LAST_ERROR_HEADER,
  DEAD_LETTER_REASON_HEADER,
  ORIGINAL_QUEUE_HEADER,
  type ConsumeOptions,
  type BatchContext,
  type BatchHandler,
  type DeliveryContext,
  type MessageHandler,
} from './consumer.ts';
export {
  deadLetterRoutes,
  getDeadLetter,
  listDeadLetters,
  retryDeadLetter,
  DeadLetterSchema,
  type DeadLetter,
  type DeadLetterRoutesOptions,
  type ListDeadLettersOptions,
  type RetryDeadLetterResult,
} from './dead-letters.ts';
export { silentLogger, stderrLogger, type Logger } from './logger.ts';
export { createMessaging, Messaging, type MessagingEnqueueOptions, type MessagingOptions } from './messaging.ts';
export { messagingMetrics, type MessagingMetrics, type MetricsRegistry } from './metrics.ts';
export {
  enqueue,
  enqueueGuarded,
  enqueueMany,
  OutboxRelay,
  type EnqueueOptions,
  type OutboxGuard,
  type OutboxRelayOptions,
  type OutboxRow,
  type Queryable,
} from './outbox.ts';
export { PACK_CONTENT_TYPE, encodePack, envelopesOf, unpack, type PackedMessage } from './pack.ts';
export { ConfirmPublisher, type PublishOptions, type PublishResult } from './publisher.ts';
export {
  DEAD_LETTER_TABLE,
  INBOX_TABLE,
  MESSAGE_ATTEMPTS_TABLE,
  messageAttemptsTable,
  OUTBOX_TABLE,
  deadLetterTable,
  inboxTable,
  outboxChannel,
  outboxTable,
} from './tables.ts';
export {
  BROKER_DELIVERY_LIMIT,
  COMMANDS_EXCHANGE,
  DEFAULT_DELIVERY_LIMIT,
  DEFAULT_EXCHANGE,
  DEFAULT_RETRY,
  EVENTS_EXCHANGE,
  EVENTS_UNROUTED_EXCHANGE,
  EVENTS_UNROUTED_QUEUE,
  Topology,
  declareExchanges,
  deadLetterQueueName,
  expandQueue,
  retryDelay,
  retryQueueName,
  type Binding,
  type QueueSpec,
  type RetryPolicy,
} from './topology.ts';
export { relayWakeup, type RelayWakeup } from './wakeup.ts';
export {
  holdingQueueName,
  queuesWithOtherDeliveryLimit,
  recreateQueue,
  type RecreateQueueOptions,
  type RecreateQueueResult,
} from './recreate-queue.ts';
