// The messages between the bench and its relay child process (bench/lib/relay-proc.ts).
import type { SweeperStats } from '../../server/sweeper.ts';
import type { GapReading } from './gap-trace.ts';

export type SystemName = 'raw-ws' | 'ws-sqlite' | 'umbra';
export const SYSTEMS: readonly SystemName[] = ['raw-ws', 'ws-sqlite', 'umbra'];

/**
 * Expired envelopes for E-sweep. `sent`: spread over every seeded room and member in the order
 * they were sent, each room on one timer, so expiry follows seq within a room (what a backlog of
 * disappearing messages looks like); `scattered`: all in one room with expiry cycling every
 * 1,000 rows, so consecutive deletions land on different pages (a worst case for the sweeper).
 */
export interface ExpiredSeed {
  rows: number;
  order: 'sent' | 'scattered';
}

export interface StartOptions {
  system: SystemName;
  /** Umbra: a fresh copy of the seeded template; ws-sqlite: an empty folder; raw-ws: unused. */
  dataDir: string;
  /** Umbra only: sweeper settings (each one left out: the relay's). */
  sweep?: { intervalMs: number; batch: number; maxBatchMs?: number };
  /** Umbra only: envelopes already past their expiry, inserted before the relay starts. */
  seedExpired?: ExpiredSeed;
  /** Attribute event-loop gaps to running, waiting for a CPU and GC (bench/lib/gap-trace.ts; a 1 ms timer). */
  traceGaps?: boolean;
}

export type ToChild =
  | ({ t: 'start' } & StartOptions)
  | { t: 'stats' }
  | { t: 'resetStats' }
  | { t: 'gc' }
  | { t: 'sweeperStats' }
  | { t: 'stop' };

export interface RelayStats {
  /** Wall time since the last reset. */
  wallMs: number;
  cpuUserMs: number;
  cpuSystemMs: number;
  rssBytes: number;
  heapUsedBytes: number;
  /** Event-loop delay since the last reset (1 ms resolution). */
  eld: { maxMs: number; p99Ms: number; meanMs: number };
  walBytes: number;
  /** Largest WAL seen (sampled every 50 ms) since the last reset. */
  walMaxBytes: number;
  /** Umbra only, since the last reset: the longest group commit on the event loop, the longest and the mean time queued envelopes waited for the checkpoint thread's write lock (checkpoint or sweep batch), WAL restarts. */
  umbra: { longestCommitMs: number; longestHoldMs: number; meanLockWaitMs: number; walRestarts: number } | null;
  /** With `traceGaps` (on Linux), since the last reset: the event-loop gaps over 8 ms and what the main thread did in them. */
  gaps: GapReading | null;
}

export type ToParent =
  | { t: 'ready'; port: number }
  | { t: 'stats'; stats: RelayStats }
  | { t: 'sweeperStats'; stats: SweeperStats | null }
  | { t: 'ok' }
  | { t: 'failed'; message: string };
