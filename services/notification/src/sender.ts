import nodemailer from 'nodemailer';
import type pg from 'pg';
import type { MailMetrics } from './metrics.ts';
import * as repo from './mails/repository.ts';

export interface Transport {
  sendMail(mail: {
    from: string;
    to: string;
    subject: string;
    text: string;
    html: string;
    messageId: string;
    headers?: Record<string, string>;
  }): Promise<unknown>;
  close?(): void;
}

export interface SmtpSettings {
  host: string;
  port: number;
  secure: boolean;
  requireTls: boolean;
  user?: string | undefined;
  password?: string | undefined;
  timeoutMs: number;
}

/** nodemailer over SMTP: implicit TLS (`secure`) or STARTTLS when offered (required with `requireTls`). */
export function smtpTransport(s: SmtpSettings): Transport {
  return nodemailer.createTransport({
    host: s.host,
    port: s.port,
    secure: s.secure,
    requireTLS: s.requireTls,
    ...(s.user ? { auth: { user: s.user, pass: s.password ?? '' } } : {}),
    connectionTimeout: s.timeoutMs,
    greetingTimeout: s.timeoutMs,
    socketTimeout: s.timeoutMs,
  });
}

export interface SenderOptions {
  pool: pg.Pool;
  transport: Transport;
  from: string;
  metrics: MailMetrics;
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  pollMs: number;
  concurrency?: number;
  /** Sent/failed rows older than this are deleted (days). */
  retentionDays?: number;
  log: { info(o: object, m?: string): void; warn(o: object, m?: string): void; error(o: object, m?: string): void };
}

/**
 * Sends what notification.mails holds. Each worker claims one due row (FOR UPDATE SKIP LOCKED, so replicas and
 * workers never take the same mail), sends it, and in the same transaction marks it sent (bodies cleared) or
 * schedules the next attempt: retryBaseMs·2^(attempts-1), at most retryMaxMs; after maxAttempts it is `failed`.
 * A request never waits for any of this: the row was written by the event consumer long after the request returned.
 *
 * Delivery is at least once towards the SMTP server: a crash between the server's 250 and the commit resends that
 * one mail on restart, with the same Message-ID header, which receivers use to collapse duplicates.
 */
export class MailSender {
  private readonly o: SenderOptions;
  private stopped = true;
  private workers: Promise<void>[] = [];
  private wakers = new Set<() => void>();
  private listener: pg.PoolClient | undefined;
  private lastCleanup = 0;

  constructor(o: SenderOptions) {
    this.o = o;
  }

  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    await this.listen().catch((err: unknown) => this.o.log.warn({ err }, 'mail sender: LISTEN failed; polling only'));
    for (let i = 0; i < (this.o.concurrency ?? 2); i++) this.workers.push(this.work());
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    await Promise.all(this.workers);
    this.workers = [];
    if (this.listener) {
      this.listener.release(true);
      this.listener = undefined;
    }
  }

  /** Wake the workers now (a new mail was written). */
  wake(): void {
    for (const w of [...this.wakers]) w();
  }

  private async listen(): Promise<void> {
    const c = await this.o.pool.connect();
    c.on('error', () => {
      if (this.listener === c) this.listener = undefined;
    });
    c.on('notification', () => this.wake());
    await repo.listenForMails(c);
    this.listener = c;
  }

  private async work(): Promise<void> {
    while (!this.stopped) {
      let sent = false;
      try {
        sent = await this.sendOne();
        await this.maybeCleanup();
      } catch (err) {
        this.o.log.error({ err }, 'mail sender: pass failed');
      }
      if (sent || this.stopped) continue;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          this.wakers.delete(done);
          resolve();
        };
        const t = setTimeout(done, this.o.pollMs);
        this.wakers.add(done);
      });
    }
  }

  /** Send one due mail, if any; true when one was attempted. */
  async sendOne(): Promise<boolean> {
    const c = await this.o.pool.connect();
    try {
      await c.query('BEGIN');
      const m = await repo.claimDueMail(c);
      if (!m) {
        await c.query('COMMIT');
        return false;
      }
      try {
        await this.o.transport.sendMail({
          from: this.o.from,
          to: m.to_address,
          subject: m.subject,
          text: m.text_body,
          html: m.html_body,
          messageId: m.message_id,
          headers: { 'X-Exchange-Event-Id': m.event_id, 'X-Exchange-Template': m.template },
        });
        await repo.markSent(c, m.id);
        await c.query('COMMIT');
        this.o.metrics.sent.inc({ template: m.template });
      } catch (err) {
        const attempts = m.attempts + 1;
        const giveUp = attempts >= this.o.maxAttempts;
        const delay = Math.min(this.o.retryBaseMs * 2 ** (attempts - 1), this.o.retryMaxMs);
        const error = (err instanceof Error ? err.message : String(err)).slice(0, 1000);
        await repo.recordFailedAttempt(c, [m.id, attempts, error, giveUp ? 'failed' : 'pending', delay]);
        await c.query('COMMIT');
        this.o.metrics.failed.inc({ template: m.template });
        if (giveUp) this.o.metrics.givenUp.inc({ template: m.template });
        const log = giveUp ? this.o.log.error : this.o.log.warn;
        log.call(
          this.o.log,
          { mailId: m.id, template: m.template, attempts, retryInMs: giveUp ? null : delay, err: error },
          giveUp ? 'mail given up after max attempts' : 'mail send failed; will retry',
        );
      }
      return true;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      c.release();
    }
  }

  private async maybeCleanup(): Promise<void> {
    if (Date.now() - this.lastCleanup < 3_600_000) return;
    this.lastCleanup = Date.now();
    await repo.deleteOldMails(this.o.pool, this.o.retentionDays ?? 30);
  }
}
