/** Docs-only server for compose/Kubernetes (Kong routes /docs here). PORT (8080), OPENAPI_PATH. */
import { createDocsServer } from './docs.ts';
import { DEFAULT_OPENAPI_PATH } from './gateway.ts';

const app = await createDocsServer({ openapiPath: process.env.OPENAPI_PATH ?? DEFAULT_OPENAPI_PATH });
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
await app.listen({ port: Number(process.env.PORT ?? 8080), host: process.env.HOST ?? '0.0.0.0' });
