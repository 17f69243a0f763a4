// docker-compose.yml and .env: validated against the Compose Specification JSON schema and checked for what
// the runbook promises (ports, healthchecks, dependency order, environment of every service). No Docker engine
// runs here, so `docker compose up` itself is not exercised; the healthcheck commands are run for real.
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { parse } from 'yaml';
import { readText, readYaml, exists, SERVICES, dotenv, interpolate } from '../src/helpers.ts';
import { composeValidator } from '../src/schemas.ts';
import { loadConfig } from '@exchange/config';

const raw = readText('docker-compose.yml');
const compose = parse(raw, { merge: true }) as any;
const env = dotenv();

function ports(svc: string): string[] {
  return (compose.services[svc].ports ?? []).map(String);
}

describe('docker-compose.yml', () => {
  test('is valid against the Compose Specification schema', () => {
    const validate = composeValidator();
    const ok = validate(compose);
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  test('runs the whole stack', () => {
    for (const s of [
      'postgres',
      'rabbitmq',
      'redis',
      'kong',
      'jaeger',
      'prometheus',
      'alertmanager',
      'goalert',
      'goalert-db',
      'ntfy',
      'blackbox-exporter',
      'postgres-exporter',
      ...SERVICES.map((s) => s.name),
    ]) {
      expect({ service: s, present: Boolean(compose.services[s]) }).toEqual({ service: s, present: true });
    }
  });

  test('every ${VAR} without a default is defined in .env, and every required one (:?) is non-empty there', () => {
    const refs = [...raw.matchAll(/\$\{([A-Z_][A-Z0-9_]*)(:?[-?][^}]*)?\}/g)];
    expect(refs.length).toBeGreaterThan(5);
    for (const [, name, mod] of refs) {
      if (mod?.startsWith(':-')) continue;
      expect({ name, inEnv: name! in env }).toEqual({ name, inEnv: true });
      if (mod?.startsWith(':?')) expect({ name, value: env[name!] !== '' }).toEqual({ name, value: true });
    }
  });

  test('bind-mounted files exist in the repository', () => {
    for (const [name, svc] of Object.entries<any>(compose.services)) {
      for (const v of svc.volumes ?? []) {
        const src = String(v).split(':')[0]!;
        if (!src.startsWith('./')) continue;
        expect({ service: name, src, exists: exists(src) }).toEqual({ service: name, src, exists: true });
      }
    }
  });

  test.each(SERVICES.map((s) => [s.name, s]))(
    '%s: image, SERVICE, PORT, environment, healthcheck, dependency order',
    (name, s) => {
      const svc = compose.services[name];
      expect(svc.image).toBe('${EXCHANGE_IMAGE:-exchange:local}');
      expect(svc.build).toEqual({ context: '.', dockerfile: 'Dockerfile' });
      const e = svc.environment;
      expect(e.SERVICE).toBe(name);
      expect(e.PORT).toBe(String(s.port));
      expect(e.OTEL_SERVICE_NAME).toBe(name);
      expect(e.NODE_ENV).toBe('production');
      expect(e.LOG_LEVEL).toBeDefined();
      expect(e.DATABASE_URL).toMatch(/^postgres:\/\/.+@postgres:5432\/exchange$/);
      if (name !== 'auth') expect(e.AMQP_URL).toMatch(/^amqp:\/\/.+@rabbitmq:5672\/exchange$/);
      expect(e.REDIS_URL).toBeUndefined(); // no service reads Redis; Kong's rate limiting does
      expect(e.OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://jaeger:4318');
      // each service its own internal credential (no shared token)
      const own = `${name.toUpperCase().replace('-', '_')}_INTERNAL_TOKEN`;
      expect(e.INTERNAL_API_TOKEN).toBe(`\${${own}:?set ${own} (pnpm env:init)}`);
      if (name !== 'auth') expect(e.AUTH_JWKS_URL).toBe('http://auth:3001/.well-known/jwks.json');
      expect(e.JWT_ISSUER).toBeDefined();
      expect(e.JWT_AUDIENCE).toBeDefined();
      for (const dep of name === 'auth' ? ['postgres'] : ['postgres', 'rabbitmq'])
        expect(svc.depends_on[dep]).toEqual({ condition: 'service_healthy' });
      expect(svc.healthcheck.test.join(' ')).toContain("/ready'");
      expect(svc.read_only).toBe(true);
      expect(svc.cap_drop).toEqual(['ALL']);
      expect(ports(name).every((p) => p.startsWith('127.0.0.1:'))).toBe(true);
    },
  );

  test('auth: at-rest encryption keys, admin seed, backups on a volume, behind a trusted proxy', () => {
    const e = compose.services.auth.environment;
    expect(e.SIGNING_KEY_ENCRYPTION_KEY).toBe('${SIGNING_KEY_ENCRYPTION_KEY:?set SIGNING_KEY_ENCRYPTION_KEY}');
    expect(e.API_KEY_ENCRYPTION_KEY).toBe('${API_KEY_ENCRYPTION_KEY:?set API_KEY_ENCRYPTION_KEY}');
    // the auth service's format: 32 bytes, base64
    for (const k of ['SIGNING_KEY_ENCRYPTION_KEY', 'API_KEY_ENCRYPTION_KEY'])
      expect(env[k]).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(e.ADMIN_EMAIL).toBeDefined();
    expect(e.ADMIN_PASSWORD).toBeDefined();
    expect(e.BACKUP_DIR).toBe('/var/lib/exchange/backups');
    expect(e.TRUST_PROXY).toBe('10.0.0.0/8,172.16.0.0/12,192.168.0.0/16'); // only Kong-side peers
    expect(compose.services.auth.volumes).toContain('backups:/var/lib/exchange/backups');
    expect(readText('Dockerfile')).toMatch(/mkdir -p \/var\/lib\/exchange\/backups && chown -R node:node/);
  });

  test('each service connects as its own database role, created by the db-roles one-shot first', () => {
    const roleOf = (url: string) => new URL(interpolate(url, env)).username;
    const roles = SERVICES.map((s) => roleOf(compose.services[s.name].environment.DATABASE_URL));
    expect(roles).toEqual(SERVICES.map((s) => `exchange_${s.name.replace('-', '_')}`));
    // none of them is the superuser (POSTGRES_USER), whose password only db-roles, postgres and its exporter hold
    const holders = Object.entries<any>(compose.services)
      .filter(([, svc]) => JSON.stringify(svc.environment ?? {}).includes('${POSTGRES_PASSWORD'))
      .map(([name]) => name)
      .sort();
    expect(holders).toEqual(['db-roles', 'postgres', 'postgres-exporter']);
    // db-roles gets exactly the URLs the services use, and every service waits for it
    const dbRoles = compose.services['db-roles'];
    expect(dbRoles.command).toEqual(['db-roles']);
    for (const s of SERVICES) {
      const variable = `${s.name.replace('-', '_').toUpperCase()}_DATABASE_URL`;
      expect(dbRoles.environment[variable]).toBe(compose.services[s.name].environment.DATABASE_URL);
      expect(compose.services[s.name].depends_on['db-roles']).toEqual({ condition: 'service_completed_successfully' });
    }
    expect(dbRoles.environment.BACKUP_DATABASE_URL).toBe(compose.services.auth.environment.BACKUP_DATABASE_URL);
  });

  test('order and payment-processor reach the RabbitMQ management API', () => {
    for (const s of ['order', 'payment-processor']) {
      expect(compose.services[s].environment.RABBITMQ_MANAGEMENT_URL).toMatch(/^http:\/\/.+@rabbitmq:15672$/);
    }
  });

  test('order reaches the wallet and starts after it is ready', () => {
    expect(compose.services.order.environment.WALLET_URL).toBe('http://wallet:3002');
    expect(compose.services.order.depends_on.wallet).toEqual({ condition: 'service_healthy' });
  });

  test('ports are the runbook ones; Kong admin and every tool bound to the host loopback', () => {
    expect(ports('kong')).toEqual(['8000:8000']); // the Admin API is on the container's loopback only
    expect(ports('jaeger')).toContain('127.0.0.1:16686:16686');
    expect(ports('prometheus')).toContain('127.0.0.1:9090:9090');
    expect(ports('rabbitmq')).toContain('127.0.0.1:15672:15672');
    expect(ports('goalert')).toContain('127.0.0.1:8081:8081');
    for (const [name] of Object.entries<any>(compose.services)) {
      for (const p of ports(name))
        if (p !== '8000:8000')
          expect({ name, p, loopback: p.startsWith('127.0.0.1:') }).toEqual({ name, p, loopback: true });
    }
  });

  test('every upstream and plugin host in kong/kong.yml is a compose service', () => {
    const kong = readYaml('kong', 'kong.yml');
    for (const s of kong.services ?? []) {
      const u = new URL(s.url);
      expect({ upstream: u.host, inCompose: Boolean(compose.services[u.hostname]) }).toEqual({
        upstream: u.host,
        inCompose: true,
      });
    }
    for (const host of [...readText('kong', 'kong.yml').matchAll(/^\s+host: ([a-z-]+)$/gm)].map((m) => m[1]!)) {
      expect({ host, inCompose: Boolean(compose.services[host]) }).toEqual({ host, inCompose: true });
    }
    expect(compose.services['api-docs'].command).toEqual(['docs']);
    expect(compose.services.web.command).toEqual(['web']);
  });

  test('Kong runs DB-less with kong/kong.yml mounted', () => {
    const k = compose.services.kong;
    expect(k.environment.KONG_DATABASE).toBe('off');
    expect(k.environment.KONG_DECLARATIVE_CONFIG).toBe('/kong/kong.yml');
    expect(k.volumes).toContain('./kong/kong.yml:/kong/kong.yml:ro');
    expect(k.environment.KONG_STATUS_LISTEN).toBe('0.0.0.0:8100');
  });

  test('RabbitMQ: management image, exchange vhost, quorum queues by default', () => {
    const r = compose.services.rabbitmq;
    expect(r.image).toMatch(/^rabbitmq:4\.\d+-management$/);
    expect(r.environment.RABBITMQ_DEFAULT_VHOST).toBe('exchange');
    expect(readText('config', 'rabbitmq', '10-exchange.conf')).toMatch(/^default_queue_type = quorum$/m);
  });

  test('Postgres init creates the exchange database and the four service schemas', () => {
    const sql = readText('config', 'postgres', 'initdb', '10-exchange.sql');
    expect(sql).toMatch(/CREATE DATABASE exchange/);
    for (const s of SERVICES) expect(sql).toMatch(new RegExp(`CREATE SCHEMA IF NOT EXISTS ${s.schema};`));
    expect(compose.services.postgres.volumes).toContain('./config/postgres/initdb:/docker-entrypoint-initdb.d:ro');
  });

  test("GoAlert has its own Postgres; Alertmanager gets GoAlert's key, the heartbeat URL and ntfy's token as secret files", () => {
    expect(compose.services.goalert.image).toMatch(/^goalert\/goalert:/);
    expect(compose.services.goalert.environment.GOALERT_DB_URL).toContain('@goalert-db:5432/goalert');
    expect(compose.services.goalert.environment.GOALERT_LISTEN).toBe(':8081');
    expect(compose.services.alertmanager.secrets).toEqual([
      'goalert_alertmanager_token',
      'goalert_heartbeat_url',
      'ntfy_token',
    ]);
    expect(compose.secrets).toEqual({
      goalert_alertmanager_token: { environment: 'GOALERT_ALERTMANAGER_TOKEN' },
      goalert_heartbeat_url: { environment: 'GOALERT_HEARTBEAT_URL' },
      ntfy_token: { environment: 'NTFY_TOKEN' },
    });
    // the files config/alertmanager.yml reads are exactly those compose mounts
    const files = [...readText('config/alertmanager.yml').matchAll(/\/run\/secrets\/(\w+)/g)].map((m) => m[1]);
    expect([...new Set(files)].sort()).toEqual(Object.keys(compose.secrets).sort());
    expect(compose.services.ntfy.environment.NTFY_AUTH_DEFAULT_ACCESS).toBe('deny-all');
  });

  test('Prometheus scrapes every service where compose runs it, and alerts go to the compose Alertmanager', () => {
    const prom = readYaml('config', 'prometheus.yml');
    const job = prom.scrape_configs.find((j: any) => j.job_name === 'exchange');
    const targets = job.static_configs.map((c: any) => c.targets[0]);
    // the four services and the notification service (account mails)
    expect(targets).toEqual([...SERVICES.map((s) => `${s.name}:${s.port}`), 'notification:3005']);
    const ready = prom.scrape_configs.find((j: any) => j.job_name === 'readiness');
    expect(ready.static_configs[0].targets).toEqual([
      ...SERVICES.map((s) => `http://${s.name}:${s.port}/ready`),
      'http://notification:3005/ready',
      'http://kong:8100/status/ready',
    ]);
    for (const [host] of [
      ...targets,
      'alertmanager:9093',
      'blackbox-exporter:9115',
      'postgres-exporter:9187',
      'rabbitmq:15692',
      'kong:8100',
    ].map((t) => t.split(':'))) {
      expect({ host, inCompose: Boolean(compose.services[host!]) }).toEqual({ host, inCompose: true });
    }
    expect(prom.alerting.alertmanagers[0].static_configs[0].targets).toEqual(['alertmanager:9093']);
  });
});

const interpolateEnv = (v: string) => interpolate(v, env);

describe("compose environment passes each service's own configuration schema", () => {
  test.each(SERVICES.map((s) => s.name))('%s', async (name) => {
    const mod = await import(`../../../services/${name}/src/config.ts`);
    const schema = Object.values(mod).find(
      (v: any) => v && typeof v === 'object' && v.type === 'object' && v.properties,
    ) as any;
    expect(schema).toBeDefined();
    const containerEnv = Object.fromEntries(
      Object.entries<string>(compose.services[name].environment).map(([k, v]) => [k, interpolateEnv(String(v))]),
    );
    // loadConfig reports every offending variable at once; it throws on a missing required one or a bad value.
    const config = loadConfig(name, schema, containerEnv) as Record<string, unknown>;
    expect(config.PORT).toBe(SERVICES.find((s) => s.name === name)!.port);
    expect(config.NODE_ENV).toBe('production');
    // every variable compose sets is one the service reads (no dead configuration), except the image's own
    const unread = Object.keys(containerEnv).filter(
      (k) => !(k in schema.properties) && !['SERVICE', 'OTEL_SERVICE_NAME'].includes(k),
    );
    expect(unread).toEqual([]);
  });
});

describe('compose healthcheck commands (run for real with node)', () => {
  async function runCheck(test: string[], status: number | null, extraEnv: Record<string, string> = {}) {
    let port = 1;
    let server: ReturnType<typeof createServer> | undefined;
    if (status !== null) {
      server = createServer((req, res) =>
        res.writeHead(req.url === '/ready' || req.url === '/health' ? status : 404).end(),
      );
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      port = (server.address() as AddressInfo).port;
    }
    expect(test[0]).toBe('CMD');
    const [cmd, ...args] = test.slice(1);
    // Asynchronous spawn: the stand-in server lives in this process and must keep answering.
    const child = spawn(cmd === 'node' ? process.execPath : cmd!, args, {
      env: { PORT: String(port), ...extraEnv },
      stdio: 'ignore',
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const [code] = (await once(child, 'exit')) as [number | null];
    clearTimeout(timer);
    server?.close();
    return code;
  }

  const serviceCheck = compose.services.order.healthcheck.test as string[];

  test('healthy when /ready answers 200', async () => {
    expect(await runCheck(serviceCheck, 200)).toBe(0);
  });
  test('unhealthy when /ready answers 503', async () => {
    expect(await runCheck(serviceCheck, 503)).toBe(1);
  });
  test('unhealthy when nothing listens', async () => {
    expect(await runCheck(serviceCheck, null)).toBe(1);
  });
});
