import type pg from 'pg';
import { promClient } from '@exchange/platform';
import { oldestPendingSeconds, pendingCount } from './mails/repository.ts';

export interface MailMetrics {
  sent: promClient.Counter<'template'>;
  failed: promClient.Counter<'template'>;
  givenUp: promClient.Counter<'template'>;
}

/**
 * mail_sent_total / mail_failed_total (every failed SMTP attempt; the MailFailureRateHigh alert watches their ratio),
 * mail_given_up_total (mails marked failed after MAIL_MAX_ATTEMPTS), and, read from the table at scrape time,
 * mail_pending and mail_oldest_pending_seconds.
 */
export function createMailMetrics(registry: promClient.Registry, pool: pg.Pool): MailMetrics {
  const r = [registry];
  new promClient.Gauge({
    name: 'mail_pending',
    help: 'Mails waiting to be sent (first attempt or retry)',
    registers: r,
    async collect() {
      this.set(await pendingCount(pool));
    },
  });
  new promClient.Gauge({
    name: 'mail_oldest_pending_seconds',
    help: 'Age of the oldest mail not sent yet (0 = none)',
    registers: r,
    async collect() {
      this.set(await oldestPendingSeconds(pool));
    },
  });
  return {
    sent: new promClient.Counter({
      name: 'mail_sent_total',
      help: 'Mails accepted by the SMTP server, by template',
      labelNames: ['template'],
      registers: r,
    }),
    failed: new promClient.Counter({
      name: 'mail_failed_total',
      help: 'Failed SMTP attempts (each is retried with backoff until MAIL_MAX_ATTEMPTS), by template',
      labelNames: ['template'],
      registers: r,
    }),
    givenUp: new promClient.Counter({
      name: 'mail_given_up_total',
      help: 'Mails marked failed after MAIL_MAX_ATTEMPTS attempts, by template',
      labelNames: ['template'],
      registers: r,
    }),
  };
}
