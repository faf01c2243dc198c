// WAL checkpoints off the delivery path. SQLite's automatic checkpoint runs inside whichever commit
// crosses the threshold, copying megabytes and syncing the database file while every sender waits;
// here a worker thread with its own connection copies WAL frames back continuously (PASSIVE, which
// never blocks writers), and the relay's connection has its automatic checkpoint turned off.
// The WAL stays bounded: if it still passes `maxWalBytes` (the thread fell behind or died), the
// relay checkpoints on its own connection and says so in the log (docs/PROTOCOL.md §Storage).
import { createRequire } from 'node:module';
import fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import type { Logger } from './log.ts';

export interface CheckpointOptions {
  /** How often the thread copies WAL frames back (ms). */
  intervalMs: number;
  /** The WAL size past which the relay checkpoints on its own connection. */
  maxWalBytes: number;
}

export interface CheckpointResult {
  busy: number;
  log: number;
  checkpointed: number;
}

export interface CheckpointStats {
  /** Passive checkpoints the thread ran. */
  passive: number;
  /** Checkpoints the relay had to run on its own connection because the WAL passed its bound. */
  forced: number;
  /** The largest WAL file seen by the bound check (bytes). */
  maxWalBytes: number;
  /** False once the thread has failed; the bound check then keeps the WAL in check alone. */
  threadAlive: boolean;
}

// The worker's code, evaluated as CommonJS so it runs the same from TypeScript sources (tests) and
// from the build. It only ever runs checkpoints; it never reads or writes a row.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 5000');
const checkpoint = (mode) => db.pragma('wal_checkpoint(' + mode + ')')[0];
// The WAL starts over from its beginning only when a commit finds every frame copied back, so
// while the relay is writing, copy again at once until caught up; then rest for the interval.
let timer = null;
let stopped = false;
const step = () => {
  timer = null;
  if (stopped) return;
  let behind = false;
  try { const r = checkpoint('PASSIVE'); behind = r.log > r.checkpointed; parentPort.postMessage({ t: 'passive' }); }
  catch (err) { parentPort.postMessage({ t: 'failed', message: String(err && err.message) }); }
  timer = behind ? setImmediate(step) : setTimeout(step, workerData.intervalMs);
};
timer = setTimeout(step, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m.t === 'stop') { stopped = true; clearTimeout(timer); clearImmediate(timer); db.close(); parentPort.close(); return; }
  try { checkpoint('PASSIVE'); parentPort.postMessage({ t: 'done', id: m.id, result: checkpoint(m.mode) }); }
  catch (err) { parentPort.postMessage({ t: 'done', id: m.id, error: String(err && err.message) }); }
});
`;

export class Checkpointer {
  readonly stats: CheckpointStats = { passive: 0, forced: 0, maxWalBytes: 0, threadAlive: false };
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve(r: CheckpointResult): void; reject(e: Error): void }>();
  private lastCheckAt = 0;
  private readonly walFile: string;

  constructor(
    private readonly sqlite: Database.Database,
    private readonly file: string,
    private readonly o: CheckpointOptions,
    private readonly log: Logger,
  ) {
    this.walFile = `${file}-wal`;
  }

  /** Turns off the relay connection's automatic checkpoint and starts the thread. */
  start(): void {
    this.sqlite.pragma('wal_autocheckpoint = 0');
    // After the WAL restarts from its beginning, SQLite truncates the file down to this size.
    this.sqlite.pragma(`journal_size_limit = ${Math.floor(this.o.maxWalBytes / 2)}`);
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver, file: this.file, intervalMs: this.o.intervalMs } });
    worker.unref();
    worker.on('message', (m: { t: string; id?: number; result?: CheckpointResult; error?: string; message?: string }) => {
      if (m.t === 'passive') this.stats.passive++;
      else if (m.t === 'failed') this.log.warn({ event: 'checkpoint_failed', message: m.message }, 'background checkpoint failed');
      else if (m.t === 'done' && m.id !== undefined) {
        const w = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        if (m.error !== undefined) w?.reject(new Error(m.error));
        else if (m.result) w?.resolve(m.result);
      }
    });
    worker.on('error', (err) => {
      this.log.error({ event: 'checkpointer_died', message: err.message }, 'checkpoint thread failed; checkpoints fall back to the relay connection');
      this.fail(err);
    });
    worker.on('exit', () => this.fail(new Error('the checkpoint thread stopped')));
    this.worker = worker;
    this.stats.threadAlive = true;
  }

  /**
   * Copies every frame back and empties the WAL file (after a sweep, so deleted ciphertext is not
   * left in it). Runs in the thread; if the thread is gone, on the relay's connection.
   */
  async truncate(): Promise<CheckpointResult> {
    if (!this.worker) return this.onMain('TRUNCATE');
    const id = this.nextId++;
    const done = new Promise<CheckpointResult>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    this.worker.postMessage({ t: 'checkpoint', id, mode: 'TRUNCATE' });
    try {
      return await done;
    } catch (err) {
      if (!this.sqlite.open) throw err;
      return this.onMain('TRUNCATE');
    }
  }

  /**
   * The bound: called after every commit, looks at the WAL's size at most every 50 ms, and
   * checkpoints on the relay's connection if it passed `maxWalBytes`.
   */
  guard(): void {
    const now = performance.now();
    if (now - this.lastCheckAt < 50) return;
    this.lastCheckAt = now;
    let size: number;
    try {
      size = fs.statSync(this.walFile).size;
    } catch {
      return;
    }
    if (size > this.stats.maxWalBytes) this.stats.maxWalBytes = size;
    if (size <= this.o.maxWalBytes) return;
    this.stats.forced++;
    const r = this.onMain('RESTART');
    this.log.warn({ event: 'wal_bound', walBytes: size, busy: r.busy }, 'the WAL passed its bound; checkpointed on the relay connection');
  }

  async stop(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    this.worker = null;
    this.stats.threadAlive = false;
    // Referenced while stopping, so a process with nothing else to do waits for the close.
    worker.ref();
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage({ t: 'stop' });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 2000)))]);
    clearTimeout(timer);
    await worker.terminate();
    for (const w of this.waiting.values()) w.reject(new Error('the relay is shutting down'));
    this.waiting.clear();
  }

  private onMain(mode: 'RESTART' | 'TRUNCATE'): CheckpointResult {
    const [row] = this.sqlite.pragma(`wal_checkpoint(${mode})`) as CheckpointResult[];
    return row ?? { busy: 0, log: 0, checkpointed: 0 };
  }

  private fail(err: Error): void {
    if (!this.worker) return;
    this.worker = null;
    this.stats.threadAlive = false;
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }
}
