// Group commit for the delivery path (docs/PROTOCOL.md §Delivery): every envelope that arrives in
// one turn of the event loop is stored in one SQLite transaction, and the WAL is then fsynced off
// the event loop. The transaction runs on the writer thread (server/ws/writer.ts), one batch at a
// time, while the envelopes that arrive meanwhile gather into the next; without the thread (it
// died, or there is none) it runs on the event loop, in the relay's turn at the write lock. Once committed (written to the WAL, so a process crash cannot lose it) an
// envelope is pushed to members and readable; its sender is acknowledged only after the fsync, so
// an acknowledged envelope survives a power cut too. At most `maxUnsyncedPushes` envelopes are
// pushed ahead of their fsync; after an unclean stop the relay skips that many seqs in every
// conversation, so a seq pushed and then lost to a power cut is never given to another envelope.
import { UmbraError } from '../../shared/index.ts';
import type { AppendResult, NewEnvelope } from '../store.ts';
import type { WriteTurns } from '../write-turns.ts';
import type { WriterLanding } from './writer.ts';

export type CommitOutcome = AppendResult | UmbraError;

export interface CommitQueueStats {
  /** Transactions committed by the queue. */
  commits: number;
  /** Envelopes they held. */
  envelopes: number;
  /** The largest batch so far. */
  maxBatch: number;
  /** Batches whose commit failed as a whole (every envelope in it got an error). */
  failedCommits: number;
  /** WAL fsyncs; each acknowledged every transaction committed before it began. */
  syncs: number;
  /** The longest one transaction held the write lock (ms), on the writer thread or on the event loop. */
  longestCommitMs: number;
  /** Of the commits, those the writer thread ran. */
  threadCommits: number;
  /** The longest queued envelopes waited for their turn at the write lock (ms). */
  longestLockWaitMs: number;
  /** Turns at the write lock the queue asked for, and how long they waited in all (ms): the mean is what a sweep or checkpoint adds to delivery. */
  lockTurns: number;
  lockWaitMs: number;
}

/** What the queue tells the one who queued an envelope. */
export interface CommitCallbacks {
  /** The envelope is committed and may be pushed (new envelopes only; before `done`, possibly before the fsync). */
  stored(result: AppendResult): void;
  /** Committed and on disk (or refused): the answer for the sender. */
  done(outcome: CommitOutcome): void;
}

interface Pending extends CommitCallbacks {
  item: NewEnvelope;
}

/** A committed transaction whose WAL frames are not known to be on disk yet. */
interface Committed {
  chunk: Pending[];
  outcomes: CommitOutcome[];
  /** Its new envelopes were pushed already (ahead of the fsync). */
  released: boolean;
  /** How many new envelopes it stored. */
  fresh: number;
}

/** What the queue needs of the store. */
export interface CommitTarget {
  /** Stores a batch in one transaction without waiting for the disk (RelayStore.appendEnvelopes with deferSync). */
  commit(batch: readonly NewEnvelope[]): CommitOutcome[];
  /** The writer thread, if there is one: batches go to it while it is alive. */
  offLoop?: OffLoopTarget | null;
  /** fsyncs the WAL off the event loop (OpenedDb.syncWal). */
  sync(done: (err: Error | null) => void): void;
  /** These committed envelopes may be read and pushed (RelayStore.release). */
  release(items: readonly { conv: string; seq: number }[]): void;
}

/** What the queue needs of the writer thread and of the store around it. */
export interface OffLoopTarget {
  readonly alive: boolean;
  /** Hands a batch to the thread (reads of its conversations are capped until `landed`); `done` gets its outcomes once committed, or an error. */
  commit(batch: readonly NewEnvelope[], done: (r: WriterLanding | Error) => void): void;
  /**
   * The batch is back and its new envelopes are held unreleased (outcomes), or it will never be
   * (null: rolled back, or lost with its thread, in which case a WAL sync has run since).
   */
  landed(batch: readonly NewEnvelope[], outcomes: readonly CommitOutcome[] | null): void;
}

export class CommitQueue {
  /** The batch on the writer thread, if any: one at a time, the next gathers meanwhile. */
  private inFlight: Pending[] | null = null;
  /** Waiting for the batch in flight to land (close). */
  private landedWaiters: (() => void)[] = [];
  private queue: Pending[] = [];
  private scheduled = false;
  private syncing = false;
  private awaitingSync: Committed[] = [];
  /** New envelopes pushed ahead of their fsync and not synced yet. */
  private releasedUnsynced = 0;
  /** A commit waits for its fsync to be pushed; later ones wait too, so pushes stay in seq order. */
  private holding = false;
  /** Since when queued envelopes wait for their turn at the write lock (performance.now()), or null. */
  private lockWaitSince: number | null = null;
  /** Told each transaction's start (performance.now()) and length in ms, if set: how a profiler attributes event-loop stalls to commits. */
  onCommitTimed: ((start: number, ms: number) => void) | null = null;
  readonly stats: CommitQueueStats = { commits: 0, envelopes: 0, maxBatch: 0, failedCommits: 0, syncs: 0, longestCommitMs: 0, longestLockWaitMs: 0, lockTurns: 0, lockWaitMs: 0, threadCommits: 0 };

  /**
   * @param target the store and the WAL sync
   * @param maxBatch envelopes per transaction; a longer queue is committed in several
   * @param maxUnsyncedPushes new envelopes that may be pushed ahead of their fsync (0: none)
   * @param onFailure told when a whole transaction or a sync failed (logged by the hub)
   * @param onCommitted runs after each committed transaction (the WAL bound check)
   * @param turns turns at the write lock shared with the checkpoint thread, if there is one
   */
  constructor(
    private readonly target: CommitTarget,
    private readonly maxBatch: number,
    private readonly maxUnsyncedPushes: number,
    private readonly onFailure: (err: Error, size: number) => void,
    private readonly onCommitted: () => void = () => {},
    private readonly turns: WriteTurns | null = null,
  ) {}

  /**
   * Queues an envelope; `stored` runs once it is committed (a new envelope only), `done` once it
   * is also on disk (or refused), never before.
   */
  enqueue(item: NewEnvelope, callbacks: CommitCallbacks): void {
    this.queue.push({ item, stored: callbacks.stored, done: callbacks.done });
    if (!this.scheduled) {
      this.scheduled = true;
      // setImmediate runs after the poll phase, so every frame read in this turn joins the batch.
      setImmediate(() => this.flush());
    }
  }

  /**
   * Commits everything queued now, in the relay's turn at the write lock: at once if the lock is
   * free, otherwise once the thread lets go (never waiting on the event loop). Called by the
   * scheduler, and by close() (with `force`, which waits for the lock) so nothing waits forever.
   */
  flush(force = false): void {
    this.scheduled = false;
    if (this.queue.length === 0) return this.startSync();
    const off = this.target.offLoop;
    if (off?.alive) {
      // The next batch goes when the one in flight lands.
      if (this.inFlight) return;
      const chunk = this.queue.splice(0, this.maxBatch);
      this.inFlight = chunk;
      const t0 = performance.now();
      off.commit(
        chunk.map((p) => p.item),
        (r) => this.landed(chunk, r),
      );
      // What the event loop itself spent on the batch: handing it over.
      this.onCommitTimed?.(t0, performance.now() - t0);
      return;
    }
    if (!this.turns) {
      this.commitQueued();
      return this.startSync();
    }
    if (force) {
      this.turns.runBlocking(() => this.commitQueued());
      return this.startSync();
    }
    // One turn asked for at a time: it commits whatever is queued when it comes.
    if (this.lockWaitSince !== null) return;
    this.lockWaitSince = performance.now();
    void this.turns.run(async () => {
      const waited = performance.now() - this.lockWaitSince!;
      this.stats.lockTurns++;
      this.stats.lockWaitMs += waited;
      if (waited > this.stats.longestLockWaitMs) this.stats.longestLockWaitMs = waited;
      this.lockWaitSince = null;
      this.commitQueued();
    }).then(() => this.startSync());
  }

  private commitQueued(): void {
    while (this.queue.length) {
      const chunk = this.queue.splice(0, this.maxBatch);
      try {
        const t0 = performance.now();
        const outcomes = this.target.commit(chunk.map((p) => p.item));
        const ms = performance.now() - t0;
        if (ms > this.stats.longestCommitMs) this.stats.longestCommitMs = ms;
        this.onCommitTimed?.(t0, ms);
        this.committed(chunk, outcomes);
      } catch (err) {
        this.refused(chunk, err as Error);
      }
    }
  }

  /** A batch is back from the writer thread: committed, rolled back, or lost with the thread. */
  private landed(chunk: Pending[], r: WriterLanding | Error): void {
    const off = this.target.offLoop!;
    this.inFlight = null;
    if (r instanceof Error) {
      if (off.alive) off.landed(chunk.map((p) => p.item), null);
      else {
        // The thread died with the batch: it may have committed. Reads of its conversations stay
        // capped until a WAL sync has made whatever it wrote durable.
        const items = chunk.map((p) => p.item);
        this.target.sync(() => off.landed(items, null));
      }
      this.refused(chunk, r);
    } else {
      this.stats.threadCommits++;
      this.stats.lockTurns++;
      this.stats.lockWaitMs += r.lockWaitMs;
      if (r.lockWaitMs > this.stats.longestLockWaitMs) this.stats.longestLockWaitMs = r.lockWaitMs;
      if (r.ms > this.stats.longestCommitMs) this.stats.longestCommitMs = r.ms;
      off.landed(
        chunk.map((p) => p.item),
        r.outcomes,
      );
      this.committed(chunk, r.outcomes);
    }
    for (const w of this.landedWaiters.splice(0)) w();
    this.startSync();
    // What gathered meanwhile goes next, to the thread or (if it died) to the event loop.
    if (this.queue.length && !this.scheduled) this.flush();
  }

  /**
   * Waits for the batch on the writer thread and whatever is queued, then commits anything left on
   * the relay's own connection (waiting for the lock if the checkpoint thread has it): for
   * closing, so that nothing queued waits forever.
   */
  async drain(): Promise<void> {
    while (this.inFlight || (this.queue.length && this.target.offLoop?.alive)) {
      if (!this.inFlight) this.flush();
      if (this.inFlight) await new Promise<void>((resolve) => this.landedWaiters.push(resolve));
    }
    this.flush(true);
  }

  /** A committed batch: its new envelopes are released now or after the fsync, its senders answered after it. */
  private committed(chunk: Pending[], outcomes: CommitOutcome[]): void {
    this.noteCommit(chunk.length);
    this.onCommitted();
    const fresh = outcomes.filter(isNew).length;
    const early = !this.holding && this.releasedUnsynced + fresh <= this.maxUnsyncedPushes;
    const committed: Committed = { chunk, outcomes, released: early, fresh };
    if (early) {
      this.releasedUnsynced += fresh;
      this.release(committed);
    } else this.holding = true;
    this.awaitingSync.push(committed);
  }

  private refused(chunk: Pending[], err: Error): void {
    this.stats.failedCommits++;
    this.onFailure(err, chunk.length);
    answer(chunk, chunk.map(() => couldNotStore()));
  }

  /**
   * One fsync at a time; it covers every transaction committed before it started, and those
   * committed while it runs wait for the next one (group commit at the disk as well).
   */
  private startSync(): void {
    if (this.syncing || this.awaitingSync.length === 0) return;
    this.syncing = true;
    const group = this.awaitingSync;
    this.awaitingSync = [];
    this.target.sync((err) => {
      this.syncing = false;
      this.stats.syncs++;
      // Pushed either way: if the sync failed the rows are still committed, and a sender's retry
      // (same id, same bytes) is answered with the same sequence number.
      for (const c of group) {
        if (c.released) this.releasedUnsynced -= c.fresh;
        else this.release(c);
      }
      this.holding = this.awaitingSync.some((c) => !c.released);
      if (err) this.onFailure(err, group.reduce((n, c) => n + c.fresh, 0));
      for (const c of group) answer(c.chunk, err ? c.chunk.map(() => couldNotStore()) : c.outcomes);
      this.startSync();
    });
  }

  /** Makes a commit's new envelopes readable, then lets them be pushed. */
  private release(c: Committed): void {
    const items: { conv: string; seq: number }[] = [];
    c.chunk.forEach((p, i) => {
      const o = c.outcomes[i]!;
      if (isNew(o)) items.push({ conv: p.item.env.conv, seq: o.seq });
    });
    this.target.release(items);
    c.chunk.forEach((p, i) => {
      const o = c.outcomes[i]!;
      if (isNew(o)) p.stored(o);
    });
  }

  private noteCommit(size: number): void {
    this.stats.commits++;
    this.stats.envelopes += size;
    if (size > this.stats.maxBatch) this.stats.maxBatch = size;
  }
}

function isNew(o: CommitOutcome): o is AppendResult {
  return !(o instanceof UmbraError) && !o.duplicate;
}

function answer(chunk: readonly Pending[], outcomes: readonly CommitOutcome[]): void {
  for (let i = 0; i < chunk.length; i++) chunk[i]!.done(outcomes[i]!);
}

function couldNotStore(): UmbraError {
  return new UmbraError('internal', 'the relay could not store the message; send it again');
}
