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
  /** The WAL size past which the thread restarts the WAL from its beginning. */
  restartWalBytes: number;
  /** The WAL size past which the relay checkpoints on its own connection (the thread fell behind). */
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
  /** Times the thread restarted the WAL because it passed `restartWalBytes`. */
  restarts: number;
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
const fs = require('node:fs');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 5000');
// Checkpoints sync the database file before the WAL may start over (the relay's group commits write with synchronous = OFF and sync the WAL themselves).
db.pragma('synchronous = FULL');
const checkpoint = (mode) => db.pragma('wal_checkpoint(' + mode + ')')[0];
// Bytes per WAL frame: a page and its 24-byte header.
const frameBytes = db.pragma('page_size', { simple: true }) + 24;
// The WAL starts over from its beginning only when a commit finds every frame copied back, so
// while the relay is writing, copy again at once until caught up; then rest for the interval.
let timer = null;
let stopped = false;
const step = () => {
  timer = null;
  if (stopped) return;
  let again = false;
  try {
    const r = checkpoint('PASSIVE');
    parentPort.postMessage({ t: 'passive' });
    // Past the soft bound, RESTART: it waits for the frames still being written, copies them
    // (few, the passive run just copied the rest) and makes the next commit start the WAL over.
    if (r.log * frameBytes > workerData.restartWalBytes) {
      const x = checkpoint('RESTART');
      parentPort.postMessage({ t: 'restart' });
      again = x.busy !== 0;
    } else again = r.log > r.checkpointed;
  }
  catch (err) { parentPort.postMessage({ t: 'failed', message: String(err && err.message) }); }
  // While behind, go again almost at once; otherwise rest for the interval.
  timer = setTimeout(step, again ? 1 : workerData.intervalMs);
};
timer = setTimeout(step, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m.t === 'stop') { stopped = true; clearTimeout(timer); db.close(); parentPort.close(); return; }
  try { checkpoint('PASSIVE'); parentPort.postMessage({ t: 'done', id: m.id, result: checkpoint(m.mode) }); }
  catch (err) { parentPort.postMessage({ t: 'done', id: m.id, error: String(err && err.message) }); }
});
`;

export class Checkpointer {
  readonly stats: CheckpointStats = { passive: 0, restarts: 0, forced: 0, maxWalBytes: 0, threadAlive: false };
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
    if (!(o.restartWalBytes > 0 && o.restartWalBytes < o.maxWalBytes)) {
      throw new Error(`wal.restartWalBytes (${o.restartWalBytes}) must be above 0 and below wal.maxWalBytes (${o.maxWalBytes})`);
    }
    this.walFile = `${file}-wal`;
  }

  /** Turns off the relay connection's automatic checkpoint and starts the thread. */
  start(): void {
    this.sqlite.pragma('wal_autocheckpoint = 0');
    // After the WAL restarts from its beginning, SQLite truncates the file down to this size.
    this.sqlite.pragma(`journal_size_limit = ${this.o.restartWalBytes}`);
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    // execArgv: [] keeps the process's own flags (say --input-type=module) from changing how the
    // CommonJS source above is read.
    const worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData: { driver, file: this.file, intervalMs: this.o.intervalMs, restartWalBytes: this.o.restartWalBytes } });
    worker.unref();
    worker.on('message', (m: { t: string; id?: number; result?: CheckpointResult; error?: string; message?: string }) => {
      if (m.t === 'passive') this.stats.passive++;
      else if (m.t === 'restart') this.stats.restarts++;
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
