// The load generator: a pool of worker threads (bench/load/worker.ts) that connect as seeded users,
// pre-seal their Umbra envelopes once, and then drive any number of timed runs against whichever
// system listens on the port given. Results are merged here across workers.
import crypto from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { Histogram } from '../lib/hist.ts';
import type { SystemName } from '../lib/relay-ipc.ts';
import type { SeedManifest } from '../lib/seed.ts';
import type { FromWorker, RunParams, ToWorker, WorkerInit, WorkerResult } from './protocol.ts';

export interface PoolOptions {
  manifest: SeedManifest;
  /** User indexes to connect as, one connection each. */
  users: number[];
  workers?: number;
  /** Umbra envelopes pre-sealed per connection (the most one connection can send in a run). */
  preseal: number;
  /** Send-time slots per sender (must exceed the messages a sender can have in the air). */
  ring?: number;
}

export type LoadSpec = { warmupMs: number; timedMs: number; verifyEvery?: number } & (
  | { mode: 'rate'; /** Messages per second in total, spread evenly over the connections. */ ratePerSec: number }
  | { mode: 'sat'; /** Messages each connection keeps in flight. */ inflight: number; maxRatePerConn?: number }
);

export interface LoadResult {
  /** Deliveries to receivers other than the sender, per second of the timed window. */
  deliveredPerSec: number;
  sentPerSec: number;
  /** Acks (Umbra) or own echoes (baselines) per second. */
  completedPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
  deliveries: number;
  errors: number;
  errorKinds: Record<string, number>;
  verified: number;
  exhaustedSenders: number;
  capWaits: number;
  /** Event-loop utilisation of each generator thread during the timed window. */
  elu: number[];
  /** Some generator thread was over 90 % busy: the figure may measure the generator, not the relay. */
  generatorBound: boolean;
}

const hr = process.hrtime();
const offset = hr[0] * 1e3 + hr[1] / 1e6 - performance.now();
/** The same monotonic clock the workers use. */
export const hrNow = (): number => performance.now() + offset;

export class LoadPool {
  private constructor(
    private readonly workers: Worker[],
    private readonly sizes: number[],
    /** Bytes of Umbra's `env` push for one of these messages: the baselines' frame size. */
    readonly pushFrameBytes: number,
    readonly sealMs: number,
  ) {}

  static async create(o: PoolOptions): Promise<LoadPool> {
    const count = Math.max(1, Math.min(o.workers ?? 2, o.users.length));
    const ring = o.ring ?? 1024;
    const sendTimes = new SharedArrayBuffer(8 * o.manifest.users.length * ring);
    const roomOfUser = new Array<number>(o.manifest.users.length).fill(-1);
    o.manifest.rooms.forEach((r, i) => r.members.forEach((u) => (roomOfUser[u] = i)));
    const runBytes = crypto.randomBytes(8).toString('base64url');
    const workers: Worker[] = [];
    const sizes: number[] = [];
    for (let w = 0; w < count; w++) {
      const users = o.users.filter((_, i) => i % count === w);
      sizes.push(users.length);
      const init: WorkerInit = { workerIndex: w, manifest: o.manifest, users, roomOfUser, sendTimes, ring, preseal: o.preseal, runBytes };
      workers.push(new Worker(new URL('./worker.js', import.meta.url), { workerData: init }));
    }
    const pool = new LoadPool(workers, sizes, 0, 0);
    const inited = await pool.all(null, 'inited');
    const push = Math.max(...inited.map((m) => m.pushFrameBytes));
    return new LoadPool(workers, sizes, push, Math.max(...inited.map((m) => m.sealMs)));
  }

  /** Sends `m` (or nothing) to every worker and waits for each one's reply of type `t`. */
  private all<T extends FromWorker['t']>(m: ToWorker | ((w: number) => ToWorker) | null, t: T): Promise<Extract<FromWorker, { t: T }>[]> {
    return Promise.all(
      this.workers.map(
        (worker, w) =>
          new Promise<Extract<FromWorker, { t: T }>>((resolve, reject) => {
            const onMessage = (reply: FromWorker) => {
              cleanup();
              if (reply.t === 'failed') reject(new Error(`load worker ${w}: ${reply.message}`));
              else if (reply.t !== t) reject(new Error(`load worker ${w} answered ${reply.t}, expected ${t}`));
              else resolve(reply as Extract<FromWorker, { t: T }>);
            };
            const onError = (err: Error) => {
              cleanup();
              reject(err);
            };
            const cleanup = () => {
              worker.off('message', onMessage);
              worker.off('error', onError);
            };
            worker.on('message', onMessage);
            worker.on('error', onError);
            if (m) worker.postMessage(typeof m === 'function' ? m(w) : m);
          }),
      ),
    );
  }

  /** Opens every connection (Umbra: and says hello). */
  async connect(system: SystemName, port: number): Promise<{ ok: number; failed: number; ms: number; errorKinds: Record<string, number> }> {
    const r = await this.all({ t: 'connect', system, port }, 'connected');
    const errorKinds: Record<string, number> = {};
    for (const x of r) for (const [k, v] of Object.entries(x.errorKinds)) errorKinds[k] = (errorKinds[k] ?? 0) + v;
    return { ok: sum(r.map((x) => x.ok)), failed: sum(r.map((x) => x.failed)), ms: Math.max(...r.map((x) => x.ms)), errorKinds };
  }

  /** One timed phase on the open connections. */
  async run(spec: LoadSpec): Promise<LoadResult> {
    const total = sum(this.sizes);
    const startAt = hrNow() + 100;
    const base = { startAt, warmupMs: spec.warmupMs, timedMs: spec.timedMs, frameBytes: this.pushFrameBytes, verifyEvery: spec.verifyEvery ?? 1000 };
    const results = await this.all(
      (w): ToWorker => {
        const p: RunParams =
          spec.mode === 'rate'
            ? { ...base, mode: 'rate', ratePerSec: (spec.ratePerSec * this.sizes[w]!) / total }
            : { ...base, mode: 'sat', inflight: spec.inflight, maxRatePerConn: spec.maxRatePerConn ?? 0 };
        return { t: 'run', ...p };
      },
      'result',
    );
    return merge(results, spec.timedMs / 1000);
  }

  async disconnect(): Promise<void> {
    await this.all({ t: 'disconnect' }, 'disconnected');
  }

  async close(): Promise<void> {
    await Promise.all(
      this.workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            w.once('exit', () => resolve());
            w.postMessage({ t: 'exit' } satisfies ToWorker);
            setTimeout(() => void w.terminate(), 10_000).unref();
          }),
      ),
    );
  }
}

function merge(rs: WorkerResult[], seconds: number): LoadResult {
  const hist = new Histogram();
  const errorKinds: Record<string, number> = {};
  for (const r of rs) {
    hist.merge(r.hist);
    for (const [k, v] of Object.entries(r.errorKinds)) errorKinds[k] = (errorKinds[k] ?? 0) + v;
  }
  const elu = rs.map((r) => round(r.elu, 3));
  return {
    deliveredPerSec: sum(rs.map((r) => r.delivered)) / seconds,
    sentPerSec: sum(rs.map((r) => r.sent)) / seconds,
    completedPerSec: sum(rs.map((r) => r.completed)) / seconds,
    p50Ms: hist.quantile(0.5),
    p99Ms: hist.quantile(0.99),
    maxMs: hist.max,
    meanMs: hist.mean(),
    deliveries: hist.count,
    errors: sum(rs.map((r) => r.errors)),
    errorKinds,
    verified: sum(rs.map((r) => r.verified)),
    exhaustedSenders: sum(rs.map((r) => r.exhausted)),
    capWaits: sum(rs.map((r) => r.capWaits)),
    elu,
    generatorBound: elu.some((u) => u > 0.9),
  };
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
