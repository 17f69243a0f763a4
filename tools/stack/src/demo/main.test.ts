import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../stack.ts';

test('the demo market maker refuses to run with NODE_ENV=production', () => {
  const r = spawnSync(process.execPath, [join(ROOT, 'tools/stack/src/demo/main.ts')], {
    env: { ...process.env, NODE_ENV: 'production', DEMO_PASSWORD: 'x', EXCHANGE_URL: 'http://127.0.0.1:1' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  expect(r.status).toBe(1);
  expect(JSON.parse(r.stdout.trim())).toEqual(
    expect.objectContaining({
      level: 50,
      msg: 'the demo market maker does not run in production (NODE_ENV=production)',
    }),
  );
});
