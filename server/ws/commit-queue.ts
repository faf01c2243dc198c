// Group commit for the delivery path (docs/PROTOCOL.md §Delivery): every envelope that arrives in
// one turn of the event loop is stored in one SQLite transaction, the WAL is then fsynced off the
// event loop, and only after that are the envelopes acknowledged and pushed. Nothing is
// acknowledged, forwarded or served before it is on disk, so the delivery promise is the one of a
// synchronous = FULL commit per envelope; what changes is that the relay pays one fsync for many
// envelopes and never waits for the disk on its event loop.
import { UmbraError } from '../../shared/index.ts';
import type { AppendResult, NewEnvelope } from '../store.ts';

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
}

interface Pending {
  item: NewEnvelope;
  done(outcome: CommitOutcome): void;
}

/** A committed transaction whose WAL frames are not known to be on disk yet. */
interface Committed {
  chunk: Pending[];
  outcomes: CommitOutcome[];
}

/** What the queue needs of the store. */
export interface CommitTarget {
  /** Stores a batch in one transaction without waiting for the disk (RelayStore.appendEnvelopes with deferSync). */
  commit(batch: readonly NewEnvelope[]): CommitOutcome[];
  /** fsyncs the WAL off the event loop (OpenedDb.syncWal). */
  sync(done: (err: Error | null) => void): void;
  /** The envelopes of these transactions are on disk: reads may serve them (RelayStore.markSynced). */
  synced(items: readonly { conv: string; seq: number }[]): void;
}

export class CommitQueue {
  private queue: Pending[] = [];
  private scheduled = false;
  private syncing = false;
  private awaitingSync: Committed[] = [];
  /** How many holders (the checkpointer, the sweeper) are holding commits back; commits run at 0. */
  private pauses = 0;
  readonly stats: CommitQueueStats = { commits: 0, envelopes: 0, maxBatch: 0, failedCommits: 0, syncs: 0 };

  /**
   * @param target the store and the WAL sync
   * @param maxBatch envelopes per transaction; a longer queue is committed in several
   * @param onFailure told when a whole transaction or a sync failed (logged by the hub)
   * @param onCommitted runs after each committed transaction (the WAL bound check)
   */
  constructor(
    private readonly target: CommitTarget,
    private readonly maxBatch: number,
    private readonly onFailure: (err: Error, size: number) => void,
    private readonly onCommitted: () => void = () => {},
  ) {}

  /** Queues an envelope; `done` runs once it is committed and on disk (or refused), never before. */
  enqueue(item: NewEnvelope, done: (outcome: CommitOutcome) => void): void {
    this.queue.push({ item, done });
    if (!this.scheduled) {
      this.scheduled = true;
      // setImmediate runs after the poll phase, so every frame read in this turn joins the batch.
      setImmediate(() => this.flush());
    }
  }

  /**
   * Holds commits back (envelopes keep queueing, the event loop keeps running) until the matching
   * `resume`: the checkpointer holds them so the WAL can start over at the next commit, the sweeper
   * while its thread deletes a batch (server/checkpointer.ts, server/sweeper.ts). Holds nest.
   */
  pause(): void {
    this.pauses++;
  }

  resume(): void {
    if (this.pauses === 0) return;
    this.pauses--;
    if (this.pauses === 0 && this.queue.length && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Commits everything queued now; called by the scheduler, and by close() (with `force`) so nothing waits forever. */
  flush(force = false): void {
    this.scheduled = false;
    if (this.pauses > 0 && !force) return;
    while (this.queue.length) {
      const chunk = this.queue.splice(0, this.maxBatch);
      try {
        const outcomes = this.target.commit(chunk.map((p) => p.item));
        this.noteCommit(chunk.length);
        this.onCommitted();
        this.awaitingSync.push({ chunk, outcomes });
      } catch (err) {
        this.stats.failedCommits++;
        this.onFailure(err as Error, chunk.length);
        answer(chunk, chunk.map(() => couldNotStore()));
      }
    }
    this.startSync();
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
      const stored: { conv: string; seq: number }[] = [];
      for (const c of group) {
        c.chunk.forEach((p, i) => {
          const o = c.outcomes[i]!;
          if (!(o instanceof UmbraError) && !o.duplicate) stored.push({ conv: p.item.env.conv, seq: o.seq });
        });
      }
      // Readable either way: if the sync failed the rows are still committed, and a sender's
      // retry (same id, same bytes) is answered with the same sequence number.
      this.target.synced(stored);
      if (err) this.onFailure(err, stored.length);
      for (const c of group) answer(c.chunk, err ? c.chunk.map(() => couldNotStore()) : c.outcomes);
      this.startSync();
    });
  }

  private noteCommit(size: number): void {
    this.stats.commits++;
    this.stats.envelopes += size;
    if (size > this.stats.maxBatch) this.stats.maxBatch = size;
  }
}

function answer(chunk: readonly Pending[], outcomes: readonly CommitOutcome[]): void {
  for (let i = 0; i < chunk.length; i++) chunk[i]!.done(outcomes[i]!);
}

function couldNotStore(): UmbraError {
  return new UmbraError('internal', 'the relay could not store the message; send it again');
}
