import { Output } from './logs.ts';

const line = JSON.stringify({
  level: 40,
  time: Date.UTC(2026, 0, 2, 3, 4, 5),
  pid: 1,
  hostname: 'h',
  service: 'wallet',
  msg: 'reconciliation mismatch',
  asset: 'BTC',
});

function capture(format: 'pretty' | 'json', color = false) {
  const written: string[] = [];
  const out = new Output({ format, color, write: (t) => written.push(t) });
  return { out, written };
}

test('pretty: one readable line, the process as prefix, level and message, no pid/hostname', () => {
  const { out, written } = capture('pretty');
  out.processLine('wallet', line, 'stdout');
  expect(written).toHaveLength(1);
  expect(written[0]).toMatch(
    /^wallet {12}\| \[\d\d:\d\d:\d\d\.\d{3}\] WARN: reconciliation mismatch \{"asset":"BTC"\}\n$/,
  );
  expect(written[0]).not.toContain('hostname');
});

test('pretty with colour: the prefix is coloured per process', () => {
  const { out, written } = capture('pretty', true);
  out.processLine('auth', line, 'stdout');
  out.processLine('wallet', line, 'stdout');
  expect(written[0]).toMatch(/^\x1b\[36mauth/); // cyan
  expect(written[1]).toMatch(/^\x1b\[33mwallet/); // yellow
});

test('pretty: text that is not JSON (a crash trace) is kept as it is', () => {
  const { out, written } = capture('pretty');
  out.processLine('order', 'TypeError: boom', 'stderr');
  expect(written).toEqual(['order             | TypeError: boom\n']);
});

test('LOG_FORMAT=json: the JSON lines unchanged, other text wrapped as JSON, runner messages as JSON', () => {
  const { out, written } = capture('json');
  out.processLine('wallet', line, 'stdout');
  out.processLine('order', 'TypeError: boom', 'stderr');
  out.info('Exchange is up');
  expect(written[0]).toBe(`${line}\n`);
  expect(JSON.parse(written[1]!)).toEqual(
    expect.objectContaining({ level: 40, service: 'order', msg: 'TypeError: boom' }),
  );
  expect(JSON.parse(written[2]!)).toEqual(
    expect.objectContaining({ level: 30, service: 'stack', msg: 'Exchange is up' }),
  );
});
