// E-sweep: the relay deletes a backlog of already-expired envelopes while A-mid's traffic runs.
// Runs alternate with A-mid alone on the same relay settings (alone, sweep, scattered; alone, ...),
// so the cost of sweeping shows as the difference: event-loop stalls, delivery latency, CPU, WAL.
// `sweep` is a backlog in the order it was sent (the headline figure); `scattered` is the same
// number of rows in a pathological order, one page per deletion (bench/lib/relay-ipc.ts ExpiredSeed).
// Each run starts with the idle probe alone on the quiet machine for one window (`at-rest`): the
// floor under every stall figure, which no relay design can go below.
import Database from 'better-sqlite3';
import path from 'node:path';
import { defaultConfig } from '../../server/config.ts';
import { DB_FILE } from '../../server/db.ts';
import type { SweeperStats } from '../../server/sweeper.ts';
import type { RelayProc } from '../lib/relay-client.ts';
import { StallProbe, type ProbeReading } from '../lib/stall-probe.ts';
import { median } from '../lib/stats.ts';
import { fmt, runLoad, type RunLoadResult } from './traffic.ts';
import type { ScenarioOptions, ScenarioResult } from '../lib/scenario.ts';

interface Sizes {
  quick: boolean;
  rows: number;
  runs: number;
  warmupMs: number;
  /** The measured window: long enough to hold the whole sweep (about 50,000 rows/s under A-mid here; a sweep that does not finish is reported). */
  windowMs: number;
  /** The sweeper's settings: the relay's own, except a shorter interval in `--quick`. */
  sweep: { intervalMs: number; batch: number; maxBatchMs: number };
  /** How far into the measured window the first sweep starts. */
  leadMs: number;
}

function sizes(quick: boolean): Sizes {
  const relay = defaultConfig().sweep;
  return quick
    ? { quick, rows: 20_000, runs: 1, warmupMs: 500, windowMs: 2_000, sweep: { ...relay, intervalMs: 1_000 }, leadMs: 200 }
    : { quick, rows: 1_000_000, runs: 3, warmupMs: 1_000, windowMs: 60_000, sweep: { ...relay }, leadMs: 500 };
}

/** The load starts this long after the measured window is due to open (traffic.ts resets the relay's counters at warm-up + 100 ms). */
const RESET_AFTER_WARMUP_MS = 100;
const POLL_MS = 100;

/**
 * `raw-ws`: the raw `ws` relay (bench/baselines/raw-ws.ts) under the same load for the same window,
 * the runtime's ceiling: what the machine does to an event loop that forwards frames and nothing else.
 */
type Kind = 'alone' | 'raw-ws' | 'sweep' | 'scattered';
const KINDS: readonly Kind[] = ['alone', 'raw-ws', 'sweep', 'scattered'];
/** Kinds with a backlog to sweep. */
const hasBacklog = (kind: Kind): boolean => kind === 'sweep' || kind === 'scattered';

interface RunRecord {
  run: number;
  kind: Kind;
  result: RunLoadResult;
  /** The sweep that deleted the seeded rows, as first seen finished; null if it did not finish in the window. */
  sweep: SweeperStats | null;
  /** When the sweep started, in ms after the measured window opened (negative: before it). */
  sweepStartInWindowMs: number;
  /** The load started later than planned (connecting took too long), so the first sweep began before the window. */
  late: boolean;
  figures: Record<string, number>;
}

export async function runSweep(opts: ScenarioOptions): Promise<ScenarioResult> {
  const { quick, log } = opts;
  const z = { ...sizes(quick), ...(opts.runs ? { runs: opts.runs } : {}) };
  log(
    `## E-sweep: ${z.rows.toLocaleString('en-US')} expired envelopes swept under A-mid (sweep every ${z.sweep.intervalMs} ms, ` +
      `batches of up to ${z.sweep.batch} rows and ${z.sweep.maxBatchMs} ms; ${z.windowMs / 1000} s window), against A-mid alone and A-mid on raw ws`,
  );
  const records: RunRecord[] = [];
  const atRest: ProbeReading[] = [];
  for (let run = 1; run <= z.runs; run++) {
    const rest = await machineAtRest(z.windowMs);
    atRest.push(rest);
    log(
      `E-sweep run ${run} at-rest eld_max_ms=${fmt(rest.maxMs)} worst_gap_ms=${fmt(rest.worstGap?.gapMs ?? NaN)} ` +
        `woken_late_ms=${fmt(wokenLate(rest))} gaps_over_20ms=${fmt(rest.gapsOverTarget ?? NaN)}`,
    );
    for (const kind of KINDS) {
      const rec = await runOne(z, run, kind, log);
      records.push(rec);
      log(
        `E-sweep run ${run} ${kind.padEnd(5)} ` +
          Object.entries(rec.figures)
            .map(([k, v]) => `${k}=${fmt(v)}`)
            .join(' ') +
          (rec.result.load.generatorBound ? ` GENERATOR-BOUND elu=${rec.result.load.elu.join('/')}` : '') +
          (rec.result.load.errors ? ` errorKinds=${JSON.stringify(rec.result.load.errorKinds)}` : '') +
          (rec.late ? ' LATE: the sweep started before the window' : ''),
      );
      if (hasBacklog(kind) && !rec.sweep) log(`E-sweep run ${run}: the sweep did NOT finish inside the ${z.windowMs / 1000} s window`);
    }
  }

  const med = (kind: RunRecord['kind'], key: string) => median(records.filter((r) => r.kind === kind).map((r) => r.figures[key] ?? NaN));
  const sweeps = records.filter((r) => r.kind === 'sweep');
  const finished = sweeps.every((r) => r.sweep !== null);
  const scattered = records.filter((r) => r.kind === 'scattered');
  const figures: ScenarioResult['figures'] = {
    expired_envelopes: z.rows,
    runs: z.runs,
    window_ms: z.windowMs,
    sweep_interval_ms: z.sweep.intervalMs,
    sweep_batch: z.sweep.batch,
    sweep_max_batch_ms: z.sweep.maxBatchMs,
    sweep_finished_in_window: finished,
    sweep_started_in_window: sweeps.every((r) => !r.late && r.sweepStartInWindowMs >= 0),
    sweep_total_ms: med('sweep', 'sweep_total_ms'),
    rows_swept: med('sweep', 'rows_swept'),
    sweep_rows_per_s: med('sweep', 'sweep_rows_per_s'),
    sweep_longest_batch_ms: med('sweep', 'longest_batch_ms'),
    sweep_rows_per_batch: med('sweep', 'rows_per_batch'),
    sweep_yielded_pct: med('sweep', 'yielded_pct'),
    eld_max_ms_sweep: med('sweep', 'eld_max_ms'),
    eld_max_ms_alone: med('alone', 'eld_max_ms'),
    eld_max_ms_raw_ws: med('raw-ws', 'eld_max_ms'),
    machine_at_rest_eld_max_ms: median(atRest.map((r) => r.maxMs)),
    machine_at_rest_eld_max_ms_worst: Math.max(...atRest.map((r) => r.maxMs)),
    machine_at_rest_worst_gap_woken_late_ms: median(atRest.map(wokenLate)),
    machine_eld_max_ms_raw_ws: med('raw-ws', 'machine_eld_max_ms'),
    worst_gap_ms_raw_ws: med('raw-ws', 'worst_gap_ms'),
    worst_gap_running_ms_raw_ws: med('raw-ws', 'worst_gap_running_ms'),
    worst_gap_waiting_ms_raw_ws: med('raw-ws', 'worst_gap_waiting_ms'),
    p99_ms_raw_ws: med('raw-ws', 'p99_ms'),
    relay_cpu_ms_per_s_raw_ws: med('raw-ws', 'relay_cpu_ms_per_s'),
    machine_eld_max_ms_sweep: med('sweep', 'machine_eld_max_ms'),
    machine_eld_max_ms_alone: med('alone', 'machine_eld_max_ms'),
    worst_gap_ms_sweep: med('sweep', 'worst_gap_ms'),
    worst_gap_running_ms_sweep: med('sweep', 'worst_gap_running_ms'),
    worst_gap_waiting_ms_sweep: med('sweep', 'worst_gap_waiting_ms'),
    worst_gap_gc_ms_sweep: med('sweep', 'worst_gap_gc_ms'),
    worst_gap_commit_ms_sweep: med('sweep', 'worst_gap_commit_ms'),
    worst_gap_commit_ms_alone: med('alone', 'worst_gap_commit_ms'),
    over_20ms_running_pct_sweep: med('sweep', 'over_20ms_running_pct'),
    over_20ms_running_pct_alone: med('alone', 'over_20ms_running_pct'),
    over_20ms_running_pct_raw_ws: med('raw-ws', 'over_20ms_running_pct'),
    over_20ms_commit_pct_sweep: med('sweep', 'over_20ms_commit_pct'),
    over_20ms_commit_pct_alone: med('alone', 'over_20ms_commit_pct'),
    worst_gap_ms_alone: med('alone', 'worst_gap_ms'),
    worst_gap_running_ms_alone: med('alone', 'worst_gap_running_ms'),
    worst_gap_waiting_ms_alone: med('alone', 'worst_gap_waiting_ms'),
    machine_worst_gap_ms_sweep: med('sweep', 'machine_worst_gap_ms'),
    machine_worst_gap_woken_late_ms_sweep: med('sweep', 'machine_worst_gap_woken_late_ms'),
    machine_worst_gap_ms_alone: med('alone', 'machine_worst_gap_ms'),
    machine_worst_gap_woken_late_ms_alone: med('alone', 'machine_worst_gap_woken_late_ms'),
    gaps_over_8ms_sweep: med('sweep', 'gaps_over_8ms'),
    gaps_over_20ms_sweep: med('sweep', 'gaps_over_20ms'),
    gaps_over_20ms_alone: med('alone', 'gaps_over_20ms'),
    gaps_over_20ms_raw_ws: med('raw-ws', 'gaps_over_20ms'),
    machine_gaps_over_20ms_sweep: med('sweep', 'machine_gaps_over_20ms'),
    machine_at_rest_gaps_over_20ms: median(atRest.map((r) => r.gapsOverTarget ?? NaN)),
    gaps_over_8ms_alone: med('alone', 'gaps_over_8ms'),
    gaps_waiting_pct_sweep: med('sweep', 'gaps_waiting_pct'),
    gaps_waiting_pct_alone: med('alone', 'gaps_waiting_pct'),
    eld_p99_ms_sweep: med('sweep', 'eld_p99_ms'),
    eld_p99_ms_alone: med('alone', 'eld_p99_ms'),
    p50_ms_sweep: med('sweep', 'p50_ms'),
    p50_ms_alone: med('alone', 'p50_ms'),
    p99_ms_sweep: med('sweep', 'p99_ms'),
    p99_ms_alone: med('alone', 'p99_ms'),
    max_ms_sweep: med('sweep', 'max_ms'),
    max_ms_alone: med('alone', 'max_ms'),
    delivered_per_s_sweep: med('sweep', 'delivered_per_s'),
    delivered_per_s_alone: med('alone', 'delivered_per_s'),
    relay_cpu_ms_per_s_sweep: med('sweep', 'relay_cpu_ms_per_s'),
    relay_cpu_ms_per_s_alone: med('alone', 'relay_cpu_ms_per_s'),
    wal_max_bytes_sweep: med('sweep', 'wal_max_bytes'),
    longest_commit_ms_sweep: med('sweep', 'longest_commit_ms'),
    longest_commit_ms_alone: med('alone', 'longest_commit_ms'),
    longest_hold_ms_sweep: med('sweep', 'longest_hold_ms'),
    longest_hold_ms_alone: med('alone', 'longest_hold_ms'),
    mean_lock_wait_ms_sweep: med('sweep', 'mean_lock_wait_ms'),
    mean_lock_wait_ms_alone: med('alone', 'mean_lock_wait_ms'),
    wal_restarts_sweep: med('sweep', 'wal_restarts'),
    wal_max_bytes_alone: med('alone', 'wal_max_bytes'),
    errors_sweep: med('sweep', 'errors'),
    errors_alone: med('alone', 'errors'),
    scattered_sweep_finished_in_window: scattered.every((r) => r.sweep !== null),
    scattered_sweep_total_ms: med('scattered', 'sweep_total_ms'),
    scattered_rows_swept: med('scattered', 'rows_swept'),
    scattered_sweep_rows_per_s: med('scattered', 'sweep_rows_per_s'),
    scattered_eld_max_ms: med('scattered', 'eld_max_ms'),
    scattered_machine_eld_max_ms: med('scattered', 'machine_eld_max_ms'),
    scattered_p99_ms: med('scattered', 'p99_ms'),
    scattered_longest_commit_ms: med('scattered', 'longest_commit_ms'),
    scattered_wal_max_bytes: med('scattered', 'wal_max_bytes'),
    generator_bound: records.some((r) => r.result.load.generatorBound),
  };
  if (!finished) log(`**E-sweep:** in ${sweeps.filter((r) => !r.sweep).length} of ${sweeps.length} runs the sweep did not finish inside the window; its figures cover only part of it`);
  return {
    figures,
    summary: {
      e_sweep_max_stall_ms: med('sweep', 'eld_max_ms'),
      e_sweep_total_ms: med('sweep', 'sweep_total_ms'),
      e_sweep_baseline_max_stall_ms: med('alone', 'eld_max_ms'),
      e_sweep_raw_ws_max_stall_ms: med('raw-ws', 'eld_max_ms'),
      e_sweep_max_stall_ratio_vs_ws: med('sweep', 'eld_max_ms') / med('raw-ws', 'eld_max_ms'),
      e_sweep_machine_max_stall_ms: med('sweep', 'machine_eld_max_ms'),
      e_sweep_machine_at_rest_max_stall_ms: median(atRest.map((r) => r.maxMs)),
      e_sweep_worst_gap_waiting_ms: med('sweep', 'worst_gap_waiting_ms'),
      e_sweep_wal_max_bytes: Math.max(med('sweep', 'wal_max_bytes'), med('scattered', 'wal_max_bytes')),
      e_sweep_scattered_max_stall_ms: med('scattered', 'eld_max_ms'),
    },
  };
}

/**
 * One relay under A-mid, with (`sweep`) or without (`alone`) the expired rows; the sweeper runs with
 * the same settings in both. The load is placed so that the first sweep starts `leadMs` into the
 * measured window, and the window is watched until the sweep reports all rows deleted.
 */
async function runOne(z: Sizes, run: number, kind: RunRecord['kind'], log: (line: string) => void): Promise<RunRecord> {
  let late = false;
  let windowOpensAt = 0;
  let windowEndsAt = 0;
  let done: SweeperStats | null = null;
  let leftAtEnd = NaN;
  const beforeLoad = async (_relay: RelayProc, relayReadyAt: number) => {
    const loadAt = relayReadyAt + z.sweep.intervalMs - z.leadMs - RESET_AFTER_WARMUP_MS - z.warmupMs;
    const wait = loadAt - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    else late = true;
  };
  const duringLoad = async (relay: RelayProc) => {
    windowOpensAt = Date.now() + z.warmupMs + RESET_AFTER_WARMUP_MS;
    windowEndsAt = windowOpensAt + z.windowMs;
    if (!hasBacklog(kind)) return;
    while (Date.now() < windowEndsAt) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      const s = await relay.sweeperStats();
      if (s && s.swept >= z.rows) {
        done = s;
        return;
      }
    }
    // Unfinished: the sweeper counts only whole sweeps, so count what is left in the file itself.
    leftAtEnd = expiredLeft(relay.dataDir);
  };
  const result = await runLoad({
    quick: z.quick,
    durationMs: z.windowMs,
    warmupMs: z.warmupMs,
    sweep: z.sweep,
    traceGaps: true,
    ...(kind === 'raw-ws' ? { system: 'raw-ws' as const } : {}),
    ...(!hasBacklog(kind) ? {} : { seedExpired: { rows: z.rows, order: kind === 'sweep' ? 'sent' : 'scattered' } as const }),
    beforeLoad,
    duringLoad,
    log,
  });
  const sweep = done as SweeperStats | null;
  const { load, relay } = result;
  const figures: Record<string, number> = {
    p50_ms: load.p50Ms,
    p99_ms: load.p99Ms,
    max_ms: load.maxMs,
    delivered_per_s: load.deliveredPerSec,
    errors: load.errors,
    eld_max_ms: relay.eld.maxMs,
    machine_eld_max_ms: result.machine.maxMs,
    eld_p99_ms: relay.eld.p99Ms,
    relay_cpu_ms_per_s: ((relay.cpuUserMs + relay.cpuSystemMs) / relay.wallMs) * 1000,
    wal_max_bytes: relay.walMaxBytes,
    longest_commit_ms: relay.umbra?.longestCommitMs ?? NaN,
    longest_hold_ms: relay.umbra?.longestHoldMs ?? NaN,
    mean_lock_wait_ms: relay.umbra?.meanLockWaitMs ?? NaN,
    wal_restarts: relay.umbra?.walRestarts ?? NaN,
    // The worst gap between two ticks of a 1 ms timer on the relay's main thread, and how much of
    // it the thread ran and how much it waited for a CPU (bench/lib/gap-trace.ts; NaN off Linux).
    worst_gap_ms: relay.gaps?.worst?.gapMs ?? NaN,
    worst_gap_running_ms: relay.gaps?.worst?.runningMs ?? NaN,
    worst_gap_waiting_ms: relay.gaps?.worst?.waitingMs ?? NaN,
    worst_gap_gc_ms: relay.gaps?.worst?.gcMs ?? NaN,
    worst_gap_commit_ms: relay.gaps?.worst?.commitMs ?? NaN,
    // Of all the time in gaps over the 20 ms target: how much the thread ran, and how much of that was group commits.
    over_20ms_running_pct: pct(relay.gaps?.overTargetTotal.runningMs, relay.gaps?.overTargetTotal.gapMs),
    over_20ms_commit_pct: pct(relay.gaps?.overTargetTotal.commitMs, relay.gaps?.overTargetTotal.gapMs),
    gaps_over_8ms: relay.gaps?.count ?? NaN,
    gaps_over_20ms: relay.gaps?.overTarget ?? NaN,
    machine_gaps_over_20ms: result.machine.gapsOverTarget ?? NaN,
    // The idle probe's worst gap, and how much of it the probe spent neither running nor waiting
    // for a CPU: woken late by the machine.
    machine_worst_gap_ms: result.machine.worstGap?.gapMs ?? NaN,
    machine_worst_gap_woken_late_ms: wokenLate(result.machine),
    gaps_waiting_pct: pct(relay.gaps?.total.waitingMs, relay.gaps?.total.gapMs),
  };
  let sweepStartInWindowMs = NaN;
  if (hasBacklog(kind)) {
    const last = sweep ?? result.sweeper;
    figures.rows_swept = sweep ? sweep.swept : z.rows - leftAtEnd;
    if (sweep) {
      // The one sweep that found the backlog ran it to the end (the sweeper loops until a batch comes back short).
      const s: SweeperStats = sweep;
      const startedAt = (s.lastSweepAt ?? NaN) - s.lastSweepMs;
      sweepStartInWindowMs = startedAt - windowOpensAt;
      figures.sweep_total_ms = s.lastSweepDeleted === s.swept ? s.lastSweepMs : NaN;
      figures.sweep_rows_per_s = (s.swept / s.lastSweepMs) * 1000;
      figures.sweep_start_in_window_ms = sweepStartInWindowMs;
    } else {
      figures.sweep_total_ms = NaN;
      // A lower bound on the rate: the sweep started in the window (unless late) and is still running.
      figures.sweep_rows_per_s = (figures.rows_swept / (z.windowMs - z.leadMs)) * 1000;
    }
    figures.longest_batch_ms = last?.longestBatchMs ?? NaN;
    const batches = last ? last.threadBatches + last.relayBatches : NaN;
    figures.rows_per_batch = figures.rows_swept / batches;
    // Thread batches that ended early because a delivery was waiting for the write lock.
    figures.yielded_pct = last && last.threadBatches > 0 ? (last.yielded / last.threadBatches) * 100 : NaN;
  }
  return { run, kind, result, sweep, sweepStartInWindowMs, late, figures };
}

/**
 * The floor under every stall figure: the idle probe alone on the machine for one window, with no
 * relay and no load. What it sees is the machine's own (the hypervisor waking the process late).
 */
async function machineAtRest(windowMs: number): Promise<ProbeReading> {
  const probe = await StallProbe.start();
  try {
    await probe.reset();
    await new Promise((r) => setTimeout(r, windowMs));
    return await probe.read();
  } finally {
    probe.stop();
  }
}

/** part / whole in per cent; NaN where either is unknown or the whole is 0. */
function pct(part: number | undefined, whole: number | undefined): number {
  return part !== undefined && whole !== undefined && whole > 0 ? (part / whole) * 100 : NaN;
}

/** How much of a probe's worst gap it neither ran nor waited for a CPU: the machine woke it late. */
function wokenLate(r: ProbeReading): number {
  const g = r.worstGap;
  return g ? g.gapMs - g.runningMs - g.waitingMs : NaN;
}

/** Expired envelopes still in the relay's file, read on a connection of its own (one indexed count). */
function expiredLeft(dataDir: string): number {
  const db = new Database(path.join(dataDir, DB_FILE), { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('select count(*) as n from envelopes where expires_at <= ?').get(Date.now()) as { n: number }).n;
  } finally {
    db.close();
  }
}
