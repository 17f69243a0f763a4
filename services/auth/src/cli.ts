// One-off operator commands:
//   node services/auth/src/cli.ts create-admin --email ops@example.com --password-stdin   (password read from stdin)
//   node services/auth/src/cli.ts rotate-keys [--now]   (--now: activate at once, for a compromised key)
//   node services/auth/src/cli.ts revoke-key --kid <kid>   (a compromised key: out of the JWKS, its tokens refused
//                                                          within 5 s; replaced at once when it was signing)
// They read the same environment as the service (DATABASE_URL, SIGNING_KEY_ENCRYPTION_KEY, ARGON2_*, …).
import { parseArgs } from 'node:util';
import { createPool } from '@exchange/db';
import { baseEnv, databaseEnv, loadConfigOrExit, Type } from '@exchange/config';
import { audit } from './audit/repository.ts';
import { ConfigSchema } from './config.ts';
import { keyStoreFor } from './app.ts';
import { runMigrations } from './migrate.ts';
import { Passwords } from './users/passwords.ts';
import { ensureAdmin } from './seed.ts';

const CliEnv = Type.Object({
  ...baseEnv(3001),
  ...databaseEnv,
  SIGNING_KEY_ENCRYPTION_KEY: ConfigSchema.properties.SIGNING_KEY_ENCRYPTION_KEY,
  JWT_ISSUER: ConfigSchema.properties.JWT_ISSUER,
  JWT_AUDIENCE: ConfigSchema.properties.JWT_AUDIENCE,
  ACCESS_TOKEN_TTL_SECONDS: ConfigSchema.properties.ACCESS_TOKEN_TTL_SECONDS,
  SIGNING_KEY_ACTIVATION_DELAY_SECONDS: ConfigSchema.properties.SIGNING_KEY_ACTIVATION_DELAY_SECONDS,
  ARGON2_MEMORY_KIB: ConfigSchema.properties.ARGON2_MEMORY_KIB,
  ARGON2_TIME_COST: ConfigSchema.properties.ARGON2_TIME_COST,
  ARGON2_PARALLELISM: ConfigSchema.properties.ARGON2_PARALLELISM,
});

const USAGE = `usage:
  cli.ts create-admin --email <email> --password-stdin
  cli.ts rotate-keys [--now]
  cli.ts revoke-key --kid <kid>`;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      email: { type: 'string' },
      'password-stdin': { type: 'boolean' },
      now: { type: 'boolean' },
      kid: { type: 'string' },
    },
  });
  const command = positionals[0];
  if (command !== 'create-admin' && command !== 'rotate-keys' && command !== 'revoke-key') {
    process.stderr.write(`${USAGE}\n`);
    return 64;
  }
  if (command === 'create-admin' && (!values.email || !values['password-stdin'])) {
    process.stderr.write(`${USAGE}\n(the password is only accepted on stdin, never as an argument)\n`);
    return 64;
  }
  if (command === 'revoke-key' && !values.kid) {
    process.stderr.write(`${USAGE}\n(GET /api/v1/admin/signing-keys lists the kids; a token's kid is in its header)\n`);
    return 64;
  }
  const config = loadConfigOrExit('auth-cli', CliEnv);
  const pool = createPool({ connectionString: config.DATABASE_URL, max: 2, applicationName: 'auth-cli' });
  try {
    await runMigrations(pool);
    if (command === 'create-admin') {
      const password = await readStdin();
      const passwords = new Passwords({
        memoryCost: config.ARGON2_MEMORY_KIB,
        timeCost: config.ARGON2_TIME_COST,
        parallelism: config.ARGON2_PARALLELISM,
      });
      const r = await ensureAdmin(pool, passwords, values.email!, password, 'cli');
      process.stdout.write(`${JSON.stringify({ userId: r.id, created: r.created })}\n`);
    } else if (command === 'revoke-key') {
      const r = await keyStoreFor(pool, config as never).revoke(values.kid!);
      await audit(pool, undefined, { action: 'admin.signing_key_revoked', details: { ...r, via: 'cli' } });
      process.stdout.write(`${JSON.stringify(r)}\n`);
    } else {
      const keys = keyStoreFor(pool, config as never);
      const r = await keys.rotate({ immediately: values.now === true });
      process.stdout.write(`${JSON.stringify({ kid: r.kid, activatesAt: r.activatesAt.toISOString() })}\n`);
    }
    return 0;
  } catch (e) {
    process.stderr.write(`auth-cli: ${(e as Error).message}\n`);
    return 1;
  } finally {
    await pool.end();
  }
}

process.exitCode = await main(process.argv.slice(2));
