export { createGateway, GatewayCore, DEFAULT_KONG_CONFIG_PATH, DEFAULT_OPENAPI_PATH } from './gateway.ts';
export type { GatewayOptions, Admission, Rejection, Inbound } from './gateway.ts';
export { KongRouter, loadKongConfig, parseKongConfig, serviceUrl } from './kong-config.ts';
export type { KongConfig, KongRoute, KongService, KongPlugin, KongConsumer, RouteMatch } from './kong-config.ts';
export { CredentialStore, verifyKongJwt } from './jwt.ts';
export { RateLimiter, PERIODS } from './rate-limit.ts';
export { createDocsServer, registerDocs } from './docs.ts';
export { createWebServer, registerWebFiles, sendWeb, DEFAULT_WEB_ROOT } from './web.ts';
