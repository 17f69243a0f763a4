import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// The app is served at `/` by the gateway (Kong in compose/Kubernetes, tools/local-gateway in host mode), on the
// same origin as the API, so no base URL or CORS setting is needed. `pnpm --filter @exchange/web dev` proxies the
// API to a running host-mode stack.
export default defineConfig({
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true, chunkSizeWarningLimit: 1024 },
  server: {
    proxy: {
      '/api': { target: process.env.GATEWAY_URL ?? 'http://localhost:8000', ws: true, changeOrigin: true },
    },
  },
});
