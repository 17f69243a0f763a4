export { startPrivateBroker, type PrivateBroker } from '@exchange/messaging/private-broker';
export { ADMIN, eventually, startTestStack, type TestStack, type TestStackOptions } from './harness.ts';
export { balance, crossTrade, newTrader, orderReaches, trader, traderSessions } from './fixtures/traders.ts';
export { latestOutboxPayload } from './fixtures/outbox.ts';
export { useTestStack } from './fixtures/stack.ts';
export { forgetStaffEnrolment, staffAccessToken, staffTotpCode, staffTotpSecret } from './admin-session.ts';
