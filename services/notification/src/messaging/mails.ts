import type { Envelope } from '@exchange/contracts';
import type { MessageHandler } from '@exchange/messaging';
import type pg from 'pg';
import type { Contacts } from '../contacts.ts';
import { insertMail, notifyMailSenders } from '../mails/repository.ts';
import { render } from '../templates/index.ts';
import { intentFor } from './events.ts';

export interface HandlerOptions {
  contacts: Contacts;
  product: string;
  webUrl: string;
  /** Domain of the Message-ID header (`<event id@domain>`). */
  messageIdDomain: string;
}

/**
 * Handler for queue `notification.mails`: event → one row of notification.mails, in the consumer's transaction (inbox row included), then NOTIFY wakes the
 * sender. The row is keyed by the event id (ON CONFLICT DO NOTHING), a second guard besides the inbox.
 */
export function mailsHandler(opts: HandlerOptions): MessageHandler {
  return async (event: Envelope, client: pg.PoolClient) => {
    const intent = intentFor(event);
    if (!intent) return;
    const to = intent.email ?? (await opts.contacts.emailOf(intent.userId));
    if (!to) return; // the account no longer exists
    const mail = render(
      intent.template,
      {
        product: opts.product,
        webUrl: opts.webUrl,
        at: new Date(event.occurredAt),
        ip: intent.ip,
        userAgent: intent.userAgent,
      },
      intent.data as never,
    );
    await insertMail(client, [
      event.id,
      event.type,
      intent.template,
      intent.userId,
      to,
      mail.subject,
      mail.text,
      mail.html,
      `<${event.id}@${opts.messageIdDomain}>`,
    ]);
    await notifyMailSenders(client);
  };
}
