// Turns at the write lock for every write on the relay's event loop: group commits
// (server/ws/commit-queue.ts), HTTP requests that write, housekeeping. The checkpoint thread holds
// the lock while it sweeps or restarts the WAL (server/checkpointer.ts); a write that went ahead
// then would sleep in SQLite's busy handler on the event loop and stall every delivery. Instead it
// waits here, off the event loop, and runs once the relay holds the lock, in arrival order.
// docs/PROTOCOL.md §Checkpoints.

/** The write lock shared with the checkpoint thread (server/checkpointer.ts WriteLock). */
export interface WriteGate {
  tryAcquire(): boolean;
  /** Blocks until the lock is free; only when closing. */
  acquire(): void;
  release(): void;
}

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
  /** The relay holds the lock for a turn (granted, maybe not yet running). */
  private held = false;
  readonly stats: WriteTurnStats = { waited: 0, longestWaitMs: 0 };

  /** @param gate the lock shared with the checkpoint thread; null when there is none (every turn is granted at once) */
  constructor(private readonly gate: WriteGate | null) {}

  /**
   * Runs `write` holding the lock, waiting for it without blocking. `write` must not wait on I/O
   * while it holds the lock (everything it awaits must already be settled), or commits wait too.
   */
  async run<T>(write: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await write();
    } finally {
      this.letGo();
    }
  }

  /**
   * Runs `write` holding the lock, blocking the event loop while the thread has it; only for
   * closing, so that nothing queued waits forever. Inside a turn already granted it just runs.
   */
  runBlocking<T>(write: () => T): T {
    if (this.held || !this.gate) return write();
    this.gate.acquire();
    this.held = true;
    try {
      return write();
    } finally {
      this.letGo();
    }
  }

  /** The thread let go of the lock: the first waiter tries again. */
  unlocked(): void {
    this.wake();
  }

  private acquire(): Promise<void> {
    if (!this.gate) return Promise.resolve();
    if (this.waiters.length === 0 && !this.held && this.gate.tryAcquire()) {
      this.held = true;
      return Promise.resolve();
    }
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

  private letGo(): void {
    if (!this.gate) return;
    this.held = false;
    this.gate.release();
    this.wake();
  }

  /** Grants the lock to the first waiter if it is free, in arrival order. */
  private wake(): void {
    if (this.waiters.length === 0 || !this.gate || this.held) return;
    if (!this.gate.tryAcquire()) return this.schedule();
    this.held = true;
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
