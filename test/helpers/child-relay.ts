// Runs the relay in a child process (test/helpers/relay-child.ts) on a data dir the test owns, so a
// test can SIGKILL it mid-traffic and restart a relay on the same files.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ConfigOverrides } from '../../server/config.ts';
import type { CommitQueueStats } from '../../server/ws/commit-queue.ts';
import type { CheckpointStats } from '../../server/checkpointer.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ENTRY = './test/helpers/relay-child.ts';

export interface ChildStats {
  commits: CommitQueueStats;
  checkpoint: CheckpointStats;
  hub: { framesIn: number; envelopesStored: number; rejected: number; slowReadersDropped: number };
}

export interface ChildRelay {
  url: string;
  pid: number;
  /** What the child wrote on stderr (its logs), for failure messages. */
  stderr(): string;
  /** The relay's counters, read in the child. */
  stats(): Promise<ChildStats>;
  /** Closes the relay in the child; resolves with how long relay.close() took and when the process exited by itself. */
  close(): Promise<{ closeMs: number; exitCode: number | null }>;
  /** SIGKILL: no handler runs, no buffer is flushed; resolves once the process is gone. */
  kill(): Promise<void>;
}

/** Starts a relay in a child process; `overrides` must be JSON (no clock, no streams). */
export async function startChildRelay(
  overrides: ConfigOverrides & { dataDir: string },
  o: { inputTypeModule?: boolean; readyMs?: number } = {},
): Promise<ChildRelay> {
  const load = `(await import('vite')).runnerImport(${JSON.stringify(ENTRY)}, { configFile: false })`;
  // By default the loader is CommonJS `-e` code; `inputTypeModule` starts it the way the test
  // vectors are generated (`--input-type=module`), a flag that worker threads inherit.
  const args = o.inputTypeModule ? ['--input-type=module', '-e', `await ${load}`] : ['-e', `(async () => { await ${load}; })().catch((err) => { console.error(err); process.exit(1); })`];
  const readyMs = o.readyMs ?? 20_000;
  const child: ChildProcess = spawn(
    process.execPath,
    args,
    { cwd: ROOT, env: { ...process.env, UMBRA_CHILD_RELAY: JSON.stringify(overrides) }, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const lines: Record<string, any>[] = [];
  const waiters: { match(l: Record<string, any>): boolean; resolve(l: Record<string, any>): void }[] = [];
  readline.createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: Record<string, any>;
    try {
      line = JSON.parse(text);
    } catch {
      return;
    }
    lines.push(line);
    for (const w of waiters.splice(0)) if (w.match(line)) w.resolve(line);
    else waiters.push(w);
  });
  const next = (t: string, ms: number) =>
    new Promise<Record<string, any>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child relay sent no '${t}' within ${ms} ms; stderr:\n${stderr.slice(-2000)}`)), ms);
      const done = (l: Record<string, any>) => {
        clearTimeout(timer);
        resolve(l);
      };
      void exited.then((code) => reject(new Error(`child relay exited (${code}) before '${t}'; stderr:\n${stderr.slice(-2000)}`)));
      waiters.push({ match: (l) => l.t === t, resolve: done });
    });
  const ready = await next('ready', readyMs).catch((err) => {
    child.kill('SIGKILL');
    throw err;
  });
  return {
    url: ready.url,
    pid: ready.pid,
    stderr: () => stderr,
    stats: async () => {
      const reply = next('stats', 5000);
      child.stdin!.write('stats\n');
      return (await reply) as unknown as ChildStats;
    },
    close: async () => {
      const reply = next('closed', 10_000);
      child.stdin!.write('close\n');
      const closed = await reply;
      const exitCode = await Promise.race([exited, new Promise<null>((_, reject) => setTimeout(() => reject(new Error('child relay did not exit after close')), 5000))]);
      return { closeMs: closed.ms, exitCode };
    },
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
