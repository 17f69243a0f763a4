// Runtime settings of the web app, replaced at deploy time (compose mounts its own, the Helm chart renders it from
// values.web.config) so one build serves every environment.
window.EXCHANGE_CONFIG = {
  // Base URL of the Jaeger UI; the operator console links each order to `${jaegerUrl}/search?tags=...`.
  jaegerUrl: 'http://localhost:16686',
};
