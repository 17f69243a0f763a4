/** Session persistence for the CLI: ~/.config/exchange/session.json (or $XDG_CONFIG_HOME), mode 0600. */
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Session } from './client.ts';

export interface StoredSession {
  baseUrl: string;
  session: Session;
}

export function defaultSessionPath(): string {
  const base = process.env.XDG_CONFIG_HOME ?? join(homedir(), '.config');
  return join(base, 'exchange', 'session.json');
}

export class FileSessionStore {
  readonly path: string;
  constructor(path: string = defaultSessionPath()) {
    this.path = path;
  }

  async load(): Promise<StoredSession | undefined> {
    try {
      return JSON.parse(await readFile(this.path, 'utf8')) as StoredSession;
    } catch {
      return undefined;
    }
  }

  async save(stored: StoredSession): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    await writeFile(this.path, `${JSON.stringify(stored, null, 2)}\n`, { mode: 0o600 });
    await chmod(this.path, 0o600); // an existing file keeps its old mode on write
  }

  async clear(): Promise<void> {
    await rm(this.path, { force: true });
  }
}
