// Turns at the write lock for the relay's writes other than envelope commits (HTTP requests that
// write, housekeeping). The checkpoint thread holds the lock while it sweeps or restarts the WAL
// (server/checkpointer.ts); a write that went ahead then would sleep in SQLite's busy handler on
// the event loop and stall every delivery. Instead it waits here, off the event loop, and runs
// once the relay holds the lock; the group commits' own turns (server/ws/commit-queue.ts) work the
// same way. docs/PROTOCOL.md §Checkpoints.
import type { WriteGate } from './ws/commit-queue.ts';

/** How often a waiting write looks at the lock if the thread's "unlocked" word went missing (ms). */
const RETRY_MS = 2;

export interface WriteTurnStats {
  /** Writes that found the lock taken and waited for it. */
  waited: number;
  /** The longest such wait (ms). */
  longestWaitMs: number;
}

export class WriteTurns {
  private readonly waiters: (() => void)[] = [];
  private retry: NodeJS.Timeout | null = null;
  readonly stats: WriteTurnStats = { waited: 0, longestWaitMs: 0 };

  /**
   * @param gate the lock shared with the checkpoint thread; null when there is none (every turn is granted at once)
   * @param released told after each turn, so a group commit that found the lock taken goes next
   */
  constructor(
    private readonly gate: WriteGate | null,
    private readonly released: () => void = () => {},
  ) {}

  /**
   * Runs `write` holding the lock, waiting for it without blocking. `write` must not wait on I/O
   * while it holds the lock (everything it awaits must already be settled), or commits wait too.
   */
  async run<T>(write: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await write();
    } finally {
      this.gate?.release();
      this.released();
      this.wake();
    }
  }

  /** The thread let go of the lock: the first waiter tries again. */
  unlocked(): void {
    this.wake();
  }

  private acquire(): Promise<void> {
    if (!this.gate || (this.waiters.length === 0 && this.gate.tryAcquire())) return Promise.resolve();
    const since = performance.now();
    this.stats.waited++;
    return new Promise<void>((resolve) => {
      this.waiters.push(() => {
        const ms = performance.now() - since;
        if (ms > this.stats.longestWaitMs) this.stats.longestWaitMs = ms;
        resolve();
      });
      this.schedule();
    });
  }

  /** Grants the lock to the first waiter if it is free, in arrival order. */
  private wake(): void {
    if (this.waiters.length === 0 || !this.gate) return;
    if (!this.gate.tryAcquire()) return this.schedule();
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    this.waiters.shift()!();
  }

  private schedule(): void {
    this.retry ??= setTimeout(() => {
      this.retry = null;
      this.wake();
    }, RETRY_MS);
  }
}
