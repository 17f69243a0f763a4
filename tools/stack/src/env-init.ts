/**
 * `pnpm env:init`: writes `.env` for docker compose from `.env.example`, generating every secret marked
 * `# @generate <kind>`. Never overwrites an existing `.env` (its secrets encrypt data already stored).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderEnvFile } from '@exchange/config';
import { ROOT } from './stack.ts';

const target = join(ROOT, '.env');
if (existsSync(target)) {
  process.stderr.write('.env exists already; not touching it (delete it first to generate new secrets)\n');
  process.exit(1);
}
writeFileSync(target, renderEnvFile(readFileSync(join(ROOT, '.env.example'), 'utf8')), { mode: 0o600 });
process.stdout.write('.env written with freshly generated secrets (keep it out of git; back it up with the data)\n');
