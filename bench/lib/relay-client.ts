// The parent's handle on a relay child process: fork, one request at a time, stop.
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { SweeperStats } from '../../server/sweeper.ts';
import { benchTmp, copyTemplate, type SeededTemplate } from './seed.ts';
import type { RelayStats, StartOptions, SystemName, ToChild, ToParent } from './relay-ipc.ts';

export class RelayProc {
  private queue: Promise<unknown> = Promise.resolve();
  private exited = false;

  private constructor(
    readonly system: SystemName,
    readonly port: number,
    readonly dataDir: string,
    private readonly child: ChildProcess,
  ) {
    child.on('exit', () => (this.exited = true));
  }

  /**
   * Forks the child and starts `system`: Umbra on a fresh copy of `template`, ws-sqlite on an
   * empty folder. `extraArgv`: node flags for the child (e.g. `--cpu-prof`).
   */
  static async start(
    system: SystemName,
    template: SeededTemplate | null,
    opts: Pick<StartOptions, 'sweep' | 'seedExpired' | 'traceGaps'> = {},
    extraArgv: string[] = [],
  ): Promise<RelayProc> {
    const dataDir = system === 'umbra' ? copyTemplate(template!) : fs.mkdtempSync(path.join(benchTmp(), `run-${system}-`));
    const entry = new URL('./relay-proc.js', import.meta.url);
    const child = fork(entry, [], { execArgv: ['--expose-gc', ...extraArgv, ...(process.env.BENCH_RELAY_ARGV?.split(' ').filter(Boolean) ?? [])], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const tmp = new RelayProc(system, 0, dataDir, child);
    const ready = await tmp.request({ t: 'start', system, dataDir, ...opts });
    if (ready.t !== 'ready') throw new Error(`relay ${system} did not start`);
    return new RelayProc(system, ready.port, dataDir, child);
  }

  /** Sends one request and waits for its answer (requests are queued, one at a time). */
  request(m: ToChild): Promise<ToParent> {
    const next = this.queue.then(
      () =>
        new Promise<ToParent>((resolve, reject) => {
          if (this.exited) return reject(new Error(`relay ${this.system} has exited`));
          const onMessage = (reply: unknown) => {
            cleanup();
            const r = reply as ToParent;
            if (r.t === 'failed') reject(new Error(`relay ${this.system}: ${r.message}`));
            else resolve(r);
          };
          const onExit = (code: number | null) => {
            cleanup();
            reject(new Error(`relay ${this.system} exited (${code}) before answering ${m.t}`));
          };
          const cleanup = () => {
            this.child.off('message', onMessage);
            this.child.off('exit', onExit);
          };
          this.child.on('message', onMessage);
          this.child.on('exit', onExit);
          this.child.send(m);
        }),
    );
    this.queue = next.catch(() => {});
    return next;
  }

  async stats(): Promise<RelayStats> {
    const r = await this.request({ t: 'stats' });
    if (r.t !== 'stats') throw new Error('unexpected reply to stats');
    return r.stats;
  }

  async resetStats(): Promise<void> {
    await this.request({ t: 'resetStats' });
  }

  async gc(): Promise<void> {
    await this.request({ t: 'gc' });
  }

  async sweeperStats(): Promise<SweeperStats | null> {
    const r = await this.request({ t: 'sweeperStats' });
    if (r.t !== 'sweeperStats') throw new Error('unexpected reply to sweeperStats');
    return r.stats;
  }

  /** Stops the system, waits for the child to exit (killing it after 10 s), removes the data folder. */
  async stop(): Promise<void> {
    if (!this.exited) {
      const exited = new Promise<void>((resolve) => (this.exited ? resolve() : this.child.once('exit', () => resolve())));
      await Promise.race([this.request({ t: 'stop' }).catch(() => {}), exited]);
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}
