// WAL checkpoints and sweep deletions off the delivery path (docs/PROTOCOL.md §Delivery,
// Checkpoints). SQLite's automatic checkpoint runs inside whichever commit crosses the threshold,
// copying megabytes and syncing the database file while every sender waits. Here the relay's
// connection has it turned off; a worker thread with its own connection copies WAL frames back
// continuously (PASSIVE, which never blocks writers). The WAL only starts over when a checkpoint
// has copied every frame and no commit came in between, which a busy relay rarely allows, so past
// `restartWalBytes` (and after a sweep) the thread takes the write lock it shares with the relay's
// group commits and runs RESTART (or TRUNCATE) on its own connection. The sweeper's deletions run
// on the same thread under the same lock, one short batch at a time. The relay's event loop never
// checkpoints, deletes or waits for the lock while the thread is alive: a commit that finds the
// lock taken waits for the next turn.
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
  /** The WAL file size past which a restart is forced and logged (the thread fell behind). */
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
  /** Restarts forced because the WAL file passed `maxWalBytes` (the thread fell behind). */
  forced: number;
  /** The largest WAL file seen by the bound check (bytes). */
  maxWalBytes: number;
  /** False once the thread has failed; the bound check then keeps the WAL in check alone. */
  threadAlive: boolean;
  /** The longest the relay's event loop spent on a checkpoint of its own (only without the thread; ms). */
  longestHandoffMs: number;
}

/**
 * The lock that keeps the relay's writes (HTTP writes, housekeeping, group commits when there is
 * no writer thread), the writer thread's group commits (server/ws/writer.ts) and the checkpoint
 * thread's writes (sweep batches, RESTART and TRUNCATE checkpoints) apart: one Int32 in shared
 * memory, 0 free, 1 held by the relay's event loop, 2 by the checkpoint thread, 3 by the writer
 * thread. The event loop only ever tries it, through its write turns (server/write-turns.ts: a
 * write that finds it taken waits without holding the event loop), except when closing; the
 * threads wait for it. SQLite's own lock would make writers sleep in its busy handler instead.
 *
 * A second Int32 says a writer (the event loop or the writer thread) wants the lock: a try that
 * fails raises it, one that succeeds lowers it. A sweep batch looks at it between its short chunks and commits early when it is up,
 * so a delivery waits for at most one chunk and the batch's commit, not a whole batch.
 */
export class WriteLock {
  readonly buffer = new SharedArrayBuffer(8);
  private readonly cell = new Int32Array(this.buffer);

  /** Takes the lock for the relay if it is free; if not, tells the thread the relay is waiting. */
  tryAcquire(): boolean {
    if (Atomics.compareExchange(this.cell, 0, 0, 1) === 0) {
      Atomics.store(this.cell, 1, 0);
      return true;
    }
    Atomics.store(this.cell, 1, 1);
    return false;
  }

  /** Takes it for the relay, waiting (blocking) while the thread has it; only for shutting down. */
  acquire(): void {
    for (;;) {
      const held = Atomics.compareExchange(this.cell, 0, 0, 1);
      if (held === 0) {
        Atomics.store(this.cell, 1, 0);
        return;
      }
      Atomics.store(this.cell, 1, 1);
      Atomics.wait(this.cell, 0, held, 5);
    }
  }

  release(): void {
    Atomics.store(this.cell, 0, 0);
    Atomics.notify(this.cell, 0);
  }

  /** Who holds it now: 0 nobody, 1 the relay's event loop, 2 the checkpoint thread, 3 the writer thread (server/ws/writer.ts). */
  get holder(): number {
    return Atomics.load(this.cell, 0);
  }
}

// The worker's code, evaluated as CommonJS so it runs the same from TypeScript sources (tests) and
// from the build. It copies WAL frames back on its own, and on the relay's request runs a
// RESTART/TRUNCATE checkpoint or one sweep batch, each under the write lock.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
// Checkpoints sync the database file before the WAL may start over (the relay's group commits
// write with synchronous = OFF and sync the WAL themselves).
db.pragma('synchronous = FULL');
// Pragmas are per connection: deletions made here must overwrite the freed bytes too.
db.pragma('secure_delete = ON');
db.pragma('foreign_keys = ON');
db.pragma('busy_timeout = 5000');
// This thread copies frames back on its own schedule, outside the write lock; a commit of its own
// (a sweep batch) must not run a checkpoint while it holds the lock.
db.pragma('wal_autocheckpoint = 0');
// Sweep batches walk three B-trees of a large table: keep their inner pages at hand.
db.pragma('cache_size = -16384');
if (db.pragma('secure_delete', { simple: true }) !== 1) throw new Error('secure_delete did not take');
const passive = () => db.pragma('wal_checkpoint(PASSIVE)')[0];
// The write lock shared with the relay's writes (0 free, 1 the relay's event loop, 2 this thread,
// 3 the writer thread): taken only around this thread's own writes, so no writer ever waits in
// SQLite's busy handler.
const lock = new Int32Array(workerData.lock);
const locked = (run) => {
  let held;
  while ((held = Atomics.compareExchange(lock, 0, 0, 2)) !== 0) Atomics.wait(lock, 0, held, 20);
  try { return run(); } finally { Atomics.store(lock, 0, 0); Atomics.notify(lock, 0); }
};
// The sweep: the keys of the oldest expired envelopes, read outside the write lock and sorted,
// then deleted in that order over as many batches as it takes (server/store.ts SWEEP_READ_SQL).
const sweepRead = workerData.sweep ? db.prepare(workerData.sweep.readSql).raw() : null;
const sweepDelete = workerData.sweep ? db.prepare(workerData.sweep.deleteSql) : null;
let keys = [];
let nextKey = 0;
/** The last read found fewer expired rows than it asked for: once its keys are done, none is left. */
let lastReadShort = true;
const readKeys = (now, window) => {
  keys = sweepRead.all(now, window);
  keys.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
  nextKey = 0;
  lastReadShort = keys.length < window;
};
// One batch: deletes keys in order in one transaction until they run out, \`limit\` are done,
// \`maxMs\` has passed, or the relay wants the lock (lock[1]), looking every \`chunk\` keys; then one
// commit. Returns where it stopped; the caller moves on only once the commit is through.
const sweep = db.transaction((now, limit, chunk, maxMs, t0) => {
  let deleted = 0;
  let i = nextKey;
  const end = Math.min(keys.length, nextKey + limit);
  while (i < end) {
    const stop = Math.min(end, i + chunk);
    for (; i < stop; i++) deleted += sweepDelete.run(keys[i][0], keys[i][1], now).changes;
    if (i >= end || performance.now() - t0 >= maxMs) return { deleted, upTo: i, yielded: false };
    if (Atomics.load(lock, 1) === 1) return { deleted, upTo: i, yielded: true };
  }
  return { deleted, upTo: i, yielded: false };
});
let timer = null;
const step = () => {
  timer = null;
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
const answer = (id, run) => {
  try { parentPort.postMessage({ t: 'done', id, result: run() }); }
  catch (err) { parentPort.postMessage({ t: 'done', id, error: String(err && err.message) }); }
};
parentPort.on('message', (m) => {
  if (m.t === 'stop') { clearTimeout(timer); db.close(); parentPort.close(); return; }
  if (m.t === 'checkpoint') {
    answer(m.id, () => {
      if (m.mode === 'PASSIVE') return passive();
      if (m.mode !== 'RESTART' && m.mode !== 'TRUNCATE') throw new Error('unknown checkpoint mode');
      // Copy back what is there first (it never waits), then finish with the mode asked for
      // while the relay's commits wait: RESTART and TRUNCATE keep writers out until they are done.
      passive();
      return locked(() => db.pragma('wal_checkpoint(' + m.mode + ')')[0]);
    });
    return;
  }
  if (m.t === 'sweep') {
    answer(m.id, () => {
      if (!sweepRead) throw new Error('no sweep statements');
      if (nextKey >= keys.length) readKeys(m.now, m.window);
      if (keys.length === 0) return { deleted: 0, exhausted: true, yielded: false, ms: 0 };
      // No fsync per batch: a deletion a power cut takes back is done again by the next sweep
      // (reads filter by time anyway), and the TRUNCATE checkpoint after the sweep syncs it all.
      db.pragma('synchronous = OFF');
      try {
        return locked(() => {
          const t0 = performance.now();
          const r = sweep.immediate(m.now, m.limit, m.chunk, m.maxMs, t0);
          nextKey = r.upTo;
          return { deleted: r.deleted, exhausted: nextKey >= keys.length && lastReadShort, yielded: r.yielded, ms: performance.now() - t0 };
        });
      } finally {
        db.pragma('synchronous = FULL');
      }
    });
  }
});
`;

export interface SweepBatchResult {
  deleted: number;
  /** No row expired by the batch's `now` is left (the thread: its last read came back short and is done). */
  exhausted: boolean;
  /** The batch ended early because a relay write was waiting for the lock. */
  yielded: boolean;
  /** Time the thread held the write lock for the batch (ms). */
  ms: number;
}

/** How one batch on the thread may run. */
export interface SweepBatchLimits {
  /** Most rows in the batch (one transaction). */
  limit: number;
  /** Rows between two looks whether the relay wants the lock. */
  chunk: number;
  /** How many expired keys the thread reads at a time (outside the lock) to delete in key order. */
  window: number;
  /** The thread starts no new chunk past this much time holding the lock (ms). */
  maxMs: number;
}

type Request = { t: 'checkpoint'; mode: 'PASSIVE' | 'RESTART' | 'TRUNCATE' } | ({ t: 'sweep'; now: number } & SweepBatchLimits);

export class Checkpointer {
  readonly stats: CheckpointStats = { passive: 0, restarts: 0, forced: 0, maxWalBytes: 0, threadAlive: false, longestHandoffMs: 0 };
  /** Shared with the relay's group commits (CommitQueue). */
  readonly writeLock = new WriteLock();
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve(r: unknown): void; reject(e: Error): void }>();
  private lastCheckAt = 0;
  /** Frames in the WAL at the thread's last checkpoint. */
  private walFrames = 0;
  private frameBytes = 4096 + 24;
  private handoff: Promise<CheckpointResult> | null = null;
  private unlocked: () => void = () => {};
  private readonly walFile: string;

  /**
   * @param sweep the sweeper's statements (server/store.ts SWEEP_READ_SQL, SWEEP_DELETE_SQL), which
   * the thread runs for `sweepBatch`; null for a relay that never sweeps on the thread
   */
  constructor(
    private readonly sqlite: Database.Database,
    private readonly file: string,
    private readonly o: CheckpointOptions,
    private readonly log: Logger,
    private readonly sweep: { readSql: string; deleteSql: string } | null = null,
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
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      execArgv: [],
      workerData: { driver, file: this.file, intervalMs: this.o.intervalMs, sweep: this.sweep, lock: this.writeLock.buffer },
    });
    worker.unref();
    worker.on('message', (m: { t: string; id?: number; result?: unknown; error?: string; message?: string }) => {
      if (m.t === 'passive') {
        this.stats.passive++;
        if (m.result) this.walFrames = (m.result as CheckpointResult).log;
      } else if (m.t === 'failed') this.log.warn({ event: 'checkpoint_failed', message: m.message }, 'background checkpoint failed');
      else if (m.t === 'done' && m.id !== undefined) {
        const w = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        // The thread let go of the write lock (if it took it): commits waiting for it may go.
        this.unlocked();
        if (m.error !== undefined) w?.reject(new Error(m.error));
        else w?.resolve(m.result);
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

  /** Tells the relay's waiting writes when the thread has let go of the write lock (WriteTurns). */
  onUnlocked(run: () => void): void {
    this.unlocked = run;
  }

  /** True while the thread can run sweep batches (it is alive and has the statement). */
  get canSweep(): boolean {
    return this.worker !== null && this.sweep !== null;
  }

  /**
   * Deletes one batch of expired envelopes on the thread's connection, holding the write lock
   * only for the batch itself, and ending it at the next chunk once a relay write is waiting
   * (which then goes next; the relay's event loop never waits). Waits for a running checkpoint
   * first.
   */
  async sweepBatch(now: number, limits: SweepBatchLimits): Promise<SweepBatchResult> {
    await this.handoff?.catch(() => {});
    if (!this.worker) throw new Error('the checkpoint thread is not running');
    return this.request<SweepBatchResult>({ t: 'sweep', now, ...limits });
  }

  /**
   * Copies every frame back and empties the WAL file (after a sweep, so deleted ciphertext is not
   * left in it).
   */
  truncate(): Promise<CheckpointResult> {
    return this.takeOver('TRUNCATE');
  }

  /**
   * Called after every commit and sweep batch; at most every 50 ms it looks at the WAL. Past
   * `restartWalBytes` of frames the WAL is started over (a short take-over); past `maxWalBytes`
   * on disk the same, counted as forced and logged (the thread fell behind).
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
    if (size > this.o.maxWalBytes) {
      this.stats.forced++;
      this.log.warn({ event: 'wal_bound', walBytes: size }, 'the WAL passed its bound; starting it over');
      void this.takeOver('RESTART').catch(() => {});
      return;
    }
    // The file only shrinks at the first commit after a restart (journal_size_limit), so its
    // size is current where the thread's frame count may be a checkpoint old.
    if (Math.max(size, this.walFrames * this.frameBytes) > this.o.restartWalBytes) void this.takeOver('RESTART').catch(() => {});
  }

  /**
   * Starts the WAL over (RESTART) or empties it (TRUNCATE): the thread copies the frames back
   * while commits go on, then takes the write lock (commits wait for the next turn; the event loop
   * does not), copies the few frames written meanwhile and runs `mode` on its own connection, and
   * lets go; the next commit writes the WAL from its beginning. Without a thread the relay runs
   * `mode` on its own connection.
   */
  private takeOver(mode: 'RESTART' | 'TRUNCATE'): Promise<CheckpointResult> {
    const run = async (): Promise<CheckpointResult> => {
      if (!this.worker) {
        if (!this.sqlite.open) throw new Error('the relay is shutting down');
        const t0 = performance.now();
        const r = this.onMain(mode);
        const ms = performance.now() - t0;
        if (ms > this.stats.longestHandoffMs) this.stats.longestHandoffMs = ms;
        this.counted(r);
        return r;
      }
      // Most frames are copied back while commits go on; only the rest is copied with the write
      // lock held (commits wait for the next turn meanwhile).
      await this.request<CheckpointResult>({ t: 'checkpoint', mode: 'PASSIVE' });
      const r = await this.request<CheckpointResult>({ t: 'checkpoint', mode });
      this.counted(r);
      return r;
    };
    return this.serialise(run);
  }

  private counted(r: CheckpointResult): void {
    if (r.busy === 0) {
      this.stats.restarts++;
      this.walFrames = 0;
    }
  }

  private request<T>(req: Request): Promise<T> {
    const worker = this.worker;
    if (!worker) return Promise.reject(new Error('the checkpoint thread is not running'));
    const id = this.nextId++;
    const answer = new Promise<T>((resolve, reject) => this.waiting.set(id, { resolve: resolve as (r: unknown) => void, reject }));
    worker.postMessage({ ...req, id });
    return answer;
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
    // A thread that died holding the write lock must not keep the relay's commits out.
    this.writeLock.release();
    this.unlocked();
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }
}
