// Group commit for the delivery path: every envelope that arrives in one turn of the event loop is
// stored in one SQLite transaction (one fsync), and only then acknowledged and pushed
// (docs/PROTOCOL.md §Delivery). Nothing is acknowledged or forwarded before its commit, so the
// delivery promise is the same as with one transaction per envelope; what changes is that a busy
// relay pays one fsync per turn instead of one per message.
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
}

interface Pending {
  item: NewEnvelope;
  done(outcome: CommitOutcome): void;
}

export class CommitQueue {
  private queue: Pending[] = [];
  private scheduled = false;
  readonly stats: CommitQueueStats = { commits: 0, envelopes: 0, maxBatch: 0, failedCommits: 0 };

  /**
   * @param commit stores a batch in one transaction (RelayStore.appendEnvelopes)
   * @param maxBatch envelopes per transaction; a longer queue is committed in several
   * @param onFailure told when a whole transaction failed (logged by the hub)
   * @param onCommitted runs after each committed transaction (the WAL bound check)
   */
  constructor(
    private readonly commit: (batch: readonly NewEnvelope[]) => CommitOutcome[],
    private readonly maxBatch: number,
    private readonly onFailure: (err: Error, size: number) => void,
    private readonly onCommitted: () => void = () => {},
  ) {}

  /** Queues an envelope; `done` runs once it is committed (or refused), never before. */
  enqueue(item: NewEnvelope, done: (outcome: CommitOutcome) => void): void {
    this.queue.push({ item, done });
    if (!this.scheduled) {
      this.scheduled = true;
      // setImmediate runs after the poll phase, so every frame read in this turn joins the batch.
      setImmediate(() => this.flush());
    }
  }

  /** Commits everything queued now; called by the scheduler, and by close() so nothing waits forever. */
  flush(): void {
    this.scheduled = false;
    while (this.queue.length) {
      const chunk = this.queue.splice(0, this.maxBatch);
      let outcomes: CommitOutcome[];
      try {
        outcomes = this.commit(chunk.map((p) => p.item));
        this.noteCommit(chunk.length);
        this.onCommitted();
      } catch (err) {
        this.stats.failedCommits++;
        this.onFailure(err as Error, chunk.length);
        const refused = new UmbraError('internal', 'the relay could not store the message; send it again');
        outcomes = chunk.map(() => refused);
      }
      for (let i = 0; i < chunk.length; i++) chunk[i]!.done(outcomes[i]!);
    }
  }

  private noteCommit(size: number): void {
    this.stats.commits++;
    this.stats.envelopes += size;
    if (size > this.stats.maxBatch) this.stats.maxBatch = size;
  }
}
