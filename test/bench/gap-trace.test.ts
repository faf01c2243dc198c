// The bench's gap attribution (bench/lib/gap-trace.ts) on gaps whose cause is known: the thread
// computing, and the thread asleep. E-sweep reports it for its worst event-loop stall.
import { describe, expect, it } from 'vitest';
import { GAP_MS, GapTrace, STALL_TARGET_MS } from '../../bench/lib/gap-trace.ts';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe.runIf(process.platform === 'linux')('GapTrace', () => {
  it('a gap spent computing is counted as running; one spent asleep as neither running nor waiting', async () => {
    const trace = GapTrace.start()!;
    try {
      expect(trace).not.toBeNull();
      await tick();
      trace.reset();
      // Long enough that the counters' lag (the kernel updates a running thread's time at
      // scheduler ticks, 4-10 ms, so each end of a gap can be one tick stale) stays under 10 %.
      const busyUntil = performance.now() + 250;
      while (performance.now() < busyUntil);
      await tick();
      const busy = trace.reading();
      expect(busy.worst!.gapMs).toBeGreaterThanOrEqual(250);
      // A busy thread is on a CPU unless something else took it: most of the gap, here.
      expect(busy.worst!.runningMs + busy.worst!.waitingMs).toBeGreaterThan(busy.worst!.gapMs * 0.9);
      expect(busy.worst!.runningMs).toBeGreaterThan(20);
      expect(busy.count).toBeGreaterThanOrEqual(1);
      expect(busy.total.gapMs).toBeGreaterThanOrEqual(busy.worst!.gapMs);

      trace.reset();
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60);
      await tick();
      const asleep = trace.reading();
      expect(asleep.worst!.gapMs).toBeGreaterThanOrEqual(60);
      expect(asleep.worst!.runningMs + asleep.worst!.waitingMs).toBeLessThan(asleep.worst!.gapMs / 2);
      expect(GAP_MS).toBeLessThan(60);
    } finally {
      trace.stop();
    }
  });

  it('attributes to a gap the part of a reported span inside it, and nothing of one outside it', async () => {
    const trace = GapTrace.start()!;
    try {
      await tick();
      trace.reset();
      const t0 = performance.now();
      while (performance.now() < t0 + 60);
      // A 30 ms span inside the gap, and one well before it.
      trace.span(t0 + 10, 30);
      trace.span(t0 - 5_000, 30);
      await tick();
      const r = trace.reading();
      expect(r.worst!.gapMs).toBeGreaterThanOrEqual(60);
      expect(r.worst!.commitMs).toBeCloseTo(30, 5);
      expect(r.overTargetTotal.commitMs).toBeCloseTo(30, 5);
      expect(r.total.commitMs).toBeCloseTo(30, 5);
    } finally {
      trace.stop();
    }
  });

  it('counts the gaps over the stall target apart from the shorter ones', async () => {
    const trace = GapTrace.start()!;
    const busy = async (ms: number) => {
      await tick();
      trace.reset();
      const until = performance.now() + ms;
      while (performance.now() < until);
      await tick();
      return trace.reading();
    };
    try {
      const long = await busy(60);
      expect(long.overTarget).toBeGreaterThanOrEqual(1);
      expect(long.overTarget).toBeLessThanOrEqual(long.count);
      expect(long.overTargetTotal.gapMs).toBeGreaterThanOrEqual(60);
      expect(long.overTargetTotal.gapMs).toBeLessThanOrEqual(long.total.gapMs);
      // A 12 ms gap is recorded (over GAP_MS) and over the target only if the machine stretched it past 20 ms.
      const short = await busy(12);
      expect(GAP_MS).toBeLessThan(12);
      expect(short.count).toBeGreaterThanOrEqual(1);
      expect(short.overTarget > 0).toBe(short.worst!.gapMs > STALL_TARGET_MS);
    } finally {
      trace.stop();
    }
  });
});
