/**
 * `node packages/db/src/provision-roles.ts` (the image's `exchange-service db-roles`): create or update each service's
 * own database role and hand it its schema (@exchange/db provisionServiceRoles). Idempotent: compose runs it before
 * the services on every `up`, the chart's migration hook before the migrations; run it again after a restore (the
 * restored objects belong to whoever restored them).
 *
 *   DATABASE_ADMIN_URL              the database, as a role that may create roles (superuser or CREATEROLE)
 *   AUTH_DATABASE_URL, WALLET_DATABASE_URL, ORDER_DATABASE_URL, PAYMENT_PROCESSOR_DATABASE_URL
 *                                   each service's own URL: its user and password become that role's
 *   NOTIFICATION_DATABASE_URL       optional: the notification service's
 *   BACKUP_DATABASE_URL             optional: the read-only role backups dump as (pg_read_all_data)
 */
import { DB_SERVICES, provisionServiceRoles, type DbService, type RoleCredential } from './roles.ts';

const ENV: Record<DbService, string> = {
  auth: 'AUTH_DATABASE_URL',
  wallet: 'WALLET_DATABASE_URL',
  order: 'ORDER_DATABASE_URL',
  'payment-processor': 'PAYMENT_PROCESSOR_DATABASE_URL',
  notification: 'NOTIFICATION_DATABASE_URL',
};
/** Optional: a deployment without account mails has no notification service. */
const OPTIONAL = new Set<DbService>(['notification']);

function credential(variable: string, url: string, database: string): RoleCredential {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`${variable} is not a URL`);
  }
  const role = decodeURIComponent(u.username);
  const password = decodeURIComponent(u.password);
  if (!role || !password) throw new Error(`${variable} must name a user and a password`);
  if (decodeURIComponent(u.pathname.slice(1)) !== database)
    throw new Error(`${variable} names database "${u.pathname.slice(1)}", DATABASE_ADMIN_URL "${database}"`);
  return { role, password };
}

export async function provisionFromEnv(env: NodeJS.ProcessEnv): Promise<string[]> {
  const admin = env.DATABASE_ADMIN_URL;
  if (!admin) throw new Error('DATABASE_ADMIN_URL is required');
  const database = decodeURIComponent(new URL(admin).pathname.slice(1));
  const services: Partial<Record<DbService, RoleCredential>> = {};
  for (const s of DB_SERVICES) {
    const url = env[ENV[s]];
    if (!url && OPTIONAL.has(s)) continue;
    if (!url) throw new Error(`${ENV[s]} is required`);
    services[s] = credential(ENV[s], url, database);
  }
  const roles = Object.values(services).map((c) => c.role);
  if (new Set(roles).size !== roles.length) throw new Error('each service needs a role of its own');
  const backup = env.BACKUP_DATABASE_URL
    ? credential('BACKUP_DATABASE_URL', env.BACKUP_DATABASE_URL, database)
    : undefined;
  await provisionServiceRoles({ adminUrl: admin, services, ...(backup ? { backup } : {}) });
  return [...roles, ...(backup ? [backup.role] : [])];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    const roles = await provisionFromEnv(process.env);
    process.stdout.write(`db-roles: ${roles.join(', ')} provisioned\n`);
  } catch (e) {
    process.stderr.write(`db-roles: ${(e as Error).message}\n`);
    process.exitCode = 1;
  }
}
