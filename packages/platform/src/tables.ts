import { boolean, integer, primaryKey, text, timestamp, type PgSchema } from 'drizzle-orm/pg-core';

/**
 * Tables the platform's plugins need, created in the owning service's schema. A service includes them in its drizzle
 * schema file (`export const idempotencyKeys = idempotencyKeysTable(schema)`) so drizzle-kit generates their migration.
 */
export function idempotencyKeysTable(schema: PgSchema) {
  return schema.table(
    'idempotency_keys',
    {
      principal: text('principal').notNull(),
      key: text('key').notNull(),
      method: text('method').notNull(),
      path: text('path').notNull(),
      requestHash: text('request_hash').notNull(),
      statusCode: integer('status_code'),
      responseBody: text('response_body'),
      createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    },
    (t) => [primaryKey({ columns: [t.principal, t.key] })],
  );
}

export function featureFlagsTable(schema: PgSchema) {
  return schema.table('feature_flags', {
    name: text('name').primaryKey(),
    enabled: boolean('enabled').notNull(),
    reason: text('reason'),
    updatedBy: text('updated_by'),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  });
}
