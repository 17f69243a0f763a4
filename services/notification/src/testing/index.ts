/** Test helpers of the notification service, exported as `@exchange/notification/testing`. */
export { startTestSmtp, type CaughtMail, type TestSmtp } from './smtp.ts';
