// Deletes expired envelopes on a schedule, in short batches that yield to delivery between them,
// then checkpoints the WAL so the deleted ciphertext is gone from the files too
// (docs/PROTOCOL.md §Disappearing messages; docs/THREAT-MODEL.md §Deletion). The batches run on
// the checkpoint thread's connection under the write lock it shares with group commits, so the
// relay's event loop neither deletes nor waits for the lock; only if that thread is gone do they
// run here.
import type { Checkpointer, SweepBatchResult } from './checkpointer.ts';
import type { Logger } from './log.ts';
import type { RelayStore } from './store.ts';

export interface SweeperOptions {
  intervalMs: number;
  /** Most rows deleted per transaction; the event loop is free between batches. */
  batch: number;
  /**
   * Time one batch may hold the write lock (ms). On the checkpoint thread a batch starts no new
   * chunk past it, and ends at the next chunk as soon as a relay write waits for the lock. On the
   * relay's own connection (that thread gone) a batch that takes longer halves the next one, a
   * quick one doubles it again up to `batch`.
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
  /** Rows in the last batch, and the longest batch so far (ms). */
  batchSize: number;
  longestBatchMs: number;
  /** Thread batches that ended early because a relay write was waiting for the lock. */
  yielded: number;
  /** Batches run on the checkpoint thread (the normal case) and on the relay's own connection (that thread gone). */
  threadBatches: number;
  relayBatches: number;
}

const MIN_BATCH = 16;
/**
 * Keys a thread batch deletes between two looks whether a relay write is waiting, so this bounds
 * how long a delivery waits for a sweep: one chunk of deletions plus the commit of what the batch
 * deleted so far (deliveries waited 0.31 ms on average in E-sweep). Smaller chunks make smaller
 * transactions, which rewrite the same pages more often.
 */
export const SWEEP_CHUNK = 32;
/**
 * Expired keys the thread reads at a time, outside the write lock, and deletes in key order: a
 * conversation's expired rows sit together on its pages, so a page is rewritten once for many of
 * its rows instead of once for each (bench/README.md, E-sweep).
 */
export const SWEEP_WINDOW = 8_192;

export class Sweeper {
  readonly stats: SweeperStats = { swept: 0, pending: 0, sweeps: 0, lastSweepAt: null, lastSweepMs: 0, lastSweepDeleted: 0, lastCheckpointBusy: 0, batchSize: 0, longestBatchMs: 0, yielded: 0, threadBatches: 0, relayBatches: 0 };
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
    // On the relay's connection, start small: the first batch of a backlog must not stall
    // delivery either.
    let relaySize = Math.min(this.o.batch, 128);
    for (;;) {
      if (this.stopped) break;
      const r = await this.batch(relaySize);
      deleted += r.deleted;
      s.batchSize = r.deleted;
      if (r.ms > s.longestBatchMs) s.longestBatchMs = r.ms;
      if (r.yielded) s.yielded++;
      if (r.onRelay) {
        if (r.ms > this.o.maxBatchMs) relaySize = Math.max(MIN_BATCH, Math.floor(relaySize / 2));
        else if (r.ms < this.o.maxBatchMs / 2) relaySize = Math.min(this.o.batch, relaySize * 2);
      }
      this.checkpointer.guard();
      if (r.exhausted) break;
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

  /** One batch on the checkpoint thread, or (`relaySize` rows) here if that thread is gone. */
  private async batch(relaySize: number): Promise<SweepBatchResult & { onRelay: boolean }> {
    if (this.checkpointer.canSweep) {
      try {
        const r = await this.checkpointer.sweepBatch(this.now(), { limit: this.o.batch, chunk: SWEEP_CHUNK, window: SWEEP_WINDOW, maxMs: this.o.maxBatchMs });
        this.stats.threadBatches++;
        return { ...r, onRelay: false };
      } catch (err) {
        if (this.stopped || this.checkpointer.canSweep) throw err;
        // The thread died during the batch: its transaction rolled back; carry on here.
      }
    }
    const t0 = performance.now();
    const deleted = this.store.sweepExpired(relaySize);
    this.stats.relayBatches++;
    return { deleted, exhausted: deleted < relaySize, yielded: false, ms: performance.now() - t0, onRelay: true };
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
