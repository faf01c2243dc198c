// A process that does nothing but watch its own event loop (1 ms resolution), beside the system
// under test. What it sees is the machine's share of a stall: preemption by the load generator,
// other threads or the hypervisor, which no relay design can remove. Forked per measured window;
// the parent's side is `StallProbe` below.
import { fork, type ChildProcess } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { GapTrace, type Gap } from './gap-trace.ts';

export interface ProbeReading {
  maxMs: number;
  p99Ms: number;
  /**
   * The probe's worst gap and what its thread did in it (Linux): an idle process that neither ran
   * nor waited for a CPU through a gap was woken late (its timer, or the CPU it sleeps on, was
   * late), which no design of the system under test can change.
   */
  worstGap: Gap | null;
  /** How many of the probe's gaps were over the stall target (null off Linux). */
  gapsOverTarget: number | null;
}

type ProbeRequest = { t: 'reset' } | { t: 'read' } | { t: 'stop' };
type ProbeReply = { t: 'ready' } | { t: 'reset' } | ({ t: 'read' } & ProbeReading);

function child(): void {
  const eld = monitorEventLoopDelay({ resolution: 1 });
  eld.enable();
  const gaps = GapTrace.start();
  process.on('message', (m: ProbeRequest) => {
    if (m.t === 'reset') {
      eld.reset();
      gaps?.reset();
      process.send!({ t: 'reset' } satisfies ProbeReply);
    } else if (m.t === 'read') {
      const g = gaps?.reading();
      process.send!({ t: 'read', maxMs: eld.max / 1e6, p99Ms: eld.percentile(99) / 1e6, worstGap: g?.worst ?? null, gapsOverTarget: g?.overTarget ?? null } satisfies ProbeReply);
    } else {
      eld.disable();
      gaps?.stop();
      process.disconnect();
    }
  });
  process.send!({ t: 'ready' } satisfies ProbeReply);
}

export class StallProbe {
  private constructor(private readonly proc: ChildProcess) {}

  static async start(): Promise<StallProbe> {
    const proc = fork(new URL(import.meta.url), ['--stall-probe-child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const probe = new StallProbe(proc);
    await probe.next('ready');
    return probe;
  }

  /** Starts the window over (at the same moment as the relay's counters). */
  async reset(): Promise<void> {
    this.proc.send({ t: 'reset' } satisfies ProbeRequest);
    await this.next('reset');
  }

  async read(): Promise<ProbeReading> {
    this.proc.send({ t: 'read' } satisfies ProbeRequest);
    const r = await this.next('read');
    return { maxMs: r.maxMs, p99Ms: r.p99Ms, worstGap: r.worstGap, gapsOverTarget: r.gapsOverTarget };
  }

  stop(): void {
    if (this.proc.connected) this.proc.send({ t: 'stop' } satisfies ProbeRequest);
  }

  private next<T extends ProbeReply['t']>(t: T): Promise<Extract<ProbeReply, { t: T }>> {
    return new Promise((resolve, reject) => {
      const onMessage = (m: ProbeReply) => {
        if (m.t !== t) return;
        this.proc.off('exit', onExit);
        this.proc.off('message', onMessage);
        resolve(m as Extract<ProbeReply, { t: T }>);
      };
      const onExit = (code: number | null) => {
        this.proc.off('message', onMessage);
        reject(new Error(`stall probe exited (${code}) before answering ${t}`));
      };
      this.proc.on('message', onMessage);
      this.proc.once('exit', onExit);
    });
  }
}

if (process.argv.includes('--stall-probe-child')) child();
