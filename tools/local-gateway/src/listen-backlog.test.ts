/**
 * The gateway process (main.ts, as the stack starts it) listens with Kong's accept backlog, not Node's 511: a burst of
 * new client connections waits in the kernel's queue instead of being reset. `ss` shows a listening socket's backlog
 * as its Send-Q; the kernel caps it at net.core.somaxconn.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

let child: ChildProcess | undefined;
afterAll(() => child?.kill('SIGKILL'));

it("listens with Kong's backlog of 16,384 (capped by somaxconn)", async () => {
  child = spawn(process.execPath, [fileURLToPath(new URL('./main.ts', import.meta.url))], {
    env: {
      ...process.env,
      PORT: '0',
      HOST: '127.0.0.1',
      AUTH_URL: 'http://127.0.0.1:1', // no auth service: the gateway still starts, warning about the JWKS
      REDIS_URL: '',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`gateway did not start: ${out}`)), 20_000);
    child!.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child!.on('exit', (code) => reject(new Error(`gateway exited with ${code}: ${out}`)));
  });
  const line = execFileSync('ss', ['-ltnH', `sport = :${port}`], { encoding: 'utf8' }).trim();
  const backlog = Number(line.split(/\s+/)[2]);
  const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
  expect(backlog).toBe(Math.min(16_384, somaxconn));
  expect(backlog).toBeGreaterThan(511);
});
