import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { render } from './config-doc.ts';
import { ROOT } from './stack.ts';

it('docs/configuration.md matches the services env schemas (run node tools/stack/src/config-doc.ts)', () => {
  expect(readFileSync(join(ROOT, 'docs/configuration.md'), 'utf8')).toBe(render());
});

it('documents every variable of every service', () => {
  const text = render();
  for (const v of [
    'DATABASE_URL',
    'AMQP_URL',
    'INTERNAL_API_TOKEN',
    'SIGNING_KEY_ENCRYPTION_KEY',
    'WALLET_URL',
    'SNAPSHOT_EVERY',
    'DEPOSIT_CONFIRMATION_MS',
  ]) {
    expect(text).toContain(`\`${v}\``);
  }
});
