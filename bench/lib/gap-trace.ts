// What the relay's main thread was doing while its event loop stalled: for every gap of more than
// GAP_MS between two ticks of a 1 ms timer, how long the thread ran on a CPU and how long it was
// ready to run but waiting for one, from the kernel's per-thread scheduler counters
// (/proc/self/task/<tid>/schedstat: time on CPU, time waiting on a run queue, in ns); the rest of
// a gap the thread slept (blocked in a system call). Time spent in garbage collection during the
// gap comes from the gc performance entries, and time inside the relay's group commits (SQLite on
// the event loop) from the spans the relay reports (`span`). monitorEventLoopDelay says how long
// the worst stall was; this says whose it was. The kernel brings a running thread's counters up
// to date at scheduler ticks (4 ms at HZ=250), so either end of a gap can be one tick stale: read
// running and waiting to within a tick or two, not to the millisecond. Linux only: elsewhere `GapTrace.start()` returns null.
import fs from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';

/** Gaps longer than this are recorded (ms). */
export const GAP_MS = 8;
/** The benchmark's target for the worst stall (ms): gaps over it are counted on their own. */
export const STALL_TARGET_MS = 20;

export interface Gap {
  /** The gap between two ticks (ms). */
  gapMs: number;
  /** Of which the thread ran on a CPU (its own work, or time the CPU under it was taken away unseen). */
  runningMs: number;
  /** Of which it was ready to run and waited for a CPU (other threads or processes had them). */
  waitingMs: number;
  /** Garbage collection during the gap (ms). */
  gcMs: number;
  /** Time inside reported spans (the relay's group commits) during the gap (ms). */
  commitMs: number;
}

export interface GapReading {
  /** The longest gap in the window (of any length), with what the thread did in it. */
  worst: Gap | null;
  /** All gaps over GAP_MS in the window: how many, and their sums. */
  count: number;
  total: Gap;
  /** Of those, the gaps over STALL_TARGET_MS: how often the target was missed, not only by how much, and their sums. */
  overTarget: number;
  overTargetTotal: Gap;
}

/** Intervals (performance.now() ms) kept only as long as a gap still to be seen can overlap them. */
class Spans {
  private readonly list: { start: number; end: number }[] = [];

  add(start: number, end: number): void {
    this.list.push({ start, end });
    if (this.list.length > 4096) this.list.splice(0, 2048);
  }

  /** How much of [from, to] the spans cover (they do not overlap one another). */
  within(from: number, to: number): number {
    let ms = 0;
    for (const g of this.list) ms += Math.max(0, Math.min(g.end, to) - Math.max(g.start, from));
    return ms;
  }
}

function sum(gaps: readonly Gap[]): Gap {
  const total: Gap = { gapMs: 0, runningMs: 0, waitingMs: 0, gcMs: 0, commitMs: 0 };
  for (const g of gaps) {
    total.gapMs += g.gapMs;
    total.runningMs += g.runningMs;
    total.waitingMs += g.waitingMs;
    total.gcMs += g.gcMs;
    total.commitMs += g.commitMs;
  }
  return total;
}

export class GapTrace {
  private gaps: Gap[] = [];
  private worst: Gap | null = null;
  private readonly gcs = new Spans();
  private readonly commits = new Spans();
  private readonly timer: NodeJS.Timeout;
  private readonly observer: PerformanceObserver;

  private constructor(private readonly fd: number) {
    const buf = Buffer.alloc(96);
    const read = (): [number, number] => {
      const n = fs.readSync(fd, buf, 0, buf.length, 0);
      const [run, wait] = buf.toString('latin1', 0, n).split(' ');
      return [Number(run) / 1e6, Number(wait) / 1e6];
    };
    this.observer = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) this.gcs.add(e.startTime, e.startTime + e.duration);
    });
    this.observer.observe({ entryTypes: ['gc'] });
    let last = performance.now();
    let [run0, wait0] = read();
    this.timer = setInterval(() => {
      const now = performance.now();
      const [run, wait] = read();
      if (now - last > GAP_MS || now - last > (this.worst?.gapMs ?? 0)) {
        const gap = { gapMs: now - last, runningMs: run - run0, waitingMs: wait - wait0, gcMs: this.gcs.within(last, now), commitMs: this.commits.within(last, now) };
        if (gap.gapMs > GAP_MS) this.gaps.push(gap);
        if (gap.gapMs > (this.worst?.gapMs ?? 0)) this.worst = gap;
      }
      last = now;
      run0 = run;
      wait0 = wait;
    }, 1);
  }

  /** Starts tracing the calling thread, or returns null where the kernel has no schedstat for it. */
  static start(): GapTrace | null {
    try {
      return new GapTrace(fs.openSync(`/proc/self/task/${process.pid}/schedstat`, 'r'));
    } catch {
      return null;
    }
  }

  /** Notes a span of the thread's own work (a group commit: performance.now() at its start, and its length). */
  span(start: number, ms: number): void {
    this.commits.add(start, start + ms);
  }

  reset(): void {
    this.gaps = [];
    this.worst = null;
  }

  reading(): GapReading {
    const over = this.gaps.filter((g) => g.gapMs > STALL_TARGET_MS);
    return { worst: this.worst, count: this.gaps.length, total: sum(this.gaps), overTarget: over.length, overTargetTotal: sum(over) };
  }

  stop(): void {
    clearInterval(this.timer);
    this.observer.disconnect();
    fs.closeSync(this.fd);
  }
}
