// The writer thread (docs/PROTOCOL.md §Delivery): group commits of envelopes on a worker thread's
// own SQLite connection, so that the relay's event loop never runs a transaction on the delivery
// path; it only parses, checks, hands batches over and forwards. The thread takes the write lock
// shared with the relay's other writes and the checkpoint thread (server/checkpointer.ts WriteLock)
// around each transaction, waiting for it with Atomics.wait, which only a thread may do. It writes
// with synchronous = OFF, like the relay's own group commits: the relay fsyncs the WAL afterwards
// and only then acknowledges. The store (server/append.ts) is the same function on both
// connections. The relay keeps reads of a conversation with a batch in flight below what it knows
// of (RelayStore.capInFlight), and falls back to committing on its own connection if the thread dies.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { APPEND_SQL, appendEnvelope } from '../append.ts';
import { outcomeOf, type NewEnvelope } from '../store.ts';
import type { CommitOutcome } from './commit-queue.ts';

/** What the thread reports for one batch. */
export interface WriterLanding {
  outcomes: CommitOutcome[];
  /** How long its transaction held the write lock (ms). */
  ms: number;
  /** How long the thread waited for the lock first (ms). */
  lockWaitMs: number;
}

/** The value the thread writes into the write lock's first word while it holds it. */
export const WRITER_HOLDS = 3;

// The thread's code, evaluated as CommonJS so it runs the same from the TypeScript sources (tests)
// and from the build. A batch arrives as one JSON string of rows and one transferred buffer
// holding every row's roster hash, ciphertext and signature back to back.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
// The relay fsyncs the WAL before it acknowledges anything this thread commits.
db.pragma('synchronous = OFF');
db.pragma('foreign_keys = ON');
db.pragma('secure_delete = ON');
db.pragma('busy_timeout = 5000');
// Checkpoints belong to the checkpoint thread, never inside a commit on the delivery path.
db.pragma('wal_autocheckpoint = 0');
db.pragma('journal_size_limit = ' + Number(workerData.journalSizeLimit));
for (const [name, want] of [['synchronous', 0], ['secure_delete', 1], ['foreign_keys', 1], ['wal_autocheckpoint', 0]]) {
  if (db.pragma(name, { simple: true }) !== want) throw new Error('pragma ' + name + ' did not take');
}
const SQL = workerData.sql;
const st = {
  existing: db.prepare(SQL.existing),
  nextSeq: db.prepare(SQL.nextSeq).pluck(),
  insert: db.prepare(SQL.insert),
  opened: db.prepare(SQL.opened),
};
const appendEnvelope = (${appendEnvelope.toString()});
const store = db.transaction((rows, bytes, now) => {
  const out = new Array(rows.length);
  let at = 0;
  for (let i = 0; i < rows.length; i++) {
    const a = rows[i];
    const rosterHash = bytes.subarray(at, (at += a[11]));
    const ct = bytes.subarray(at, (at += a[12]));
    const sig = bytes.subarray(at, (at += a[13]));
    out[i] = appendEnvelope(st, { conv: a[0], senderId: a[1], clientMsgId: a[2], v: a[3], suite: a[4], type: a[5], epoch: a[6], counter: a[7], expiresAt: a[8], burnAfterMs: a[9], opens: a[10], rosterHash, ct, sig }, now);
  }
  return out;
});
// The write lock (0 free, 1 the relay, 2 the checkpoint thread, 3 this thread). The second word
// says a writer is waiting, which makes a sweep batch end at its next chunk.
const lock = new Int32Array(workerData.lock);
const HOLDS = ${WRITER_HOLDS};
parentPort.on('message', (m) => {
  if (m.t === 'stop') { db.close(); parentPort.close(); return; }
  const t0 = performance.now();
  let held;
  while ((held = Atomics.compareExchange(lock, 0, 0, HOLDS)) !== 0) {
    Atomics.store(lock, 1, 1);
    Atomics.wait(lock, 0, held, 5);
  }
  Atomics.store(lock, 1, 0);
  const t1 = performance.now();
  let reply;
  try {
    const outcomes = store.immediate(JSON.parse(m.rows), new Uint8Array(m.bytes), m.now);
    reply = { id: m.id, outcomes: JSON.stringify(outcomes), ms: performance.now() - t1, lockWaitMs: t1 - t0 };
  } catch (err) {
    reply = { id: m.id, error: String(err && err.message) };
  } finally {
    Atomics.store(lock, 0, 0);
    Atomics.notify(lock, 0);
  }
  parentPort.postMessage(reply);
});
`;

type Reply = { id: number; outcomes: string; ms: number; lockWaitMs: number } | { id: number; error: string };

export class EnvelopeWriter {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly waiting = new Map<number, (r: WriterLanding | Error) => void>();
  private readonly died: ((err: Error) => void)[] = [];

  /**
   * @param file the database file
   * @param lock the shared write lock's buffer (Checkpointer.writeLock.buffer)
   * @param journalSizeLimit the WAL size SQLite trims the file to after it starts over
   * @param unlocked told after each batch, when the thread has let go of the lock (WriteTurns.unlocked)
   */
  constructor(
    private readonly file: string,
    private readonly lock: SharedArrayBuffer,
    private readonly journalSizeLimit: number,
    private readonly unlocked: () => void,
  ) {}

  start(): void {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    // execArgv: [] keeps the process's own flags from changing how the CommonJS source is read.
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      execArgv: [],
      workerData: { driver, file: this.file, lock: this.lock, journalSizeLimit: this.journalSizeLimit, sql: APPEND_SQL },
    });
    worker.unref();
    worker.on('message', (m: Reply) => {
      const done = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      this.unlocked();
      if (!done) return;
      if ('error' in m) return done(new Error(m.error));
      const outcomes = (JSON.parse(m.outcomes) as Parameters<typeof outcomeOf>[0][]).map(outcomeOf);
      done({ outcomes, ms: m.ms, lockWaitMs: m.lockWaitMs });
    });
    worker.on('error', (err) => this.fail(err));
    worker.on('exit', () => this.fail(new Error('the writer thread stopped')));
    this.worker = worker;
  }

  /** True while batches go to the thread. */
  get alive(): boolean {
    return this.worker !== null;
  }

  /** Told once if the thread dies; batches it had are answered with an error after this. */
  onDied(run: (err: Error) => void): void {
    this.died.push(run);
  }

  /**
   * Hands a batch to the thread, to be stored in one transaction at `now`. `done` gets its
   * outcomes once that transaction committed (not yet synced), or an error: the transaction was
   * rolled back, or, if the thread died meanwhile, it may or may not have committed.
   */
  commit(batch: readonly NewEnvelope[], now: number, done: (r: WriterLanding | Error) => void): void {
    const worker = this.worker;
    if (!worker) return done(new Error('the writer thread is not running'));
    let size = 0;
    for (const e of batch) size += e.rosterHash.byteLength + e.ct.byteLength + e.sig.byteLength;
    const bytes = new Uint8Array(size);
    const rows = new Array<unknown[]>(batch.length);
    let at = 0;
    batch.forEach(({ env, senderId, rosterHash, ct, sig, opens }, i) => {
      bytes.set(rosterHash, at);
      at += rosterHash.byteLength;
      bytes.set(ct, at);
      at += ct.byteLength;
      bytes.set(sig, at);
      at += sig.byteLength;
      rows[i] = [env.conv, senderId, env.clientMsgId, env.v, env.suite, env.type, env.epoch, env.counter, env.expiresAt, env.burnAfterMs, opens, rosterHash.byteLength, ct.byteLength, sig.byteLength];
    });
    const id = this.nextId++;
    this.waiting.set(id, done);
    worker.postMessage({ t: 'batch', id, now, rows: JSON.stringify(rows), bytes: bytes.buffer }, [bytes.buffer]);
  }

  /** Lets the batches handed over finish, then closes the thread's connection. */
  async stop(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    // Referenced while stopping, so a process with nothing else to do waits for the close.
    worker.ref();
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage({ t: 'stop' });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 5000)))]);
    clearTimeout(timer);
    this.fail(new Error('the relay is shutting down'));
    await worker.terminate();
  }

  /** Ends the thread at once, as a crash would (tests of the fall-back). */
  async kill(): Promise<void> {
    await this.worker?.terminate();
  }

  private fail(err: Error): void {
    if (!this.worker) return;
    this.worker = null;
    // A thread that died holding the write lock must not keep every other writer out.
    const cell = new Int32Array(this.lock);
    if (Atomics.compareExchange(cell, 0, WRITER_HOLDS, 0) === WRITER_HOLDS) Atomics.notify(cell, 0);
    for (const run of this.died) run(err);
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    for (const done of waiting) done(err);
    this.unlocked();
  }
}
