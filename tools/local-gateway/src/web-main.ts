/** Web-app-only server for compose/Kubernetes (Kong routes the app's paths here). PORT (8080), WEB_ROOT, JAEGER_UI_URL. */
import { createWebServer, DEFAULT_WEB_ROOT, webConfigFromEnv } from './web.ts';

const config = webConfigFromEnv();
const app = await createWebServer({ root: process.env.WEB_ROOT ?? DEFAULT_WEB_ROOT, ...(config ? { config } : {}) });
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
await app.listen({ port: Number(process.env.PORT ?? 8080), host: process.env.HOST ?? '0.0.0.0' });
