# syntax=docker/dockerfile:1.7
# One image for every service. Choose the service at run time with SERVICE (compose and the Helm chart set it)
# or bake a default in with --build-arg SERVICE=order. Node 24 runs the TypeScript sources directly, so the image
# holds the same files the tests run; only the web app (apps/web) has a build step, in its own stage.
#
#   docker build -t exchange:local .
#   docker run --rm -e SERVICE=order ... exchange:local                 # serve (default)
#   docker run --rm -e SERVICE=order ... exchange:local migrate         # run the service's migrations and exit
#
ARG NODE_IMAGE=node:24-slim

# ---------------------------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
ENV PNPM_HOME=/pnpm COREPACK_HOME=/corepack CI=true
ENV PATH=$PNPM_HOME:$PATH
# pnpm at the exact version pinned by package.json "packageManager", through corepack.
RUN corepack enable
WORKDIR /app
# Lockfile first: the dependency download layer is reused until pnpm-lock.yaml changes.
COPY pnpm-lock.yaml pnpm-workspace.yaml package.json .npmrc ./
RUN corepack install && pnpm fetch --prod
COPY . .
# Production dependencies only (no jest/swc/typescript), exactly as locked, from the fetched store.
RUN pnpm install --frozen-lockfile --prod --offline

# ---------------------------------------------------------------------------------------------------------------
# The web app's static build (apps/web → apps/web/dist). Vite is a dev dependency, so it builds here and only the
# built files go into the runtime image.
FROM ${NODE_IMAGE} AS web
ENV PNPM_HOME=/pnpm COREPACK_HOME=/corepack CI=true
ENV PATH=$PNPM_HOME:$PATH
RUN corepack enable
WORKDIR /app
COPY pnpm-lock.yaml pnpm-workspace.yaml package.json .npmrc ./
RUN corepack install && pnpm fetch
COPY . .
RUN pnpm install --frozen-lockfile --offline --filter '@exchange/web...' && pnpm --filter @exchange/web build

# ---------------------------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
# pg_dump/pg_restore for the auth service's backup endpoint, from the PostgreSQL project's apt repository so the
# client major version matches the server (a pg_dump older than the server refuses to dump).
ARG PG_MAJOR=17
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates curl gnupg; \
    install -d /usr/share/postgresql-common/pgdg; \
    curl -fsSL -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc https://www.postgresql.org/media/keys/ACCC4CF8.asc; \
    . /etc/os-release; \
    echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt ${VERSION_CODENAME}-pgdg main" > /etc/apt/sources.list.d/pgdg.list; \
    apt-get update; \
    # age and rclone: the backup/restore Jobs (k8s/charts/exchange/files/{backup,restore}.sh) run this image
    apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}" age rclone; \
    apt-get purge -y --auto-remove curl gnupg; \
    rm -rf /var/lib/apt/lists/*; \
    pg_dump --version

# The one writable place besides /tmp (everything else can be read-only): the auth service's backup directory, a
# volume in compose and Kubernetes; created here owned by the runtime user so a fresh named volume inherits that.
RUN mkdir -p /var/lib/exchange/backups && chown -R node:node /var/lib/exchange

COPY <<'EOF' /usr/local/bin/exchange-service
#!/bin/sh
# exchange-service [serve|migrate|docs|web] [service]   (service defaults to $SERVICE)
#   serve    start the service (OpenTelemetry loaded first with --import, so pg/amqplib/http are instrumented)
#   migrate  apply the service's migrations and exit (the services also migrate at start)
#   docs     the API reference server behind Kong's /docs route (tools/local-gateway docs-only mode, PORT 8080)
#   web      the web app's static files behind Kong's web routes (tools/local-gateway web-only mode, PORT 8080)
set -eu
cmd="${1:-serve}"
svc="${2:-${SERVICE:-}}"
cd "${APP_DIR:-/app}"
case "$cmd" in
  docs) exec node tools/local-gateway/src/docs-main.ts ;;
  web) exec node tools/local-gateway/src/web-main.ts ;;
  db-roles) exec node packages/db/src/provision-roles.ts ;;
esac
case "$svc" in
  auth|wallet|order|payment-processor|notification) ;;
  *) echo "exchange-service: SERVICE must be one of auth, wallet, order, payment-processor, notification (got '${svc}')" >&2; exit 64 ;;
esac
case "$cmd" in
  serve) exec node --import ./packages/platform/src/instrument.ts "services/${svc}/src/main.ts" ;;
  migrate) exec node "services/${svc}/src/migrate.ts" ;;
  *) echo "usage: exchange-service [serve|migrate|docs|web|db-roles] [auth|wallet|order|payment-processor|notification]" >&2; exit 64 ;;
esac
EOF
RUN chmod 0755 /usr/local/bin/exchange-service

WORKDIR /app
# Application files are owned by root and not writable by the runtime user.
COPY --from=deps /app /app
COPY --from=web /app/apps/web/dist /app/apps/web/dist

ARG SERVICE=""
ENV SERVICE=${SERVICE} \
    NODE_ENV=production \
    BACKUP_DIR=/var/lib/exchange/backups

# The `node` user of the base image (uid/gid 1000): never root at run time.
USER 1000:1000

# Liveness of the process; compose overrides it with /ready, Kubernetes uses its own probes.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

ENTRYPOINT ["/usr/local/bin/exchange-service"]
CMD ["serve"]
