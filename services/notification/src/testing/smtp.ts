/**
 * A real SMTP server for tests (`smtp-server`), parsing every accepted mail with `mailparser`. It can be stopped and
 * started again on the same port, to test that mails survive an SMTP outage.
 */
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import type { AddressInfo } from 'node:net';

export interface CaughtMail {
  to: string;
  subject: string;
  text: string;
  html: string;
  messageId: string;
  template: string;
  eventId: string;
  parsed: ParsedMail;
}

export interface TestSmtp {
  port: number;
  mails: CaughtMail[];
  /** Resolves with the first mail (already caught or arriving) matching `pred`; rejects after `timeoutMs`. */
  waitFor(pred: (m: CaughtMail) => boolean, timeoutMs?: number): Promise<CaughtMail>;
  /** Stop accepting connections (the port is then refused) / start again on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startTestSmtp(): Promise<TestSmtp> {
  const mails: CaughtMail[] = [];
  const waiters = new Set<() => void>();
  const make = () =>
    new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData(stream, _session, callback) {
        simpleParser(stream)
          .then((parsed) => {
            const header = (name: string) => {
              const v = parsed.headers.get(name);
              return typeof v === 'string' ? v : '';
            };
            const to = Array.isArray(parsed.to) ? parsed.to[0] : parsed.to;
            mails.push({
              to: to?.value[0]?.address ?? '',
              subject: parsed.subject ?? '',
              text: parsed.text ?? '',
              html: typeof parsed.html === 'string' ? parsed.html : '',
              messageId: parsed.messageId ?? '',
              template: header('x-exchange-template'),
              eventId: header('x-exchange-event-id'),
              parsed,
            });
            for (const w of [...waiters]) w();
            callback();
          })
          .catch((err: Error) => callback(err));
      },
    });
  let server = make();
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve((server.server.address() as AddressInfo).port));
    });
  const port = await listen(0);
  let running = true;
  const stop = async () => {
    if (!running) return;
    running = false;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    port,
    mails,
    waitFor(pred, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = mails.find(pred);
          if (!m) return false;
          clearTimeout(t);
          waiters.delete(check);
          resolve(m);
          return true;
        };
        const t = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(`no matching mail within ${timeoutMs} ms (caught: ${mails.map((m) => m.subject).join(' | ')})`),
          );
        }, timeoutMs);
        if (!check()) waiters.add(check);
      });
    },
    stop,
    async start() {
      if (running) return;
      server = make();
      await listen(port);
      running = true;
    },
    close: stop,
  };
}
