// Deletes expired envelopes on a schedule, in short batches that yield to delivery between them,
// then checkpoints the WAL so the deleted ciphertext is gone from the files too
// (docs/PROTOCOL.md §Disappearing messages; docs/THREAT-MODEL.md §Deletion).
import type { OpenedDb } from './db.ts';
import type { Logger } from './log.ts';
import type { RelayStore } from './store.ts';

export interface SweeperOptions {
  intervalMs: number;
  /** Rows deleted per transaction; the event loop is free between batches. */
  batch: number;
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
}

export class Sweeper {
  readonly stats: SweeperStats = { swept: 0, pending: 0, sweeps: 0, lastSweepAt: null, lastSweepMs: 0, lastSweepDeleted: 0, lastCheckpointBusy: 0 };
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;
  private stopped = false;

  constructor(
    private readonly db: OpenedDb,
    private readonly store: RelayStore,
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
    for (;;) {
      if (this.stopped) break;
      const n = this.store.sweepExpired(this.o.batch);
      deleted += n;
      if (n < this.o.batch) break;
      // Let delivery run between batches.
      await new Promise((r) => setImmediate(r));
    }
    if (deleted > 0 && !this.stopped) this.checkpoint();
    const s = this.stats;
    s.swept += deleted;
    s.sweeps++;
    s.lastSweepAt = this.now();
    s.lastSweepMs = performance.now() - started;
    s.lastSweepDeleted = deleted;
    s.pending = this.store.expiredPending();
    if (deleted > 0) this.log.info({ event: 'sweep', deleted, pending: s.pending, ms: Math.round(s.lastSweepMs), checkpointBusy: s.lastCheckpointBusy }, 'expired envelopes deleted');
    return deleted;
  }

  /**
   * secure_delete zeroes freed pages in the database, but the WAL still holds the frames that
   * carried the ciphertext (and the deletions). TRUNCATE copies every frame back and empties the
   * WAL file; when a reader blocks it, the next sweep tries again.
   */
  private checkpoint(): void {
    const [row] = this.db.sqlite.pragma('wal_checkpoint(TRUNCATE)') as { busy: number; log: number; checkpointed: number }[];
    this.stats.lastCheckpointBusy = row?.busy ?? 0;
  }
}
