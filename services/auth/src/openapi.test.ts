import { openapiDocument } from './openapi.ts';

test('the OpenAPI document builds without a database and covers every route with response schemas', async () => {
  const doc = (await openapiDocument()) as {
    paths: Record<string, Record<string, { responses?: Record<string, unknown> }>>;
  };
  const paths = Object.keys(doc.paths);
  for (const p of [
    '/api/v1/auth/register',
    '/api/v1/auth/login',
    '/api/v1/auth/refresh',
    '/api/v1/auth/logout',
    '/api/v1/auth/me',
    '/api/v1/auth/password',
    '/api/v1/auth/sessions',
    '/api/v1/auth/sessions/{id}',
    '/api/v1/auth/2fa/setup',
    '/api/v1/auth/2fa/verify',
    '/api/v1/auth/2fa/challenge',
    '/api/v1/auth/api-keys',
    '/api/v1/auth/api-keys/{id}',
    '/api/v1/admin/users',
    '/api/v1/admin/users/{id}/lock',
    '/api/v1/admin/users/{id}/unlock',
    '/api/v1/admin/users/{id}/roles',
    '/api/v1/admin/audit',
    '/api/v1/admin/backups',
    '/.well-known/jwks.json',
    '/internal/api-keys/verify',
    '/internal/sessions/revoked',
  ]) {
    expect(paths).toContain(p);
  }
  for (const [path, ops] of Object.entries(doc.paths)) {
    if (path === '/metrics') continue;
    for (const [method, op] of Object.entries(ops)) {
      expect([path, method, Object.keys(op.responses ?? {}).length > 0]).toEqual([path, method, true]);
    }
  }
});
