// WAL checkpoints off the delivery path (docs/PROTOCOL.md §Delivery, Checkpoints). SQLite's
// automatic checkpoint runs inside whichever commit crosses the threshold, copying megabytes and
// syncing the database file while every sender waits. Here the relay's connection has it turned
// off; a worker thread with its own connection copies WAL frames back continuously (PASSIVE,
// which never blocks writers). The WAL only starts over when a checkpoint has copied every frame
// and no commit came in between, which a busy relay rarely allows, so past `restartWalBytes` the
// relay takes over for a moment: the thread catches up and holds still, and the relay, the only
// writer, runs RESTART (or TRUNCATE after a sweep) on its own connection with just the last few
// frames left to copy, then lets the thread go on.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import type { Logger } from './log.ts';

export interface CheckpointOptions {
  /** How often the thread copies WAL frames back (ms). */
  intervalMs: number;
  /** WAL frames (bytes) past which the relay starts the WAL over from its beginning. */
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
  /** Times the relay started the WAL over (past `restartWalBytes`, or after a sweep). */
  restarts: number;
  /** Checkpoints the relay had to run on its own connection because the WAL passed its bound. */
  forced: number;
  /** The largest WAL file seen by the bound check (bytes). */
  maxWalBytes: number;
  /** False once the thread has failed; the bound check then keeps the WAL in check alone. */
  threadAlive: boolean;
  /** The longest the relay's event loop spent on a take-over checkpoint (ms). */
  longestHandoffMs: number;
  /** The longest group commits were held back so the WAL could start over (ms). */
  longestPauseMs: number;
}

// The worker's code, evaluated as CommonJS so it runs the same from TypeScript sources (tests) and
// from the build. It only ever runs checkpoints; it never reads or writes a row.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
// Checkpoints sync the database file before the WAL may start over (the relay's group commits
// write with synchronous = OFF and sync the WAL themselves).
db.pragma('synchronous = FULL');
const passive = () => db.pragma('wal_checkpoint(PASSIVE)')[0];
let timer = null;
let held = false;
const step = () => {
  timer = null;
  if (held) return;
  let behind = false;
  try {
    const r = passive();
    behind = r.log > r.checkpointed;
    parentPort.postMessage({ t: 'passive', result: r });
  } catch (err) {
    parentPort.postMessage({ t: 'failed', message: String(err && err.message) });
  }
  // While behind, go again almost at once; otherwise rest for the interval.
  timer = setTimeout(step, behind ? 1 : workerData.intervalMs);
};
timer = setTimeout(step, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m.t === 'stop') { clearTimeout(timer); db.close(); parentPort.close(); return; }
  if (m.t === 'hold') {
    // Catch up once more, then stay out of the way while the relay finishes the checkpoint.
    held = true;
    clearTimeout(timer);
    try { parentPort.postMessage({ t: 'held', id: m.id, result: passive() }); }
    catch (err) { parentPort.postMessage({ t: 'held', id: m.id, error: String(err && err.message) }); }
    return;
  }
  if (m.t === 'release') { held = false; clearTimeout(timer); timer = setTimeout(step, workerData.intervalMs); }
});
`;

export class Checkpointer {
  readonly stats: CheckpointStats = { passive: 0, restarts: 0, forced: 0, maxWalBytes: 0, threadAlive: false, longestHandoffMs: 0, longestPauseMs: 0 };
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve(r: CheckpointResult): void; reject(e: Error): void }>();
  private lastCheckAt = 0;
  /** Frames in the WAL at the thread's last checkpoint. */
  private walFrames = 0;
  private frameBytes = 4096 + 24;
  private handoff: Promise<CheckpointResult> | null = null;
  private gate: { pause(): void; resume(): void } | null = null;
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
    // After the WAL starts over, SQLite trims the file down to this size at the next commit.
    this.sqlite.pragma(`journal_size_limit = ${this.o.restartWalBytes}`);
    this.frameBytes = Number(this.sqlite.pragma('page_size', { simple: true })) + 24;
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    // execArgv: [] keeps the process's own flags (say --input-type=module) from changing how the
    // CommonJS source above is read.
    const worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData: { driver, file: this.file, intervalMs: this.o.intervalMs } });
    worker.unref();
    worker.on('message', (m: { t: string; id?: number; result?: CheckpointResult; error?: string; message?: string }) => {
      if (m.t === 'passive') {
        this.stats.passive++;
        if (m.result) this.walFrames = m.result.log;
      } else if (m.t === 'failed') this.log.warn({ event: 'checkpoint_failed', message: m.message }, 'background checkpoint failed');
      else if (m.t === 'held' && m.id !== undefined) {
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

  /** Lets the checkpointer hold the relay's group commits back for a moment (Hub.commits). */
  setWriterGate(gate: { pause(): void; resume(): void }): void {
    this.gate = gate;
  }

  /**
   * Copies every frame back and empties the WAL file (after a sweep, so deleted ciphertext is not
   * left in it).
   */
  truncate(): Promise<CheckpointResult> {
    return this.takeOver('TRUNCATE');
  }

  /**
   * Called after every commit; at most every 50 ms it looks at the WAL. Past `restartWalBytes` of
   * frames the WAL is started over (a short take-over); past `maxWalBytes` on disk with no thread
   * to help, the relay checkpoints alone and logs it.
   */
  guard(): void {
    const now = performance.now();
    if (now - this.lastCheckAt < 50 || this.handoff) return;
    this.lastCheckAt = now;
    let size = 0;
    try {
      size = fs.statSync(this.walFile).size;
    } catch {
      return;
    }
    if (size > this.stats.maxWalBytes) this.stats.maxWalBytes = size;
    if (this.worker && size <= this.o.maxWalBytes) {
      // The file only shrinks at the first commit after a restart (journal_size_limit), so its
      // size is current where the thread's frame count may be a checkpoint old.
      if (Math.max(size, this.walFrames * this.frameBytes) > this.o.restartWalBytes) void this.handOver();
      return;
    }
    if (this.worker) {
      void this.takeOver('RESTART').catch(() => {});
      return;
    }
    if (size <= this.o.maxWalBytes) return;
    this.stats.forced++;
    const r = this.onMain('RESTART');
    this.log.warn({ event: 'wal_bound', walBytes: size, busy: r.busy }, 'the WAL passed its bound; checkpointed on the relay connection');
  }

  /**
   * The cheap way to start the WAL over: group commits pause (the event loop does not), the thread
   * copies every frame back, and the relay's next commit finds the WAL fully copied and starts it
   * from the beginning by itself. Costs delivery only the thread's last checkpoint.
   */
  private handOver(): Promise<unknown> {
    const gate = this.gate;
    if (!gate) return this.takeOver('RESTART').catch(() => {});
    const run = async (): Promise<CheckpointResult> => {
      const worker = this.worker;
      if (!worker) return { busy: 0, log: 0, checkpointed: 0 };
      const id = this.nextId++;
      const held = new Promise<CheckpointResult>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
      const t0 = performance.now();
      gate.pause();
      worker.postMessage({ t: 'hold', id });
      try {
        const r = await held;
        if (r.log === r.checkpointed) {
          this.stats.restarts++;
          this.walFrames = 0;
        }
        return r;
      } finally {
        gate.resume();
        const ms = performance.now() - t0;
        if (ms > this.stats.longestPauseMs) this.stats.longestPauseMs = ms;
        this.worker?.postMessage({ t: 'release' });
      }
    };
    return this.serialise(run).catch(() => {});
  }

  /** The thread catches up and holds still; the relay runs `mode` on its own connection; the thread goes on. */
  private takeOver(mode: 'RESTART' | 'TRUNCATE'): Promise<CheckpointResult> {
    const run = async (): Promise<CheckpointResult> => {
      const worker = this.worker;
      if (!worker) return this.onMain(mode);
      const id = this.nextId++;
      const held = new Promise<CheckpointResult>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
      worker.postMessage({ t: 'hold', id });
      try {
        await held;
      } catch (err) {
        if (!this.sqlite.open) throw err;
      }
      try {
        if (!this.sqlite.open) throw new Error('the relay is shutting down');
        const t0 = performance.now();
        const r = this.onMain(mode);
        const ms = performance.now() - t0;
        if (ms > this.stats.longestHandoffMs) this.stats.longestHandoffMs = ms;
        if (r.busy === 0) {
          this.stats.restarts++;
          this.walFrames = 0;
        }
        return r;
      } finally {
        this.worker?.postMessage({ t: 'release' });
      }
    };
    return this.serialise(run);
  }

  /** One take-over at a time; a TRUNCATE asked for during a RESTART runs after it. */
  private serialise(run: () => Promise<CheckpointResult>): Promise<CheckpointResult> {
    const previous = this.handoff ?? Promise.resolve(null);
    const next = previous.catch(() => null).then(run);
    this.handoff = next;
    void next.finally(() => {
      if (this.handoff === next) this.handoff = null;
    }).catch(() => {});
    return next;
  }

  async stop(): Promise<void> {
    await this.handoff?.catch(() => {});
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
