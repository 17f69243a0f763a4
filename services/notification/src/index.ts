export { buildApp } from './app.ts';
export { ConfigSchema, loadConfig, type Config } from './config.ts';
export { authContacts, type Contacts } from './contacts.ts';
export { intentFor } from './messaging/events.ts';
export { MAIL_QUEUE } from './messaging/queues.ts';
export { runMigrations } from './migrate.ts';
export { createRuntime, type Runtime, type RuntimeOptions } from './runtime.ts';
export { MailSender, smtpTransport, type Transport } from './sender.ts';
export { render, TEMPLATES, type TemplateName } from './templates/index.ts';
