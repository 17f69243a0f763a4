/**
 * Host-mode terminal output. The processes always log pino JSON (as in production); the runner turns each line into
 * a readable one prefixed with the process name in its own colour (pino-pretty), or with LOG_FORMAT=json passes the
 * JSON through untouched so it can be piped into jq or a collector. The runner's own messages (progress, summary)
 * follow the same format.
 */
import { createColors } from 'colorette';
import { prettyFactory } from 'pino-pretty';

export type LogFormat = 'pretty' | 'json';

export interface OutputOptions {
  format: LogFormat;
  color: boolean;
  write?: (text: string) => void;
}

const PREFIX_WIDTH = 18;

export class Output {
  private readonly format: LogFormat;
  private readonly write: (text: string) => void;
  private readonly colors: ReturnType<typeof createColors>;
  private readonly pretty: (obj: Record<string, unknown>) => string;
  private readonly palette: Array<(s: string) => string>;
  private readonly painters = new Map<string, (s: string) => string>();

  constructor(opts: OutputOptions) {
    this.format = opts.format;
    this.write = opts.write ?? ((text) => process.stdout.write(text));
    const c = (this.colors = createColors({ useColor: opts.color }));
    this.pretty = prettyFactory({
      colorize: opts.color,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname,service',
      singleLine: true,
    });
    this.palette = [c.cyan, c.yellow, c.green, c.magenta, c.blue, c.gray, c.red];
    // Fixed colours for the usual processes, so "auth" is always cyan; others take the next colour.
    for (const name of ['auth', 'wallet', 'payment-processor', 'order', 'gateway', 'demo']) this.painter(name);
  }

  private painter(name: string): (s: string) => string {
    let paint = this.painters.get(name);
    if (!paint) {
      paint = this.palette[this.painters.size % this.palette.length]!;
      this.painters.set(name, paint);
    }
    return paint;
  }

  /** One line a process printed. */
  processLine(label: string, line: string, stream: 'stdout' | 'stderr'): void {
    const parsed = parseJsonLine(line);
    if (this.format === 'json') {
      // Non-JSON output (a crash's stack trace, a runtime warning) becomes JSON too, so the stream stays parseable.
      this.write(
        parsed
          ? `${line}\n`
          : `${JSON.stringify({ level: stream === 'stderr' ? 40 : 30, time: Date.now(), service: label, msg: line })}\n`,
      );
      return;
    }
    const text = parsed ? this.pretty(parsed).replace(/\n+$/, '') : line;
    const paint = this.painter(label.split('#')[0]!);
    const prefix = paint(label.padEnd(PREFIX_WIDTH));
    for (const l of text.split('\n')) this.write(`${prefix}${this.colors.gray('|')} ${l}\n`);
  }

  /** A message of the runner itself. */
  info(msg: string): void {
    if (this.format === 'json')
      this.write(`${JSON.stringify({ level: 30, time: Date.now(), service: 'stack', msg })}\n`);
    else this.write(`${msg}\n`);
  }

  /** Plain text the runner prints in both formats (the summary); in JSON one message per block. */
  block(lines: string[]): void {
    if (this.format === 'json') this.info(lines.join('\n'));
    else this.write(`${lines.join('\n')}\n`);
  }

  bold(s: string): string {
    return this.colors.bold(s);
  }
  green(s: string): string {
    return this.colors.green(s);
  }
  red(s: string): string {
    return this.colors.red(s);
  }
  dim(s: string): string {
    return this.colors.gray(s);
  }
}

function parseJsonLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const v = JSON.parse(line) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export function outputFromEnv(env: NodeJS.ProcessEnv = process.env, tty = Boolean(process.stdout.isTTY)): Output {
  const format: LogFormat = env.LOG_FORMAT === 'json' ? 'json' : 'pretty';
  // NO_COLOR (https://no-color.org) and FORCE_COLOR are honoured as colour tools do.
  const color = env.NO_COLOR ? false : env.FORCE_COLOR ? env.FORCE_COLOR !== '0' : tty;
  return new Output({ format, color });
}
