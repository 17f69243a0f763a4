/**
 * The SQL of notification.mails: the handler's insert (and the NOTIFY that wakes the senders), the sender's claim,
 * outcome and clean-up, and the metrics' reads.
 */
import type pg from 'pg';

type Db = Pick<pg.Pool | pg.PoolClient, 'query'>;

/** The channel a new mail row is announced on. */
export const MAIL_CHANNEL = 'notification_mails';

export interface MailRow {
  id: string;
  template: string;
  to_address: string;
  subject: string;
  text_body: string;
  html_body: string;
  message_id: string;
  attempts: number;
  event_id: string;
}

/** One mail per event (ON CONFLICT DO NOTHING: a second guard besides the inbox). */
export async function insertMail(
  db: Db,
  values: [
    eventId: string,
    eventType: string,
    template: string,
    userId: string,
    toAddress: string,
    subject: string,
    textBody: string,
    htmlBody: string,
    messageId: string,
  ],
): Promise<void> {
  await db.query(
    `INSERT INTO notification.mails (event_id, event_type, template, user_id, to_address, subject, text_body, html_body,
                                       message_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (event_id) DO NOTHING`,
    values,
  );
}

/** Wake the senders (delivered at commit). */
export async function notifyMailSenders(db: Db): Promise<void> {
  await db.query('SELECT pg_notify($1, $2)', [MAIL_CHANNEL, '']);
}

/** Listen for new mails on the connection `c`. */
export async function listenForMails(c: pg.PoolClient): Promise<void> {
  await c.query(`LISTEN "${MAIL_CHANNEL}"`);
}

/** The next due pending mail, locked (SKIP LOCKED: replicas and workers never take the same one). */
export async function claimDueMail(c: pg.PoolClient): Promise<MailRow | undefined> {
  const { rows } = await c.query<MailRow>(
    `SELECT id::text, template, to_address, subject, text_body, html_body, message_id, attempts, event_id
           FROM notification.mails
          WHERE status = 'pending' AND next_attempt_at <= now()
          ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED`,
  );
  return rows[0];
}

/** Sent: bodies cleared. */
export async function markSent(db: Db, id: string): Promise<void> {
  await db.query(
    `UPDATE notification.mails SET status = 'sent', sent_at = now(), attempts = attempts + 1, last_error = NULL,
                  text_body = NULL, html_body = NULL WHERE id = $1`,
    [id],
  );
}

/** A failed attempt: its count and error, `failed` or `pending` again after `delayMs`. */
export async function recordFailedAttempt(
  db: Db,
  values: [id: string, attempts: number, error: string, status: 'failed' | 'pending', delayMs: number],
): Promise<void> {
  await db.query(
    `UPDATE notification.mails SET attempts = $2, last_error = $3, status = $4,
                  next_attempt_at = now() + make_interval(secs => $5::double precision / 1000) WHERE id = $1`,
    values,
  );
}

/** Sent and failed mails older than `days`. */
export async function deleteOldMails(db: Db, days: number): Promise<void> {
  await db.query(
    `DELETE FROM notification.mails WHERE status IN ('sent', 'failed')
          AND created_at < now() - make_interval(days => $1)`,
    [days],
  );
}

export async function pendingCount(db: Db): Promise<number> {
  const { rows } = await db.query<{ n: string }>(
    `SELECT count(*)::text AS n FROM notification.mails WHERE status = 'pending'`,
  );
  return Number(rows[0]?.n ?? 0);
}

/** Age (s) of the oldest pending mail, 0 when there is none. */
export async function oldestPendingSeconds(db: Db): Promise<number> {
  const { rows } = await db.query<{ s: string | null }>(
    `SELECT extract(epoch FROM now() - min(created_at))::text AS s FROM notification.mails WHERE status = 'pending'`,
  );
  return Number(rows[0]?.s ?? 0);
}
