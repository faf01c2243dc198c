// Deletes expired envelopes on a schedule, in short batches that yield to delivery between them,
// then checkpoints the WAL so the deleted ciphertext is gone from the files too
// (docs/PROTOCOL.md §Disappearing messages; docs/THREAT-MODEL.md §Deletion). The batches run on
// the checkpoint thread's connection under the write lock it shares with group commits, so the
// relay's event loop neither deletes nor waits for the lock; only if that thread is gone do they
// run here.
import type { Checkpointer } from './checkpointer.ts';
import type { Logger } from './log.ts';
import type { RelayStore } from './store.ts';

export interface SweeperOptions {
  intervalMs: number;
  /** Most rows deleted per transaction; the event loop is free between batches. */
  batch: number;
  /**
   * Time one batch may hold the write lock, and so delay delivery (ms): a batch that takes longer
   * halves the next one, a quick one doubles it again up to `batch`.
   */
  maxBatchMs: number;
}

export interface SweeperStats {
  /** Envelopes deleted since the relay started. */
  swept: number;
  /** Expired envelopes waiting for the next sweep (reads skip them already). */
  pending: number;
  sweeps: number;
  lastSweepAt: number | null;
  lastSweepMs: number;
  lastSweepDeleted: number;
  /** Pages the last checkpoint could not copy back because a reader held them (0 is the normal case). */
  lastCheckpointBusy: number;
  /** The batch size the sweeper settled on, and the longest batch so far (ms). */
  batchSize: number;
  longestBatchMs: number;
  /** Batches run on the checkpoint thread (the normal case) and on the relay's own connection (that thread gone). */
  threadBatches: number;
  relayBatches: number;
}

const MIN_BATCH = 16;

export class Sweeper {
  readonly stats: SweeperStats = { swept: 0, pending: 0, sweeps: 0, lastSweepAt: null, lastSweepMs: 0, lastSweepDeleted: 0, lastCheckpointBusy: 0, batchSize: 0, longestBatchMs: 0, threadBatches: 0, relayBatches: 0 };
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;
  private stopped = false;

  constructor(
    private readonly store: RelayStore,
    private readonly checkpointer: Checkpointer,
    private readonly log: Logger,
    private readonly o: SweeperOptions,
    private readonly now: () => number,
  ) {}

  start(): void {
    if (this.timer || this.o.intervalMs <= 0) return;
    this.timer = setInterval(() => void this.sweep().catch((err) => this.log.error({ event: 'sweep_failed', message: (err as Error).message }, 'sweep failed')), this.o.intervalMs);
    this.timer.unref();
  }

  /** Runs one sweep now (or joins the one running); resolves with how many envelopes it deleted. */
  sweep(): Promise<number> {
    this.running ??= this.run().finally(() => (this.running = null));
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => {});
  }

  private async run(): Promise<number> {
    const started = performance.now();
    let deleted = 0;
    const s = this.stats;
    // Start small: the first batch of a backlog must not stall delivery either.
    if (s.batchSize === 0) s.batchSize = Math.min(this.o.batch, 128);
    for (;;) {
      if (this.stopped) break;
      const size = s.batchSize;
      const { deleted: n, ms } = await this.batch(size);
      deleted += n;
      if (ms > s.longestBatchMs) s.longestBatchMs = ms;
      if (ms > this.o.maxBatchMs) s.batchSize = Math.max(MIN_BATCH, Math.floor(size / 2));
      else if (ms < this.o.maxBatchMs / 2) s.batchSize = Math.min(this.o.batch, size * 2);
      this.checkpointer.guard();
      if (n < size) break;
      // Let delivery run between batches.
      await new Promise((r) => setImmediate(r));
    }
    if (deleted > 0 && !this.stopped) await this.checkpoint();
    s.swept += deleted;
    s.sweeps++;
    s.lastSweepAt = this.now();
    s.lastSweepMs = performance.now() - started;
    s.lastSweepDeleted = deleted;
    s.pending = this.store.expiredPending();
    if (deleted > 0) this.log.info({ event: 'sweep', deleted, pending: s.pending, ms: Math.round(s.lastSweepMs), checkpointBusy: s.lastCheckpointBusy }, 'expired envelopes deleted');
    return deleted;
  }

  /** One batch on the checkpoint thread, or here if that thread is gone. */
  private async batch(size: number): Promise<{ deleted: number; ms: number }> {
    if (this.checkpointer.canSweep) {
      try {
        const r = await this.checkpointer.sweepBatch(this.now(), size);
        this.stats.threadBatches++;
        return r;
      } catch (err) {
        if (this.stopped || this.checkpointer.canSweep) throw err;
        // The thread died during the batch: its transaction rolled back; carry on here.
      }
    }
    const t0 = performance.now();
    const deleted = this.store.sweepExpired(size);
    this.stats.relayBatches++;
    return { deleted, ms: performance.now() - t0 };
  }

  /**
   * secure_delete zeroes freed pages in the database, but the WAL still holds the frames that
   * carried the ciphertext (and the deletions). TRUNCATE copies every frame back and empties the
   * WAL file; when a reader blocks it, the next sweep tries again.
   */
  private async checkpoint(): Promise<void> {
    const row = await this.checkpointer.truncate();
    this.stats.lastCheckpointBusy = row.busy;
  }
}
