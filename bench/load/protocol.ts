// Messages between the load generator (bench/load/generator.ts) and its worker threads.
import type { HistogramData } from '../lib/hist.ts';
import type { SystemName } from '../lib/relay-ipc.ts';
import type { SeedManifest } from '../lib/seed.ts';

export interface WorkerInit {
  workerIndex: number;
  manifest: SeedManifest;
  /** The user indexes this worker connects as (one connection each). */
  users: number[];
  /** Room index of each user in the whole manifest (-1: in no room). */
  roomOfUser: number[];
  /** Float64Array(users × ring) of send times, shared by every worker. */
  sendTimes: SharedArrayBuffer;
  ring: number;
  /** Umbra envelopes to pre-seal per connection (0: none, an idle scenario). */
  preseal: number;
  /** 8 random bytes closing every clientMsgId of this pool, base64url. */
  runBytes: string;
}

export type RunParams = {
  /** hrtime milliseconds (same clock in every thread) when sending starts. */
  startAt: number;
  warmupMs: number;
  timedMs: number;
  /** Baselines: bytes per frame (the size of Umbra's `env` push for the same message). */
  frameBytes: number;
  /** Receivers open one envelope in this many with openEnvelope (Umbra). */
  verifyEvery: number;
} & (
  | { mode: 'rate'; /** This worker's share of the total messages per second. */ ratePerSec: number }
  | { mode: 'sat'; inflight: number; /** Per-connection send cap (messages/s; 0: none), e.g. to stay within the relay's frame-rate limit. */ maxRatePerConn: number }
);

export type ToWorker =
  | { t: 'connect'; system: SystemName; port: number }
  | ({ t: 'run' } & RunParams)
  | { t: 'disconnect' }
  | { t: 'exit' };

export interface WorkerResult {
  sent: number;
  delivered: number;
  completed: number;
  hist: HistogramData;
  elu: number;
  errors: number;
  errorKinds: Record<string, number>;
  verified: number;
  /** Senders that ran out of pre-sealed envelopes (their throughput was capped by the bench). */
  exhausted: number;
  /** Times a sender waited for its per-connection cap. */
  capWaits: number;
}

export type FromWorker =
  | { t: 'inited'; pushFrameBytes: number; sealMs: number }
  | { t: 'connected'; ok: number; failed: number; ms: number; errorKinds: Record<string, number> }
  | ({ t: 'result' } & WorkerResult)
  | { t: 'disconnected' }
  | { t: 'failed'; message: string };
